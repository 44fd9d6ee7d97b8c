// CUDA max and average pooling over 1-3 spatial dims. Forward: one thread per output element.
// Backward: one thread per input element gathering from the windows that contain it, in output
// order, so sums match the CPU's order and no atomics are needed.
#include "cuda/common.cuh"
#include "cuda/cuda_backend.h"
#include "engine/window.h"

namespace spool::cuda {

namespace {

template <class T>
__global__ void max_pool_kernel(Window3 g, int64_t planes, const T* x, T* y, int64_t* idx) {
  const int64_t ov = g.out_vol(), total = planes * ov;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t pl = e / ov, o = e % ov;
    const int64_t ow = o % g.out[2], oh = (o / g.out[2]) % g.out[1], od = o / (g.out[2] * g.out[1]);
    const int64_t d0 = od * g.s[0] - g.p[0], h0 = oh * g.s[1] - g.p[1], w0 = ow * g.s[2] - g.p[2];
    const T* xp = x + pl * g.in_vol();
    T best = -INFINITY;
    int64_t arg = -1;
    bool nan = false;
    for (int64_t a = 0; a < g.k[0] && !nan; ++a) {
      const int64_t id = d0 + a * g.d[0];
      if (id < 0 || id >= g.in[0]) continue;
      for (int64_t b = 0; b < g.k[1] && !nan; ++b) {
        const int64_t ih = h0 + b * g.d[1];
        if (ih < 0 || ih >= g.in[1]) continue;
        for (int64_t c = 0; c < g.k[2]; ++c) {
          const int64_t iw = w0 + c * g.d[2];
          if (iw < 0 || iw >= g.in[2]) continue;
          const int64_t at = (id * g.in[1] + ih) * g.in[2] + iw;
          const T v = xp[at];
          if (arg < 0 || v > best || v != v) {  // NaN wins, as in PyTorch
            best = v;
            arg = at;
            if (v != v) {
              nan = true;
              break;
            }
          }
        }
      }
    }
    y[e] = best;
    idx[e] = arg;
  }
}

// Output positions along one dim whose window (start o * s - p, taps k with dilation d) can
// contain input position i: [lo, hi].
__device__ __forceinline__ void window_range(int64_t i, int64_t k, int64_t s, int64_t p, int64_t d,
                                             int64_t out, int64_t& lo, int64_t& hi) {
  const int64_t span = (k - 1) * d;
  const int64_t t = i + p - span;  // o * s >= t
  lo = t <= 0 ? 0 : (t + s - 1) / s;
  hi = (i + p) / s;
  if (hi > out - 1) hi = out - 1;
}

template <class T>
__global__ void max_pool_backward_kernel(Window3 g, int64_t planes, const T* gy, const int64_t* idx,
                                         T* gx) {
  const int64_t iv = g.in_vol(), ov = g.out_vol(), total = planes * iv;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t pl = e / iv, at = e % iv;
    const int64_t iw = at % g.in[2], ih = (at / g.in[2]) % g.in[1], id = at / (g.in[2] * g.in[1]);
    int64_t lo[3], hi[3];
    const int64_t pos[3] = {id, ih, iw};
    for (int k = 0; k < 3; ++k)
      window_range(pos[k], g.k[k], g.s[k], g.p[k], g.d[k], g.out[k], lo[k], hi[k]);
    T acc = T(0);
    const T* gp = gy + pl * ov;
    const int64_t* ip = idx + pl * ov;
    for (int64_t od = lo[0]; od <= hi[0]; ++od)
      for (int64_t oh = lo[1]; oh <= hi[1]; ++oh)
        for (int64_t ow = lo[2]; ow <= hi[2]; ++ow) {
          const int64_t o = (od * g.out[1] + oh) * g.out[2] + ow;
          if (ip[o] == at) acc += gp[o];
        }
    gx[e] = acc;
  }
}

// PyTorch's divisor for one window (see the CPU kernel).
__device__ __forceinline__ int64_t divisor(const Window3& g, bool include_pad, int64_t d0,
                                           int64_t h0, int64_t w0) {
  const int64_t start[3] = {d0, h0, w0};
  int64_t count = 1;
  for (int i = 0; i < 3; ++i) {
    int64_t lo = start[i], hi = start[i] + g.k[i];
    if (include_pad) {
      hi = min(hi, g.in[i] + g.p[i]);
    } else {
      lo = max(lo, int64_t(0));
      hi = min(hi, g.in[i]);
    }
    count *= max(hi - lo, int64_t(0));
  }
  return max(count, int64_t(1));
}

