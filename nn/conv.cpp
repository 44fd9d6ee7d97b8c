#include "nn/conv.h"

#include <cmath>

#include "engine/factory.h"
#include "nn/init.h"
#include "ops/shape.h"

namespace spool::nn {

ConvNd::ConvNd(int64_t dims, const ConvSpec& s, Generator* gen) : dims_(dims) {
  const std::string name = type_name();
  SPOOL_CHECK(s.in_channels > 0 && s.out_channels > 0 && s.groups > 0, name,
              ": channels and groups must be positive");
  SPOOL_CHECK(s.in_channels % s.groups == 0 && s.out_channels % s.groups == 0, name, ": groups ",
              s.groups, " must divide in_channels ", s.in_channels, " and out_channels ",
              s.out_channels);
  std::vector<int64_t> k = detail::per_dim(s.kernel, dims, name.c_str(), "kernel");
  Shape shape = {s.out_channels, s.in_channels / s.groups};
  shape.insert(shape.end(), k.begin(), k.end());
  weight = register_parameter("weight", empty(shape));
  init::kaiming_uniform_(weight, std::sqrt(5.0), init::FanMode::fan_in, gen);
  if (s.bias) {
    const double bound = 1.0 / std::sqrt(double(init::fan_in(weight)));
    bias = register_parameter("bias", rand({s.out_channels}, DType::f32, gen, -bound, bound));
  }
  options_ = {s.stride, s.padding, s.dilation, s.groups};
}

std::string ConvNd::type_name() const { return "Conv" + std::to_string(dims_) + "d"; }

Tensor ConvNd::forward(const Tensor& x) {
  SPOOL_CHECK(x.dim() == dims_ + 2, type_name(), ": input is ", str(x.shape()), "; expected ",
              dims_ + 2, " dims [N, C, ...]");
  SPOOL_CHECK(x.size(1) == weight.size(1) * options_.groups, type_name(), ": input has ", x.size(1),
              " channels, the layer expects ", weight.size(1) * options_.groups, " (weight ",
              str(weight.shape()), ")");
  return conv(x, weight, bias, options_);
}

Tensor ConvNd::forward_channels(const Tensor& x, int64_t first, int64_t count) {
  const int64_t out = weight.size(0);
  SPOOL_CHECK(options_.groups == 1, type_name(), "::forward_channels: a grouped convolution (",
              options_.groups, " groups) mixes channel ranges; only groups = 1 is split");
  SPOOL_CHECK(first >= 0 && count > 0 && first + count <= out, type_name(),
              "::forward_channels: channels [", first, ", ", first + count,
              ") are not within the layer's ", out, " output channels");
  SPOOL_CHECK(x.dim() == dims_ + 2 && x.size(1) == weight.size(1), type_name(),
              "::forward_channels: input is ", str(x.shape()), "; expected [N, ", weight.size(1),
              ", ...] with ", dims_, " spatial dims");
  return conv(x, narrow(weight, 0, first, count),
              bias.defined() ? narrow(bias, 0, first, count) : Tensor(), options_);
}

}  // namespace spool::nn
