// CPU convolution: im2col/vol2col + OpenBLAS GEMM, one sample and group at a time. 1, 2 and 3
// spatial dims share one 3-D implementation (missing dims have size 1). The column buffer is
// kernel scratch, not tensor memory, so it is not counted by the allocator. f32 goes to oneDNN
// instead where ops/cpu/paths.h selects it (the default where the build has oneDNN).
#include <cblas.h>

#include <cstring>
#include <vector>

#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"
#include "ops/cpu/onednn_conv.h"
#include "ops/cpu/paths.h"
#include "ops/cpu/window.h"

namespace spool::cpu {

namespace {

using Geo = Window3;

// Row r = (c, kd, kh, kw) of col (rows ld apart) holds, for every output position, the input value
// that kernel tap meets there (0 in the padding).
template <class T>
void im2col(const T* x, int64_t channels, const Geo& g, T* col, int64_t ld) {
  const int64_t kv = g.k_vol(), ov = g.out_vol(), rows = channels * kv;
#pragma omp parallel for schedule(static) if (rows * ov >= kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = r / kv, kk = r % kv;
    int64_t tap[3];
    g.tap_coords(kk, tap);
    const int64_t kd = tap[0], kh = tap[1], kw = tap[2];
    const T* xc = x + c * g.in_vol();
    T* o = col + r * ld;
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
void col2im(const T* col, int64_t ld, int64_t channels, const Geo& g, T* x) {
  const int64_t kv = g.k_vol(), ov = g.out_vol();
#pragma omp parallel for schedule(static) if (channels * kv * ov >= kParallelGrain)
  for (int64_t c = 0; c < channels; ++c) {
    T* xc = x + c * g.in_vol();
    for (int64_t kk = 0; kk < kv; ++kk) {
      int64_t tap[3];
      g.tap_coords(kk, tap);
      const int64_t kd = tap[0], kh = tap[1], kw = tap[2];
      const T* o = col + (c * kv + kk) * ld;
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
    cblas_dgemm(CblasRowMajor, A, B, int(m), int(n), int(k), 1.0, a, int(lda), b, int(ldb), beta, c,
                int(ldc));
}

// Samples are batched into one GEMM per group ([kdim, chunk * L] columns), so each weight is
// packed once per chunk rather than once per sample; the chunk keeps the column buffer near
// 16 M elements.
ConvDims dims_of(const Tensor& x_like, const Tensor& w, const Tensor& y_like,
                 const WindowParams& p) {
  return conv_dims(x_like.shape(), w.shape(), y_like.shape(), p, int64_t(1) << 24);
}

// Copies rows [c0, c0 + rows) of sample planes [n0, n0 + cn) of t ([N, C, L]) into a
// [rows, cn * L] matrix, or back (to_matrix = false).
template <class T>
void gather_samples(T* t, int64_t channels, int64_t l, int64_t n0, int64_t cn, int64_t c0,
                    int64_t rows, T* m, bool to_matrix) {
#pragma omp parallel for collapse(2) schedule(static) if (rows * cn * l >= kParallelGrain)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t n = 0; n < cn; ++n) {
      T* a = t + ((n0 + n) * channels + c0 + r) * l;
      T* b = m + r * cn * l + n * l;
      if (to_matrix)
        std::memcpy(b, a, size_t(l) * sizeof(T));
      else
        std::memcpy(a, b, size_t(l) * sizeof(T));
    }
}

// Whether this call goes to oneDNN: f32, a non-empty problem, and the oneDNN path selected.
bool to_onednn(const Tensor& a, const Tensor& b, const Tensor& c) {
  const bool selected = conv_path() == Conv::onednn;  // reads SPOOL_CPU_CONV, even for f64
#ifdef SPOOL_HAVE_ONEDNN
  return selected && a.dtype() == DType::f32 && a.numel() > 0 && b.numel() > 0 && c.numel() > 0;
#else
  (void)selected;
  return false;
#endif
}

}  // namespace

void CpuBackend::conv(const Tensor& x, const Tensor& w, const WindowParams& p, const Tensor& y) {
  if (to_onednn(x, w, y)) {
#ifdef SPOOL_HAVE_ONEDNN
    return onednn::conv(x, w, p, y);
#endif
  }
  const ConvDims d = dims_of(x, w, y, p);
  dispatch_float(x.dtype(), "conv", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.raw());
    const T* pw = static_cast<const T*>(w.raw());
    T* py = static_cast<T*>(y.raw());
    std::vector<T> col(size_t(d.kdim * d.chunk * d.l)), out(size_t(d.cog * d.chunk * d.l));
    for (int64_t n0 = 0; n0 < d.n; n0 += d.chunk) {
      const int64_t cn = std::min(d.chunk, d.n - n0), ld = cn * d.l;
      for (int64_t gr = 0; gr < d.groups; ++gr) {
        for (int64_t n = 0; n < cn; ++n)
          im2col(px + ((n0 + n) * d.cin + gr * d.cg) * d.g.in_vol(), d.cg, d.g,
                 col.data() + n * d.l, ld);
        // out [cog, cn L] = w[g] [cog, kdim] @ col [kdim, cn L]
        gemm<T>(false, false, d.cog, ld, d.kdim, pw + gr * d.cog * d.kdim, d.kdim, col.data(), ld,
                T(0), out.data(), ld);
        gather_samples(py, d.cout, d.l, n0, cn, gr * d.cog, d.cog, out.data(), false);
      }
    }
  });
}

void CpuBackend::conv_backward_input(const Tensor& gy, const Tensor& w, const WindowParams& p,
                                     const Tensor& gx) {
  if (to_onednn(gy, w, gx)) {
#ifdef SPOOL_HAVE_ONEDNN
    return onednn::conv_backward_input(gy, w, p, gx);
#endif
  }
  const ConvDims d = dims_of(gx, w, gy, p);
  dispatch_float(gy.dtype(), "conv_backward_input", [&](auto tag) {
    using T = decltype(tag);
    T* pg = static_cast<T*>(gy.raw());
    const T* pw = static_cast<const T*>(w.raw());
    T* px = static_cast<T*>(gx.raw());
    std::memset(px, 0, size_t(gx.numel()) * sizeof(T));
    std::vector<T> col(size_t(d.kdim * d.chunk * d.l)), gyc(size_t(d.cog * d.chunk * d.l));
    for (int64_t n0 = 0; n0 < d.n; n0 += d.chunk) {
      const int64_t cn = std::min(d.chunk, d.n - n0), ld = cn * d.l;
      for (int64_t gr = 0; gr < d.groups; ++gr) {
        gather_samples(pg, d.cout, d.l, n0, cn, gr * d.cog, d.cog, gyc.data(), true);
        // dcol [kdim, cn L] = w[g]^T [kdim, cog] @ gy [cog, cn L]
        gemm<T>(true, false, d.kdim, ld, d.cog, pw + gr * d.cog * d.kdim, d.kdim, gyc.data(), ld,
                T(0), col.data(), ld);
        for (int64_t n = 0; n < cn; ++n)
          col2im(col.data() + n * d.l, ld, d.cg, d.g,
                 px + ((n0 + n) * d.cin + gr * d.cg) * d.g.in_vol());
      }
    }
  });
}

void CpuBackend::conv_backward_weight(const Tensor& gy, const Tensor& x, const WindowParams& p,
                                      const Tensor& gw) {
  if (to_onednn(gy, x, gw)) {
#ifdef SPOOL_HAVE_ONEDNN
    return onednn::conv_backward_weight(gy, x, p, gw);
#endif
  }
  const ConvDims d = dims_of(x, gw, gy, p);
  dispatch_float(gy.dtype(), "conv_backward_weight", [&](auto tag) {
    using T = decltype(tag);
    T* pg = static_cast<T*>(gy.raw());
    const T* px = static_cast<const T*>(x.raw());
    T* pw = static_cast<T*>(gw.raw());
    std::vector<T> col(size_t(d.kdim * d.chunk * d.l)), gyc(size_t(d.cog * d.chunk * d.l));
    for (int64_t n0 = 0; n0 < d.n; n0 += d.chunk) {
      const int64_t cn = std::min(d.chunk, d.n - n0), ld = cn * d.l;
      for (int64_t gr = 0; gr < d.groups; ++gr) {
        for (int64_t n = 0; n < cn; ++n)
          im2col(px + ((n0 + n) * d.cin + gr * d.cg) * d.g.in_vol(), d.cg, d.g,
                 col.data() + n * d.l, ld);
        gather_samples(pg, d.cout, d.l, n0, cn, gr * d.cog, d.cog, gyc.data(), true);
        // gw[g] [cog, kdim] (+)= gy [cog, cn L] @ col^T [cn L, kdim]
        gemm<T>(false, true, d.cog, d.kdim, ld, gyc.data(), ld, col.data(), ld,
                n0 == 0 ? T(0) : T(1), pw + gr * d.cog * d.kdim, d.kdim);
      }
    }
  });
}

}  // namespace spool::cpu
