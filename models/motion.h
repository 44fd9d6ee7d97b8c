// Motion modules for 2-D video backbones. TEA (Li et al., CVPR 2020): motion excitation (ME),
// feature-level temporal differences used as channel attention, and multiple temporal
// aggregation (MTA), Res2Net-style hierarchical groups of temporal and spatial convolutions that
// take the place of a residual block's 3x3 convolution. STM (Jiang et al., ICCV 2019): the
// channel-wise spatio-temporal module (a channel-wise temporal conv before the block's 3x3 conv)
// and the channel-wise motion module (CMM), feature differences of adjacent frames as features. All
// work on frames [N * segments, C, H, W] (the frames of a clip adjacent along dim 0), as the
// temporal shift does. Parameter names follow TEA's code (`me.conv1`, `me.bn1`, `me.conv2`,
// `me.conv3`, `me.bn3`; MTA's `convs.<i>`, `bns.<i>`, `shifts.<i>.conv`) under the block's `me` and
// `mta`. TDN (Wang et al., CVPR 2021): the short-term temporal difference module (S-TDM), RGB
// differences of the frames around each sampled frame through a small 2-D stem fused into the
// early stages, and the long-term module (L-TDM), bidirectional feature differences between
// adjacent segments as a multi-scale excitation of each segment's features.
#pragma once
#include <memory>
#include <vector>

#include "nn/container.h"
#include "nn/conv.h"
#include "nn/norm.h"

namespace spool::models {

// ME: a 1x1 conv reduces C to C / reduction (bn1); a channel-wise 3x3 conv (conv2) transforms
// each frame's reduced features; the difference conv2(f)_{t+1} - f_t (zeros for a clip's last
// frame), averaged over space, is expanded back to C channels (conv3, bn3) into the attention
// a = sigmoid(.) - 1/2, and the output is x + x a. The spatial average is taken before the
// difference (the two are linear, so the result is the same and the difference is [NT, C/r]).
class MotionExcitation : public nn::Module {
 public:
  MotionExcitation(int64_t channels, int64_t segments, Generator* gen, int64_t reduction = 16);
  std::string type_name() const override { return "MEModule"; }
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<nn::Conv2d> conv1_, conv2_, conv3_;
  std::shared_ptr<nn::BatchNorm2d> bn1_, bn3_;
  int64_t segments_;
};

// A channel-wise temporal convolution of kernel 3 (temporal_conv), its weight `conv.weight`
// [C, 1, 3] as torch's depthwise Conv1d. Initialised as TEA does: `identity` passes each frame
// through (weight [0, 1, 0]); otherwise as TSM's shift, the first half of the channels from the
// next frame and the second half from the previous one.
class TemporalConv : public nn::Module {
 public:
  TemporalConv(int64_t channels, int64_t segments, bool identity);
  std::string type_name() const override { return "ShiftModule"; }
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<nn::Conv1d> conv_;
  int64_t segments_;
};

// MTA on C channels split into `scale` groups of C / scale: group i < scale - 1 adds the previous
// group's output (not in a `stage` block), then temporal conv shifts.<i> (identity at start),
// 3x3 conv convs.<i> (with the stride), bns.<i> and ReLU; the last group gets only its temporal
// conv (shift at start) and, in a stage block, a 3x3 average pool with the stride. The groups'
// outputs concatenated give C channels.
class TemporalAggregation : public nn::Module {
 public:
  TemporalAggregation(int64_t channels, int64_t segments, int64_t stride, bool stage,
                      Generator* gen, int64_t scale = 4);
  std::string type_name() const override { return "MTA"; }
  Tensor forward(const Tensor& x) override;

 private:
  std::vector<std::shared_ptr<nn::Conv2d>> convs_;
  std::vector<std::shared_ptr<nn::BatchNorm2d>> bns_;
  std::vector<std::shared_ptr<TemporalConv>> shifts_;
  int64_t width_, scale_, stride_;
  bool stage_;
};

// STM's CMM: a 1x1 conv reduces C to C / reduction (conv1), a channel-wise 3x3 conv (conv2)
// transforms each frame's reduced features, the difference conv2(f)_{t+1} - f_t (zeros for a
// clip's last frame) is the motion feature, and a 1x1 conv (conv3, with the block's stride)
// restores `out` channels. It is summed with the block's 3x3 conv before its BatchNorm.
class ChannelMotion : public nn::Module {
 public:
  ChannelMotion(int64_t channels, int64_t segments, int64_t stride, Generator* gen,
                int64_t reduction = 16);
  std::string type_name() const override { return "CMM"; }
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<nn::Conv2d> conv1_, conv2_, conv3_;
  int64_t segments_;
};

// TDN's L-TDM on x [N * segments, C, H, W]: a 1x1 conv reduces C to C / reduction (conv1, bn1)
// and a channel-wise 3x3 conv (conv2) transforms each segment's reduced features f into g. The
// forward difference g_{t+1} - f_t (zeros for a clip's last segment) and the backward one
// g_{t-1} - f_t (zeros for its first) each go through the same multi-scale step: the mean of
// the difference d itself, a 3x3 conv of it (conv_full, bn_full) and a 3x3 conv of d average-
// pooled to half size (3x3 window, stride 2, padding 1, padding not counted; conv_half,
// bn_half) resized back to full size by nearest neighbours; then a 1x1 conv back to C (conv3,
// bn3, shared by both directions) and a sigmoid. The output is x + x y with y the mean of the two
// sigmoids less 1/2: a per-pixel, per-channel excitation in (-1/2, 1/2), unlike TEA's ME, which
// pools over space.
class LongTermDifference : public nn::Module {
 public:
  LongTermDifference(int64_t channels, int64_t segments, Generator* gen, int64_t reduction = 16);
  std::string type_name() const override { return "LTDM"; }
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<nn::Conv2d> conv1_, conv2_, conv_full_, conv_half_, conv3_;
  std::shared_ptr<nn::BatchNorm2d> bn1_, bn_full_, bn_half_, bn3_;
  int64_t segments_;
};

// TDN's S-TDM on snippets [N * segments, 3 L, H, W] (L consecutive RGB frames around each
// sampled frame, frame-major): the L - 1 differences of consecutive frames, 3 (L - 1) channels,
// average-pooled 2x2, through a 7x7 stride-2 conv (conv1), bn1, ReLU and a 3x3 stride-2 max pool
// (stem(): the first motion features, at 1/8 of the frame) and a copy of the backbone's first
// stage (layer1: its blocks, plain 2-D ones, at the same widths). TdnNet fuses stem()'s output
// with the backbone's stem on the centre frame, and layer1's with the backbone's stage 1, each
// as 1/2 backbone + 1/2 motion resized (nearest) to the backbone's size.
class ShortTermDifference : public nn::Module {
 public:
  // depth: the backbone's (18, 34: basic blocks; 50, 101: bottlenecks); width its stem width.
  ShortTermDifference(int64_t frames, int64_t width, int64_t depth, Generator* gen);
  std::string type_name() const override { return "STDM"; }
  Tensor stem(const Tensor& snippets);  // [N K, 3 L, H, W] -> [N K, width, H / 8, W / 8]
  Tensor layer1(const Tensor& h);       // -> [N K, width * expansion, H / 8, W / 8]
  Tensor forward(const Tensor& snippets) override { return layer1(stem(snippets)); }
  int64_t frames() const { return frames_; }

 private:
  std::shared_ptr<nn::Conv2d> conv1_;
  std::shared_ptr<nn::BatchNorm2d> bn1_;
  std::shared_ptr<nn::Sequential> layer1_;
  int64_t frames_;
};

}  // namespace spool::models
