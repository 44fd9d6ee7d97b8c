// Convolution over 1, 2 or 3 spatial dims, as torch.nn.functional.conv1d/2d/3d:
// x [N, C, *in], weight [Cout, C / groups, *kernel], bias [Cout] or undefined.
#pragma once
#include <vector>

#include "engine/tensor.h"

namespace spool {

struct ConvOptions {
  std::vector<int64_t> stride = {1};  // one value for every dim, or one per spatial dim
  std::vector<int64_t> padding = {0};
  std::vector<int64_t> dilation = {1};
  int64_t groups = 1;
};

Tensor conv(const Tensor& x, const Tensor& weight, const Tensor& bias = {},
            const ConvOptions& options = {});
inline Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor& b = {},
                     const ConvOptions& o = {}) {
  return conv(x, w, b, o);
}
inline Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b = {},
                     const ConvOptions& o = {}) {
  return conv(x, w, b, o);
}
inline Tensor conv3d(const Tensor& x, const Tensor& w, const Tensor& b = {},
                     const ConvOptions& o = {}) {
  return conv(x, w, b, o);
}

namespace detail {
// Expands a one-value list to `dims` values; names the op and argument on a wrong length.
std::vector<int64_t> per_dim(const std::vector<int64_t>& v, int64_t dims, const char* op,
                             const char* arg);
}  // namespace detail

}  // namespace spool
