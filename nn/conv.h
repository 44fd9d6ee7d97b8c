// Convolution layers, as torch.nn.Conv1d/2d/3d (weight [out, in / groups, *kernel], default
// initialisation kaiming_uniform with a = sqrt(5), bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))).
#pragma once
#include <vector>

#include "engine/rng.h"
#include "nn/module.h"
#include "ops/conv.h"

namespace spool::nn {

struct ConvSpec {
  int64_t in_channels, out_channels;
  std::vector<int64_t> kernel;  // one value for every dim, or one per spatial dim
  std::vector<int64_t> stride = {1}, padding = {0}, dilation = {1};
  int64_t groups = 1;
  bool bias = true;
};

class ConvNd : public Module {
 public:
  ConvNd(int64_t spatial_dims, const ConvSpec& spec, Generator* gen = nullptr);
  std::string type_name() const override;
  Tensor forward(const Tensor& x) override;
  // Output channels [first, first + count) of forward(x), from those filters alone (each output
  // channel of an ungrouped convolution reads only its own filter, so the values are forward's).
  Tensor forward_channels(const Tensor& x, int64_t first, int64_t count);

  Tensor weight, bias;

 private:
  int64_t dims_;
  ConvOptions options_;
};

class Conv1d : public ConvNd {
 public:
  explicit Conv1d(const ConvSpec& s, Generator* gen = nullptr) : ConvNd(1, s, gen) {}
};
class Conv2d : public ConvNd {
 public:
  explicit Conv2d(const ConvSpec& s, Generator* gen = nullptr) : ConvNd(2, s, gen) {}
};
class Conv3d : public ConvNd {
 public:
  explicit Conv3d(const ConvSpec& s, Generator* gen = nullptr) : ConvNd(3, s, gen) {}
};

}  // namespace spool::nn
