// CPU convolution: im2col/vol2col + OpenBLAS GEMM, one sample and group at a time. 1, 2 and 3
// spatial dims share one 3-D implementation (missing dims have size 1). The column buffer is
// kernel scratch, not tensor memory, so it is not counted by the allocator.
#include <cblas.h>

#include <cstring>
#include <vector>

#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"

namespace spool::cpu {

namespace {

// Window geometry padded to three spatial dims.
struct Geo {
  int64_t in[3], out[3], k[3], s[3], p[3], d[3];
  int64_t in_vol() const { return in[0] * in[1] * in[2]; }
  int64_t out_vol() const { return out[0] * out[1] * out[2]; }
  int64_t k_vol() const { return k[0] * k[1] * k[2]; }
  bool pointwise() const {  // 1x1 kernel, stride 1, no padding: the input is its own im2col
    for (int i = 0; i < 3; ++i)
      if (k[i] != 1 || s[i] != 1 || p[i] != 0) return false;
    return true;
  }
};

Geo geometry(const Shape& in_shape, const Shape& out_shape, const WindowParams& w) {
  Geo g;
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

// Row r = (c, kd, kh, kw) of col holds, for every output position, the input value that kernel
// tap meets there (0 in the padding).
template <class T>
void im2col(const T* x, int64_t channels, const Geo& g, T* col) {
  const int64_t kv = g.k_vol(), ov = g.out_vol(), rows = channels * kv;
#pragma omp parallel for schedule(static) if (rows * ov >= kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = r / kv, kk = r % kv;
    const int64_t kw = kk % g.k[2], kh = (kk / g.k[2]) % g.k[1], kd = kk / (g.k[2] * g.k[1]);
    const T* xc = x + c * g.in_vol();
    T* o = col + r * ov;
    for (int64_t od = 0; od < g.out[0]; ++od) {
      const int64_t id = od * g.s[0] - g.p[0] + kd * g.d[0];
      for (int64_t oh = 0; oh < g.out[1]; ++oh, o += g.out[2]) {
        const int64_t ih = oh * g.s[1] - g.p[1] + kh * g.d[1];
        if (id < 0 || id >= g.in[0] || ih < 0 || ih >= g.in[1]) {
          std::memset(o, 0, size_t(g.out[2]) * sizeof(T));
          continue;
        }
        const T* xr = xc + (id * g.in[1] + ih) * g.in[2];
        const int64_t base = kw * g.d[2] - g.p[2];
        for (int64_t ow = 0; ow < g.out[2]; ++ow) {
          const int64_t iw = ow * g.s[2] + base;
          o[ow] = (iw >= 0 && iw < g.in[2]) ? xr[iw] : T(0);
        }
      }
    }
  }
}

// The adjoint of im2col: adds every column entry back onto the input position it came from.
// Parallel over channels, so no two threads touch the same image.
template <class T>
void col2im(const T* col, int64_t channels, const Geo& g, T* x) {
  const int64_t kv = g.k_vol(), ov = g.out_vol();
#pragma omp parallel for schedule(static) if (channels * kv * ov >= kParallelGrain)
  for (int64_t c = 0; c < channels; ++c) {
    T* xc = x + c * g.in_vol();
    for (int64_t kk = 0; kk < kv; ++kk) {
      const int64_t kw = kk % g.k[2], kh = (kk / g.k[2]) % g.k[1], kd = kk / (g.k[2] * g.k[1]);
      const T* o = col + (c * kv + kk) * ov;
      for (int64_t od = 0; od < g.out[0]; ++od) {
        const int64_t id = od * g.s[0] - g.p[0] + kd * g.d[0];
        for (int64_t oh = 0; oh < g.out[1]; ++oh, o += g.out[2]) {
          const int64_t ih = oh * g.s[1] - g.p[1] + kh * g.d[1];
          if (id < 0 || id >= g.in[0] || ih < 0 || ih >= g.in[1]) continue;
          T* xr = xc + (id * g.in[1] + ih) * g.in[2];
          const int64_t base = kw * g.d[2] - g.p[2];
          for (int64_t ow = 0; ow < g.out[2]; ++ow) {
            const int64_t iw = ow * g.s[2] + base;
            if (iw >= 0 && iw < g.in[2]) xr[iw] += o[ow];
          }
        }
      }
    }
  }
}

template <class T>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b,
          int64_t ldb, T beta, T* c, int64_t ldc) {
  auto A = ta ? CblasTrans : CblasNoTrans, B = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, A, B, int(m), int(n), int(k), 1.0f, a, int(lda), b, int(ldb), beta,
                c, int(ldc));
  else
    cblas_dgemm(CblasRowMajor, A, B, int(m), int(n), int(k), 1.0, a, int(lda), b, int(ldb), beta,
                c, int(ldc));
}

