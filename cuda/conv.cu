// CUDA convolution over 1-3 spatial dims: im2col / vol2col into scratch memory, then GEMMs
// (cuBLAS, or the tiled SGEMM) batched over a chunk of samples; the input gradient goes back
// through col2im written as a gather (each input element sums the column entries that came from
// it, in a fixed order), so no atomics and the same result every run. cuda::set_conv (or
// SPOOL_CUDA_CONV) sends the three entry points to cuDNN instead (cuda/cudnn_conv.cu) where the
// build has it.
#include <atomic>
#include <cstdlib>
#include <string>

#include "cuda/common.cuh"
#include "cuda/control.h"
#include "cuda/cuda_backend.h"
#include "cuda/cudnn_conv.h"
#include "cuda/gemm.h"
#include "engine/window.h"

namespace spool::cuda {

bool cudnn_available(std::string* why) {
#if defined(SPOOL_HAVE_CUDNN)
  (void)why;
  return true;
#elif defined(SPOOL_CUDA_EMULATED)
  if (why) *why = "cuDNN is not emulated (SPOOL_CUDA=EMULATE runs spool's own kernels only)";
  return false;
#else
  if (why)
    *why =
        "this build has no cuDNN (CMake found no cudnn.h and libcudnn for the CUDA build, or "
        "SPOOL_CUDNN=OFF)";
  return false;
#endif
}

#ifndef SPOOL_HAVE_CUDNN
size_t cudnn_version() { return 0; }
#endif

namespace {

// -1 until set: the first conv_path() reads SPOOL_CUDA_CONV.
std::atomic<int> g_conv{-1};

}  // namespace

void set_conv(Conv c) {
  std::string why;
  if (c == Conv::cudnn && !cudnn_available(&why)) fail("cuda::set_conv(Conv::cudnn): ", why);
  g_conv.store(int(c));
}

Conv conv_path() {
  const int c = g_conv.load();
  if (c >= 0) return Conv(c);
  const char* v = std::getenv("SPOOL_CUDA_CONV");
  const std::string s = v ? v : "";
  if (s.empty() || s == "im2col") {
    g_conv.store(int(Conv::im2col));
  } else if (s == "cudnn") {
    std::string why;
    // Left unset: every convolution says why, rather than quietly taking the other path.
    if (!cudnn_available(&why)) fail("SPOOL_CUDA_CONV=cudnn: ", why);
    g_conv.store(int(Conv::cudnn));
  } else {
    fail("SPOOL_CUDA_CONV=", s, ": expected im2col or cudnn");
  }
  return Conv(g_conv.load());
}

namespace {

#ifdef SPOOL_HAVE_CUDNN
bool use_cudnn() { return conv_path() == Conv::cudnn; }
#else
bool use_cudnn() {
  conv_path();  // an SPOOL_CUDA_CONV that asks for what is not here is an error, not ignored
  return false;
}
#endif

// col[s][(c * kv + kk) * L + o] for samples s < chunk, channels c < cg of group `group`.
template <class T>
__global__ void im2col_kernel(Window3 g, int64_t chunk, int64_t cin, int64_t cg, int64_t group,
                              const T* x, T* col) {
  const int64_t kv = g.k_vol(), L = g.out_vol(), per_sample = cg * kv * L,
                total = chunk * per_sample;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t s = e / per_sample, rem = e % per_sample;
    const int64_t row = rem / L, o = rem % L;
    const int64_t c = row / kv;
    int64_t tap[3], oc[3], st[3];
    g.tap_coords(row % kv, tap);
    g.out_coords(o, oc);
    g.window_start(oc, st);
    const int64_t id = st[0] + tap[0] * g.d[0], ih = st[1] + tap[1] * g.d[1],
                  iw = st[2] + tap[2] * g.d[2];
    T v = T(0);
    if (id >= 0 && id < g.in[0] && ih >= 0 && ih < g.in[1] && iw >= 0 && iw < g.in[2])
      v = x[((s * cin + group * cg + c) * g.in[0] + id) * g.in[1] * g.in[2] + ih * g.in[2] + iw];
    col[e] = v;
  }
}

// The output positions along one dim whose window tap k meets input position i.
__device__ __forceinline__ bool tap_hits(int64_t i, int64_t k, int64_t s, int64_t p, int64_t d,
                                         int64_t out, int64_t& o) {
  const int64_t t = i + p - k * d;
  if (t < 0 || t % s != 0) return false;
  o = t / s;
  return o < out;
}

// gx for channels of `group` from col (layout as im2col's): each input element sums its taps.
template <class T>
__global__ void col2im_kernel(Window3 g, int64_t chunk, int64_t cin, int64_t cg, int64_t group,
                              const T* col, T* gx) {
  const int64_t kv = g.k_vol(), L = g.out_vol(), iv = g.in_vol(), total = chunk * cg * iv;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t s = e / (cg * iv), c = (e / iv) % cg, at = e % iv;
    int64_t ic[3];
    g.in_coords(at, ic);
    const int64_t id = ic[0], ih = ic[1], iw = ic[2];
    const T* cs = col + (s * cg + c) * kv * L;
    T acc = T(0);
    for (int64_t kd = 0; kd < g.k[0]; ++kd) {
      int64_t od;
      if (!tap_hits(id, kd, g.s[0], g.p[0], g.d[0], g.out[0], od)) continue;
      for (int64_t kh = 0; kh < g.k[1]; ++kh) {
        int64_t oh;
        if (!tap_hits(ih, kh, g.s[1], g.p[1], g.d[1], g.out[1], oh)) continue;
        for (int64_t kw = 0; kw < g.k[2]; ++kw) {
          int64_t ow;
          if (!tap_hits(iw, kw, g.s[2], g.p[2], g.d[2], g.out[2], ow)) continue;
          const int64_t kk = (kd * g.k[1] + kh) * g.k[2] + kw;
          acc += cs[kk * L + (od * g.out[1] + oh) * g.out[2] + ow];
        }
      }
    }
    gx[(s * cin + group * cg + c) * iv + at] = acc;
  }
}

