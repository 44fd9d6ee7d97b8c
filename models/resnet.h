// ResNet-18 (basic blocks, [2, 2, 2, 2]) with torchvision's module names, so torchvision weights
// load unchanged: conv1, bn1, layer1.0.conv1, ..., layer2.0.downsample.0, fc. `width` scales the
// stage widths (64 -> width, width*2, width*4, width*8), for small test models.
#pragma once
#include <memory>

#include "engine/chain.h"
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
};

class BasicBlock : public nn::Module {
 public:
  BasicBlock(int64_t in, int64_t out, int64_t stride, Generator* gen, int64_t shift_segments = 0,
             ShiftMode shift_mode = ShiftMode::bidirectional);
  std::string type_name() const override { return "BasicBlock"; }
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<nn::Conv2d> conv1_, conv2_;
  std::shared_ptr<nn::BatchNorm2d> bn1_, bn2_;
  std::shared_ptr<nn::Sequential> downsample_;  // 1x1 conv + BN when the shape changes
  int64_t shift_segments_;
  ShiftMode shift_mode_;
};

class ResNet18 : public nn::Module {
 public:
  explicit ResNet18(const ResNetConfig& config = {}, Generator* gen = nullptr);
  std::string type_name() const override { return "ResNet18"; }
  Tensor forward(const Tensor& x) override;  // [N, 3, H, W] -> [N, classes] (or features)
  Tensor features(const Tensor& x);          // [N, 3, H, W] -> [N, 8 * width]
  // The training step as a chain for the memory planner: the stem, the eight basic blocks, and
  // the head (pool, fc) with the mean cross-entropy against `labels` [N].
  Chain chain(const Tensor& x, const Tensor& labels);
  const ResNetConfig& config() const { return config_; }
  // The pieces chains are built from: the stem, the eight blocks as named stages, the pooling.
  Tensor stem(const Tensor& x);  // checks the input; conv1, bn1, relu, max pool
  std::vector<Stage> block_stages();
  Tensor pooled(const Tensor& h);  // global average pool, flattened to [N, C]

 private:
  ResNetConfig config_;
  std::shared_ptr<nn::Conv2d> conv1_;
  std::shared_ptr<nn::BatchNorm2d> bn1_;
  std::shared_ptr<nn::Sequential> layers_[4];
  std::shared_ptr<nn::Linear> fc_;
};

}  // namespace spool::models