// Sizes shared by the three entry points.
struct ConvDims {
  int64_t n, cin, cout, groups, cg, cog, kdim, l;
  Geo g;
};

ConvDims dims_of(const Tensor& x_like, const Tensor& w, const Tensor& y_like,
                 const WindowParams& p) {
  ConvDims d;
  d.g = geometry(x_like.shape(), y_like.shape(), p);
  d.n = x_like.shape()[0];
  d.cin = x_like.shape()[1];
  d.cout = w.shape()[0];
  d.groups = p.groups;
  d.cg = d.cin / d.groups;
  d.cog = d.cout / d.groups;
  d.kdim = d.cg * d.g.k_vol();
  d.l = d.g.out_vol();
  return d;
}

}  // namespace

void CpuBackend::conv(const Tensor& x, const Tensor& w, const WindowParams& p, const Tensor& y) {
  const ConvDims d = dims_of(x, w, y, p);
  dispatch_float(x.dtype(), "conv", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.raw());
    const T* pw = static_cast<const T*>(w.raw());
    T* py = static_cast<T*>(y.raw());
    std::vector<T> col(d.g.pointwise() ? 0 : size_t(d.kdim * d.l));
    for (int64_t n = 0; n < d.n; ++n)
      for (int64_t gr = 0; gr < d.groups; ++gr) {
        const T* xg = px + (n * d.cin + gr * d.cg) * d.g.in_vol();
        const T* src = xg;
        if (!d.g.pointwise()) {
          im2col(xg, d.cg, d.g, col.data());
          src = col.data();
        }
        // y[n, g] [cog, L] = w[g] [cog, kdim] @ col [kdim, L]
        gemm<T>(false, false, d.cog, d.l, d.kdim, pw + gr * d.cog * d.kdim, d.kdim, src, d.l, T(0),
                py + (n * d.cout + gr * d.cog) * d.l, d.l);
      }
  });
}

void CpuBackend::conv_backward_input(const Tensor& gy, const Tensor& w, const WindowParams& p,
                                     const Tensor& gx) {
  const ConvDims d = dims_of(gx, w, gy, p);
  dispatch_float(gy.dtype(), "conv_backward_input", [&](auto tag) {
    using T = decltype(tag);
    const T* pg = static_cast<const T*>(gy.raw());
    const T* pw = static_cast<const T*>(w.raw());
    T* px = static_cast<T*>(gx.raw());
    if (!d.g.pointwise()) std::memset(px, 0, size_t(gx.numel()) * sizeof(T));
    std::vector<T> col(d.g.pointwise() ? 0 : size_t(d.kdim * d.l));
    for (int64_t n = 0; n < d.n; ++n)
      for (int64_t gr = 0; gr < d.groups; ++gr) {
        T* xg = px + (n * d.cin + gr * d.cg) * d.g.in_vol();
        T* dst = d.g.pointwise() ? xg : col.data();
        // dcol [kdim, L] = w[g]^T [kdim, cog] @ gy[n, g] [cog, L]
        gemm<T>(true, false, d.kdim, d.l, d.cog, pw + gr * d.cog * d.kdim, d.kdim,
                pg + (n * d.cout + gr * d.cog) * d.l, d.l, T(0), dst, d.l);
        if (!d.g.pointwise()) col2im(col.data(), d.cg, d.g, xg);
      }
  });
}

void CpuBackend::conv_backward_weight(const Tensor& gy, const Tensor& x, const WindowParams& p,
                                      const Tensor& gw) {
  const ConvDims d = dims_of(x, gw, gy, p);
  dispatch_float(gy.dtype(), "conv_backward_weight", [&](auto tag) {
    using T = decltype(tag);
    const T* pg = static_cast<const T*>(gy.raw());
    const T* px = static_cast<const T*>(x.raw());
    T* pw = static_cast<T*>(gw.raw());
    std::vector<T> col(d.g.pointwise() ? 0 : size_t(d.kdim * d.l));
    for (int64_t n = 0; n < d.n; ++n)
      for (int64_t gr = 0; gr < d.groups; ++gr) {
        const T* xg = px + (n * d.cin + gr * d.cg) * d.g.in_vol();
        const T* src = xg;
        if (!d.g.pointwise()) {
          im2col(xg, d.cg, d.g, col.data());
          src = col.data();
        }
        // gw[g] [cog, kdim] (+)= gy[n, g] [cog, L] @ col^T [L, kdim]
        gemm<T>(false, true, d.cog, d.kdim, d.l, pg + (n * d.cout + gr * d.cog) * d.l, d.l, src,
                d.l, n == 0 ? T(0) : T(1), pw + gr * d.cog * d.kdim, d.kdim);
      }
  });
}

}  // namespace spool::cpu