// The column buffer stays near 64 M elements (scratch memory on the device).
ConvDims dims_of(const Tensor& x_like, const Tensor& w, const Tensor& y_like,
                 const WindowParams& p) {
  return conv_dims(x_like.shape(), w.shape(), y_like.shape(), p, int64_t(1) << 26);
}

template <class T>
void im2col(const ConvDims& d, int64_t n0, int64_t cn, int64_t group, const T* x, T* col) {
  const int64_t total = cn * d.kdim * d.l;
  SPOOL_LAUNCH(im2col_kernel, grid_for(total), kThreads, 0, stream(), d.g, cn, d.cin, d.cg, group,
               x + n0 * d.cin * d.g.in_vol(), col);
  SPOOL_CUDA_LAUNCHED("im2col");
}

}  // namespace

void CudaBackend::conv(const Tensor& x, const Tensor& w, const WindowParams& p, const Tensor& y) {
  const ConvDims d = dims_of(x, w, y, p);
  if (d.n == 0 || d.l == 0) return;
#ifdef SPOOL_HAVE_CUDNN
  if (use_cudnn()) return cudnn_conv(x, w, p, y);
#else
  use_cudnn();
#endif
  dispatch_float(x.dtype(), "conv", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.raw());
    const T* pw = static_cast<const T*>(w.raw());
    T* py = static_cast<T*>(y.raw());
    T* col = static_cast<T*>(scratch(size_t(d.chunk * d.kdim * d.l) * sizeof(T)));
    for (int64_t n0 = 0; n0 < d.n; n0 += d.chunk) {
      const int64_t cn = std::min(d.chunk, d.n - n0);
      for (int64_t grp = 0; grp < d.groups; ++grp) {
        im2col(d, n0, cn, grp, px, col);
        // y[s, grp] [cog, L] = W_grp [cog, kdim] x col[s] [kdim, L], for each sample s.
        GemmArgs<T> a;
        a.m = d.cog;
        a.n = d.l;
        a.k = d.kdim;
        a.batch = cn;
        a.a = pw + grp * d.cog * d.kdim;
        a.a_row = d.kdim;
        a.a_col = 1;
        a.batch_a = 0;
        a.b = col;
        a.b_row = d.l;
        a.b_col = 1;
        a.batch_b = d.kdim * d.l;
        a.c = py + (n0 * d.cout + grp * d.cog) * d.l;
        a.c_row = d.l;
        a.batch_c = d.cout * d.l;
        gemm_strided(a);
      }
    }
  });
}

