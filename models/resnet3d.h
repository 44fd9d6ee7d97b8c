// ResNets inflated to 3D, with torchvision's module names (the weights are 5-D). Both depths share
// the stem, conv 5x7x7 stride (1, 2, 2) + BN + ReLU + max pool (1, 3, 3) stride (1, 2, 2), 1x1x1
// shortcut convs, spatial stride 2 at the first block of stages 2-4 and no temporal stride.
// - depth 18 (CONFIGS.md i3d-r18): in every stage the first block's first conv is 3x3x3, the
//   other convs 1x3x3.
// - depth 50: bottlenecks inflated as the I3D ResNet-50 of the video toolboxes ("3x1x1" style):
//   in the inflated blocks conv1 is 3x1x1, elsewhere 1x1x1; conv2 1x3x3, conv3 1x1x1; inflated
//   blocks per stage (1,1,1), (1,0,1,0), (1,0,1,0,1,0), (0,1,0). The toolboxes' temporal strides
//   (stem and first pool stride 2 in time, for 32-frame clips) are left out: clips here are 8
//   frames long.
// Optional non-local blocks (embedded Gaussian, on spool's attention op) after chosen stages, as
// NL I3D.
#pragma once
#include <memory>
#include <vector>

#include "engine/planner/chain.h"
#include "nn/container.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "nn/norm.h"

namespace spool::models {

struct ResNet3dConfig {
  int64_t num_classes = 0;  // 0: no fc; forward gives the pooled features
  int64_t width = 64;
  int64_t in_channels = 3;
  std::vector<int> non_local_stages;  // stages (1-4) followed by a non-local block
  int64_t depth = 18;                 // 18 or 50
};

class BasicBlock3d : public nn::Module {
 public:
  // conv1 first_kt x 3 x 3 (with the spatial stride), conv2 second_kt x 3 x 3.
  BasicBlock3d(int64_t in, int64_t out, int64_t stride, int64_t first_kt, Generator* gen,
               int64_t second_kt = 1);
  std::string type_name() const override { return "BasicBlock3d"; }
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<nn::Conv3d> conv1_, conv2_;
  std::shared_ptr<nn::BatchNorm3d> bn1_, bn2_;
  std::shared_ptr<nn::Sequential> downsample_;
};

// The 3-D bottleneck: conv1 (kt x 1 x 1, kt = 3 when inflated, else 1) to `planes`, conv2 1x3x3
// with the spatial stride, conv3 1x1x1 to 4 planes, BN after each, ReLU after the first two.
class Bottleneck3d : public nn::Module {
 public:
  Bottleneck3d(int64_t in, int64_t planes, int64_t stride, bool inflate, Generator* gen);
  std::string type_name() const override { return "Bottleneck3d"; }
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<nn::Conv3d> conv1_, conv2_, conv3_;
  std::shared_ptr<nn::BatchNorm3d> bn1_, bn2_, bn3_;
  std::shared_ptr<nn::Sequential> downsample_;
};

// Embedded-Gaussian non-local block (Wang et al., 2018) on x [N, C, T, H, W]: theta, phi, g are
// 1x1x1 convs to C/2; y = softmax(theta^T phi / sqrt(C/2)) g over all T*H*W positions (spool's
// flash attention); out = x + BN(conv_out(y)), the BN's weight zero-initialised so the block
// starts as the identity.
class NonLocal3d : public nn::Module {
 public:
  NonLocal3d(int64_t channels, Generator* gen);
  std::string type_name() const override { return "NonLocal3d"; }
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<nn::Conv3d> theta_, phi_, g_, conv_out_;
  std::shared_ptr<nn::BatchNorm3d> bn_;
};

class ResNet3d : public nn::Module {
 public:
  explicit ResNet3d(const ResNet3dConfig& config = {}, Generator* gen = nullptr);
  std::string type_name() const override { return "ResNet3d"; }
  Tensor forward(const Tensor& x) override;  // [N, 3, T, H, W] -> features or logits
  Tensor features(const Tensor& x);          // [N, feature_dim()]
  int64_t feature_dim() const;               // 8 * width (depth 18) or 32 * width (depth 50)
  const ResNet3dConfig& config() const { return config_; }
  // The pieces chains are built from: the stem, the blocks (and non-local blocks) as named
  // stages, the pooling.
  Tensor stem(const Tensor& x);
  std::vector<Stage> block_stages();
  Tensor pooled(const Tensor& h);

 private:
  ResNet3dConfig config_;
  std::shared_ptr<nn::Conv3d> conv1_;
  std::shared_ptr<nn::BatchNorm3d> bn1_;
  std::shared_ptr<nn::Sequential> layers_[4];
  std::shared_ptr<NonLocal3d> non_local_[4];
  std::shared_ptr<nn::Linear> fc_;
};

// The state of `target` (a 3-D model) from 2-D weights: each 5-D weight is the 2-D one repeated
// along time and divided by the temporal size (so a clip of identical frames gives the 2-D
// network's activations); other tensors (BN, fc) are copied. `prefix` is prepended to the 2-D
// names (for example "backbone."). Tensors of the target that the 2-D state lacks (non-local
// blocks, a head) keep their values; 2-D tensors the target lacks are ignored. Shapes that do not
// correspond raise spool::Error naming the tensor.
nn::NamedTensors inflate_2d(const nn::NamedTensors& state2d, const nn::Module& target,
                            const std::string& prefix = "");

}  // namespace spool::models
