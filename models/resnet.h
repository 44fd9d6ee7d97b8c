// ResNet-18/34 (basic blocks, [2, 2, 2, 2] / [3, 4, 6, 3]) and ResNet-50/101 (bottleneck blocks,
// [3, 4, 6, 3] / [3, 4, 23, 3], torchvision's v1.5 layout: the stride on the 3x3 conv) with
// torchvision's module names, so torchvision weights load unchanged: conv1, bn1, layer1.0.conv1,
// ..., layer2.0.downsample.0, fc. `width` scales the stage widths (64 -> width, width*2, width*4,
// width*8; a bottleneck's output is 4 times its stage width), for small test models.
#pragma once
#include <memory>
#include <vector>

#include "engine/planner/chain.h"
#include "models/motion.h"
#include "nn/container.h"
#include "nn/conv.h"
#include "nn/layers.h"
#include "nn/linear.h"
#include "nn/norm.h"
#include "ops/video.h"

namespace spool::models {

struct ResNetConfig {
  int64_t num_classes = 10;  // 0: no fc; forward gives the pooled features (a video backbone)
  int64_t width = 64;
  int64_t in_channels = 3;
  // TSM: a temporal shift at the start of every residual branch (the shortcut is not shifted),
  // over clips of shift_segments consecutive images; 0 for none.
  int64_t shift_segments = 0;
  ShiftMode shift_mode = ShiftMode::bidirectional;
  int64_t depth = 18;  // 18, 34 (basic blocks), 50 or 101 (bottlenecks)
  // TEA (models/motion.h), over clips of tea_segments consecutive images; 0 for none. Every block
  // gets motion excitation (`me`) and multiple temporal aggregation (`mta`) in place of its 3x3
  // convolution at constant width: a bottleneck's conv2 and bn2 (after conv1, bn1 and ReLU, as
  // TEA's Res2Net-50; the first block of each stage a Res2Net "stage" block), a basic block's
  // conv2 (after conv1, bn1 and ReLU; bn2, the shortcut and ReLU follow as before).
  int64_t tea_segments = 0;
  // STM (models/motion.h), over clips of stm_segments consecutive images; 0 for none. Every
  // block's 3x3 convolution at constant width (as for TEA) gets a channel-wise temporal conv
  // before it (`tconv`, identity at start: with it the block starts as the 2-D one plus CMM) and
  // the channel-wise motion module (`cmm`) summed with its output before its BatchNorm.
  int64_t stm_segments = 0;
  // TDN's L-TDM (models/motion.h), over clips of tdn_segments consecutive images; 0 for none.
  // Every block of stages 2-4 gets it (`ltdm`) after its first conv, bn1 and ReLU (at the
  // block's 3x3 width); stage 1 is where TDN's short-term module fuses instead (TdnNet).
  int64_t tdn_segments = 0;
  // TEA's ME, STM's CMM and TDN's L-TDM reduce the channels by this factor (16 in the papers).
  int64_t motion_reduction = 16;
};

// Blocks per stage for a ResNet depth (18, 34, 50, 101); spool::Error names the known depths.
std::vector<int64_t> resnet_stage_blocks(int64_t depth);
// 4 for bottleneck depths (50, 101), 1 for basic-block ones.
int64_t resnet_expansion(int64_t depth);

class BasicBlock : public nn::Module {
 public:
  // `temporal`: the configuration's shift and TEA fields.
  BasicBlock(int64_t in, int64_t out, int64_t stride, Generator* gen,
             const ResNetConfig& temporal = {});
  std::string type_name() const override { return "BasicBlock"; }
  Tensor forward(const Tensor& x) override;  // merge(x, branch(x))
  // The two halves, for staging the block as a graph: the residual branch's first conv
  // (shift, conv1, bn1, relu), and the rest (TEA's me and mta, or conv2; bn2), which reads the
  // block input again for the shortcut.
  Tensor branch(const Tensor& x);
  Tensor merge(const Tensor& x, const Tensor& h);