template <class T>
__global__ void avg_pool_kernel(Window3 g, int64_t planes, bool include_pad, const T* x, T* y) {
  const int64_t ov = g.out_vol(), total = planes * ov;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t pl = e / ov, o = e % ov;
    const int64_t ow = o % g.out[2], oh = (o / g.out[2]) % g.out[1], od = o / (g.out[2] * g.out[1]);
    const int64_t d0 = od * g.s[0] - g.p[0], h0 = oh * g.s[1] - g.p[1], w0 = ow * g.s[2] - g.p[2];
    const T* xp = x + pl * g.in_vol();
    double s = 0;
    for (int64_t id = max(d0, int64_t(0)); id < min(d0 + g.k[0], g.in[0]); ++id)
      for (int64_t ih = max(h0, int64_t(0)); ih < min(h0 + g.k[1], g.in[1]); ++ih)
        for (int64_t iw = max(w0, int64_t(0)); iw < min(w0 + g.k[2], g.in[2]); ++iw)
          s += double(xp[(id * g.in[1] + ih) * g.in[2] + iw]);
    y[e] = T(s / double(divisor(g, include_pad, d0, h0, w0)));
  }
}

template <class T>
__global__ void avg_pool_backward_kernel(Window3 g, int64_t planes, bool include_pad, const T* gy,
                                         T* gx) {
  const int64_t iv = g.in_vol(), ov = g.out_vol(), total = planes * iv;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t pl = e / iv, at = e % iv;
    const int64_t iw = at % g.in[2], ih = (at / g.in[2]) % g.in[1], id = at / (g.in[2] * g.in[1]);
    int64_t lo[3], hi[3];
    const int64_t pos[3] = {id, ih, iw};
    for (int k = 0; k < 3; ++k)
      window_range(pos[k], g.k[k], g.s[k], g.p[k], 1, g.out[k], lo[k], hi[k]);
    T acc = T(0);
    const T* gp = gy + pl * ov;
    for (int64_t od = lo[0]; od <= hi[0]; ++od)
      for (int64_t oh = lo[1]; oh <= hi[1]; ++oh)
        for (int64_t ow = lo[2]; ow <= hi[2]; ++ow) {
          const int64_t o = (od * g.out[1] + oh) * g.out[2] + ow;
          const int64_t d0 = od * g.s[0] - g.p[0], h0 = oh * g.s[1] - g.p[1],
                        w0 = ow * g.s[2] - g.p[2];
          acc += T(double(gp[o]) / double(divisor(g, include_pad, d0, h0, w0)));
        }
    gx[e] = acc;
  }
}

int64_t planes_of(const Tensor& t) { return t.shape()[0] * t.shape()[1]; }

}  // namespace

void CudaBackend::max_pool(const Tensor& x, const WindowParams& p, const Tensor& y,
                           const Tensor& indices) {
  const Window3 g = window3(x.shape(), y.shape(), p);
  const int64_t total = planes_of(x) * g.out_vol();
  if (total == 0) return;
  dispatch_float(x.dtype(), "max_pool", [&](auto tag) {
    using T = decltype(tag);
    max_pool_kernel<<<grid_for(total), kThreads, 0, stream()>>>(
        g, planes_of(x), static_cast<const T*>(x.raw()), static_cast<T*>(y.raw()),
        static_cast<int64_t*>(indices.raw()));
    SPOOL_CUDA_LAUNCHED("max_pool");
  });
}

void CudaBackend::max_pool_backward(const Tensor& gy, const Tensor& indices, const WindowParams& p,
                                    const Tensor& gx) {
  const Window3 g = window3(gx.shape(), gy.shape(), p);
  const int64_t total = gx.numel();
  if (total == 0) return;
  dispatch_float(gy.dtype(), "max_pool_backward", [&](auto tag) {
    using T = decltype(tag);
    max_pool_backward_kernel<<<grid_for(total), kThreads, 0, stream()>>>(
        g, planes_of(gx), static_cast<const T*>(gy.raw()),
        static_cast<const int64_t*>(indices.raw()), static_cast<T*>(gx.raw()));
    SPOOL_CUDA_LAUNCHED("max_pool_backward");
  });
}

void CudaBackend::avg_pool(const Tensor& x, const WindowParams& p, const Tensor& y) {
  const Window3 g = window3(x.shape(), y.shape(), p);
  const int64_t total = planes_of(x) * g.out_vol();
  if (total == 0) return;
  dispatch_float(x.dtype(), "avg_pool", [&](auto tag) {
    using T = decltype(tag);
    avg_pool_kernel<<<grid_for(total), kThreads, 0, stream()>>>(
        g, planes_of(x), p.count_include_pad, static_cast<const T*>(x.raw()),
        static_cast<T*>(y.raw()));
    SPOOL_CUDA_LAUNCHED("avg_pool");
  });
}

void CudaBackend::avg_pool_backward(const Tensor& gy, const WindowParams& p, const Tensor& gx) {
  const Window3 g = window3(gx.shape(), gy.shape(), p);
  const int64_t total = gx.numel();
  if (total == 0) return;
  dispatch_float(gy.dtype(), "avg_pool_backward", [&](auto tag) {
    using T = decltype(tag);
    avg_pool_backward_kernel<<<grid_for(total), kThreads, 0, stream()>>>(
        g, planes_of(gx), p.count_include_pad, static_cast<const T*>(gy.raw()),
        static_cast<T*>(gx.raw()));
    SPOOL_CUDA_LAUNCHED("avg_pool_backward");
  });
}

}  // namespace spool::cuda
