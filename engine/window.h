// Geometry of a convolution or pooling window over 1-3 spatial dims, padded to three (missing
// leading dims have size 1, kernel 1, stride 1, no padding), shared by the CPU and CUDA kernels.
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>

#include "engine/backend.h"
#include "engine/host_device.h"

namespace spool {

struct Window3 {
  int64_t in[3], out[3], k[3], s[3], p[3], d[3];
  SPOOL_HD int64_t in_vol() const { return in[0] * in[1] * in[2]; }
  SPOOL_HD int64_t out_vol() const { return out[0] * out[1] * out[2]; }
  SPOOL_HD int64_t k_vol() const { return k[0] * k[1] * k[2]; }
  // Coordinates (d, h, w) of flat output / input position o.
  SPOOL_HD void out_coords(int64_t o, int64_t (&c)[3]) const {
    c[2] = o % out[2];
    c[1] = (o / out[2]) % out[1];
    c[0] = o / (out[2] * out[1]);
  }
  SPOOL_HD void in_coords(int64_t i, int64_t (&c)[3]) const {
    c[2] = i % in[2];
    c[1] = (i / in[2]) % in[1];
    c[0] = i / (in[2] * in[1]);
  }
  // Tap (kd, kh, kw) of flat kernel position kk.
  SPOOL_HD void tap_coords(int64_t kk, int64_t (&c)[3]) const {
    c[2] = kk % k[2];
    c[1] = (kk / k[2]) % k[1];
    c[0] = kk / (k[2] * k[1]);
  }
  // Where the window of output position oc starts in the (unpadded) input, per dim.
  SPOOL_HD void window_start(const int64_t (&oc)[3], int64_t (&st)[3]) const {
    for (int i = 0; i < 3; ++i) st[i] = oc[i] * s[i] - p[i];
  }
  // The maximum of x (one plane) over the window starting at st, taps dilated, padding skipped,
  // and its flat input index in *arg (-1 for a window wholly in the padding, whose maximum is
  // -inf). The first maximum wins; a NaN wins at once, as in PyTorch.
  template <class T>
  SPOOL_HD T window_max(const T* x, const int64_t (&st)[3], int64_t* arg) const {
    T best = -std::numeric_limits<T>::infinity();
    *arg = -1;
    for (int64_t a = 0; a < k[0]; ++a) {
      const int64_t id = st[0] + a * d[0];
      if (id < 0 || id >= in[0]) continue;
      for (int64_t b = 0; b < k[1]; ++b) {
        const int64_t ih = st[1] + b * d[1];
        if (ih < 0 || ih >= in[1]) continue;
        for (int64_t c = 0; c < k[2]; ++c) {
          const int64_t iw = st[2] + c * d[2];
          if (iw < 0 || iw >= in[2]) continue;
          const int64_t at = (id * in[1] + ih) * in[2] + iw;
          const T v = x[at];
          if (*arg < 0 || v > best || v != v) {
            best = v;
            *arg = at;
            if (v != v) return best;
          }
        }
      }
    }
    return best;
  }
  // How many elements average pooling divides by for the window starting at st (PyTorch's rule:
  // with count_include_pad the window is clipped to the padded input, otherwise to the input).
  SPOOL_HD int64_t avg_divisor(const int64_t (&st)[3], bool include_pad) const {
    int64_t count = 1;
    for (int i = 0; i < 3; ++i) {
      int64_t lo = st[i], hi = st[i] + k[i];
      if (include_pad) {
        hi = hi < in[i] + p[i] ? hi : in[i] + p[i];
      } else {
        lo = lo > 0 ? lo : 0;
        hi = hi < in[i] ? hi : in[i];
      }
      count *= hi > lo ? hi - lo : 0;
    }
    return count > 1 ? count : 1;
  }
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

// The sizes of a convolution's three entry points (forward, input and weight gradients) for
// x [N, Cin, *in], w [Cout, Cin / groups, *k], y [N, Cout, *out]. Samples are batched `chunk` at a
// time so that a column buffer of chunk x kdim x L elements stays near `column_budget`.
struct ConvDims {
  int64_t n, cin, cout, groups, cg, cog, kdim, l;
  int64_t chunk;
  Window3 g;
};

inline ConvDims conv_dims(const Shape& x, const Shape& w, const Shape& y, const WindowParams& p,
                          int64_t column_budget) {
  ConvDims d;
  d.g = window3(x, y, p);
  d.n = x[0];
  d.cin = x[1];
  d.cout = w[0];
  d.groups = p.groups;
  d.cg = d.cin / d.groups;
  d.cog = d.cout / d.groups;
  d.kdim = d.cg * d.g.k_vol();
  d.l = d.g.out_vol();
  d.chunk = std::max<int64_t>(
      1, std::min<int64_t>(d.n, column_budget / std::max<int64_t>(1, d.kdim * d.l)));
  return d;
}

}  // namespace spool