 private:
  std::shared_ptr<nn::Conv2d> conv1_, conv2_;
  std::shared_ptr<nn::BatchNorm2d> bn1_, bn2_;
  std::shared_ptr<MotionExcitation> me_;  // TEA, in place of conv2 with mta_
  std::shared_ptr<TemporalAggregation> mta_;
  std::shared_ptr<TemporalConv> tconv_;  // STM, around conv2 with cmm_
  std::shared_ptr<ChannelMotion> cmm_;
  std::shared_ptr<LongTermDifference> ltdm_;    // TDN, after bn1 and ReLU
  std::shared_ptr<nn::Sequential> downsample_;  // 1x1 conv + BN when the shape changes
  int64_t shift_segments_;
  ShiftMode shift_mode_;
};

// torchvision's Bottleneck: 1x1 conv to `planes`, 3x3 conv with the stride, 1x1 conv to 4 planes,
// each followed by BN (ReLU after the first two); 1x1 conv + BN shortcut when the shape changes.
class Bottleneck : public nn::Module {
 public:
  // first: the first block of its stage (TEA's stage block).
  Bottleneck(int64_t in, int64_t planes, int64_t stride, Generator* gen,
             const ResNetConfig& temporal = {}, bool first = false);
  std::string type_name() const override { return "Bottleneck"; }
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<nn::Conv2d> conv1_, conv2_, conv3_;
  std::shared_ptr<nn::BatchNorm2d> bn1_, bn2_, bn3_;
  std::shared_ptr<MotionExcitation> me_;  // TEA, in place of conv2 and bn2 with mta_
  std::shared_ptr<TemporalAggregation> mta_;
  std::shared_ptr<TemporalConv> tconv_;  // STM, around conv2 with cmm_
  std::shared_ptr<ChannelMotion> cmm_;
  std::shared_ptr<LongTermDifference> ltdm_;  // TDN, after bn1 and ReLU
  std::shared_ptr<nn::Sequential> downsample_;
  int64_t shift_segments_;
  ShiftMode shift_mode_;
};

class ResNet : public nn::Module {
 public:
  explicit ResNet(const ResNetConfig& config = {}, Generator* gen = nullptr);
  std::string type_name() const override { return "ResNet"; }
  Tensor forward(const Tensor& x) override;  // [N, 3, H, W] -> [N, classes] (or features)
  Tensor features(const Tensor& x);          // [N, 3, H, W] -> [N, feature_dim()]
  int64_t feature_dim() const;               // 8 * width * expansion
  // The training step as a chain for the memory planner: the stem, the blocks, and the head
  // (pool, fc) with the mean cross-entropy against `labels` [N].
  // split_blocks: each basic block becomes two stages, its first conv and the rest, the second
  // reading the block input again for the shortcut; the stages then form a graph (bottleneck
  // blocks stay whole).
  // stem_groups > 1: the stem stage runs the stem without graph and replays it in its backward
  // in that many equal channel groups (stem_channels), one at a time (checkpoint_in_parts):
  // the stage keeps only its output, its backward holds one group's intermediates, and the
  // stem's forward runs once more per step. The gradients are the plain stem's but for conv1's
  // weight gradient, summed by a GEMM of fewer rows: equal to BLAS's rounding (bit for bit at
  // resnet18's size with this machine's OpenBLAS; docs/memory.md).
  Chain chain(const Tensor& x, const Tensor& labels, bool split_blocks = false,
              int64_t stem_groups = 1);
  const ResNetConfig& config() const { return config_; }
  // The pieces chains are built from: the stem, the blocks as named stages, the pooling.
  Tensor stem(const Tensor& x);  // checks the input; conv1, bn1, relu, max pool
  // The stem's output channels [first, first + count) alone: channels stay independent through
  // conv1, bn1 (per-channel statistics), relu and the max pool, so the groups' outputs
  // concatenated along dim 1 are stem(x) (to BLAS's rounding of conv1, whose GEMM then has
  // fewer rows; value for value in this project's tests).
  Tensor stem_channels(const Tensor& x, int64_t first, int64_t count);
  // first_node: the boundary the first block reads (its stages are numbered from there).
  std::vector<Stage> block_stages(bool split_blocks = false, int first_node = 1);
  // The stem as the first stage of a chain, reading the batch through `images` (the identity
  // when empty; a video model's frames as images): with groups > 1, run whole and replayed in
  // its backward in that many channel groups (see chain()). groups must divide the width.
  Stage stem_stage(int64_t groups = 1, std::function<Tensor(const Tensor&)> images = {});
  Tensor pooled(const Tensor& h);  // global average pool, flattened to [N, C]
  nn::Sequential& layer(int stage) { return *layers_[stage]; }  // stage 0-3: layer1-layer4

 private:
  ResNetConfig config_;
  std::shared_ptr<nn::Conv2d> conv1_;
  std::shared_ptr<nn::BatchNorm2d> bn1_;
  std::shared_ptr<nn::Sequential> layers_[4];
  std::shared_ptr<nn::Linear> fc_;
};

}  // namespace spool::models