void CudaBackend::conv_backward_input(const Tensor& gy, const Tensor& w, const WindowParams& p,
                                      const Tensor& gx) {
  const ConvDims d = dims_of(gx, w, gy, p);
  if (d.n == 0) return;
  if (d.l == 0) {
    fill(gx, 0);
    return;
  }
#ifdef SPOOL_HAVE_CUDNN
  if (use_cudnn()) return cudnn_conv_backward_input(gy, w, p, gx);
#else
  use_cudnn();
#endif
  dispatch_float(gy.dtype(), "conv_backward_input", [&](auto tag) {
    using T = decltype(tag);
    const T* pg = static_cast<const T*>(gy.raw());
    const T* pw = static_cast<const T*>(w.raw());
    T* px = static_cast<T*>(gx.raw());
    T* col = static_cast<T*>(scratch(size_t(d.chunk * d.kdim * d.l) * sizeof(T)));
    for (int64_t n0 = 0; n0 < d.n; n0 += d.chunk) {
      const int64_t cn = std::min(d.chunk, d.n - n0);
      for (int64_t grp = 0; grp < d.groups; ++grp) {
        // col[s] [kdim, L] = W_grp^T [kdim, cog] x gy[s, grp] [cog, L].
        GemmArgs<T> a;
        a.m = d.kdim;
        a.n = d.l;
        a.k = d.cog;
        a.batch = cn;
        a.a = pw + grp * d.cog * d.kdim;
        a.a_row = 1;
        a.a_col = d.kdim;
        a.batch_a = 0;
        a.b = pg + (n0 * d.cout + grp * d.cog) * d.l;
        a.b_row = d.l;
        a.b_col = 1;
        a.batch_b = d.cout * d.l;
        a.c = col;
        a.c_row = d.l;
        a.batch_c = d.kdim * d.l;
        gemm_strided(a);
        const int64_t total = cn * d.cg * d.g.in_vol();
        SPOOL_LAUNCH(col2im_kernel, grid_for(total), kThreads, 0, stream(), d.g, cn, d.cin, d.cg,
                     grp, col, px + n0 * d.cin * d.g.in_vol());
        SPOOL_CUDA_LAUNCHED("col2im");
      }
    }
  });
}

void CudaBackend::conv_backward_weight(const Tensor& gy, const Tensor& x, const WindowParams& p,
                                       const Tensor& gw) {
  const ConvDims d = dims_of(x, gw, gy, p);
  if (d.n == 0 || d.l == 0) {
    fill(gw, 0);
    return;
  }
#ifdef SPOOL_HAVE_CUDNN
  if (use_cudnn()) return cudnn_conv_backward_weight(gy, x, p, gw);
#else
  use_cudnn();
#endif
  dispatch_float(x.dtype(), "conv_backward_weight", [&](auto tag) {
    using T = decltype(tag);
    const T* pg = static_cast<const T*>(gy.raw());
    const T* px = static_cast<const T*>(x.raw());
    T* pw = static_cast<T*>(gw.raw());
    T* col = static_cast<T*>(scratch(size_t(d.chunk * d.kdim * d.l) * sizeof(T)));
    for (int64_t n0 = 0; n0 < d.n; n0 += d.chunk) {
      const int64_t cn = std::min(d.chunk, d.n - n0);
      for (int64_t grp = 0; grp < d.groups; ++grp) {
        im2col(d, n0, cn, grp, px, col);
        for (int64_t s = 0; s < cn; ++s) {
          // gW_grp [cog, kdim] (+)= gy[s, grp] [cog, L] x col[s]^T [L, kdim].
          GemmArgs<T> a;
          a.m = d.cog;
          a.n = d.kdim;
          a.k = d.l;
          a.a = pg + ((n0 + s) * d.cout + grp * d.cog) * d.l;
          a.a_row = d.l;
          a.a_col = 1;
          a.b = col + s * d.kdim * d.l;
          a.b_row = 1;
          a.b_col = d.l;
          a.c = pw + grp * d.cog * d.kdim;
          a.c_row = d.kdim;
          a.beta = (n0 + s == 0) ? T(0) : T(1);
          gemm_strided(a);
        }
      }
    }
  });
}

}  // namespace spool::cuda
