// Geometry of a convolution or pooling window over 1-3 spatial dims, padded to three (missing
// leading dims have size 1, kernel 1, stride 1, no padding), shared by the CPU and CUDA kernels.
#pragma once
#include <cstdint>

#include "engine/backend.h"
#include "engine/hd.h"

namespace spool {

struct Window3 {
  int64_t in[3], out[3], k[3], s[3], p[3], d[3];
  SPOOL_HD int64_t in_vol() const { return in[0] * in[1] * in[2]; }
  SPOOL_HD int64_t out_vol() const { return out[0] * out[1] * out[2]; }
  SPOOL_HD int64_t k_vol() const { return k[0] * k[1] * k[2]; }
};

// in_shape [N, C, *in], out_shape [N, C', *out].
inline Window3 window3(const Shape& in_shape, const Shape& out_shape, const WindowParams& w) {
  Window3 g;
  const int64_t nd = int64_t(in_shape.size()) - 2, lead = 3 - nd;
  for (int64_t i = 0; i < 3; ++i) {
    const bool real = i >= lead;
    const size_t j = size_t(i - lead);
    g.in[i] = real ? in_shape[size_t(2 + i - lead)] : 1;
    g.out[i] = real ? out_shape[size_t(2 + i - lead)] : 1;
    g.k[i] = real ? w.kernel[j] : 1;
    g.s[i] = real ? w.stride[j] : 1;
    g.p[i] = real ? w.padding[j] : 0;
    g.d[i] = real ? w.dilation[j] : 1;
  }
  return g;
}

}  // namespace spool
