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
    int64_t oc[3], st[3];
    g.out_coords(e % ov, oc);
    g.window_start(oc, st);
    int64_t arg;
    y[e] = g.window_max(x + (e / ov) * g.in_vol(), st, &arg);
    idx[e] = arg;
  }
}

// Calls f(o, oc) for every output position o (coordinates oc), in increasing order, whose window
// (taps dilated by g.d, or by 1 when !dilated) can contain input position `at`: a superset of the
// windows that do, which f tells apart.
template <class F>
__device__ __forceinline__ void for_each_window_over(const Window3& g, int64_t at, bool dilated,
                                                     F&& f) {
  int64_t ic[3], lo[3], hi[3];
  g.in_coords(at, ic);
  for (int k = 0; k < 3; ++k) {
    const int64_t d = dilated ? g.d[k] : 1, t = ic[k] + g.p[k] - (g.k[k] - 1) * d;  // o s >= t
    lo[k] = t <= 0 ? 0 : (t + g.s[k] - 1) / g.s[k];
    hi[k] = min((ic[k] + g.p[k]) / g.s[k], g.out[k] - 1);
  }
  int64_t oc[3];
  for (oc[0] = lo[0]; oc[0] <= hi[0]; ++oc[0])
    for (oc[1] = lo[1]; oc[1] <= hi[1]; ++oc[1])
      for (oc[2] = lo[2]; oc[2] <= hi[2]; ++oc[2])
        f((oc[0] * g.out[1] + oc[1]) * g.out[2] + oc[2], oc);
}

template <class T>
__global__ void max_pool_backward_kernel(Window3 g, int64_t planes, const T* gy, const int64_t* idx,
                                         T* gx) {
  const int64_t iv = g.in_vol(), ov = g.out_vol(), total = planes * iv;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t at = e % iv;
    const T* gp = gy + (e / iv) * ov;
    const int64_t* ip = idx + (e / iv) * ov;
    T acc = T(0);
    for_each_window_over(g, at, true, [&](int64_t o, const int64_t(&)[3]) {
      if (ip[o] == at) acc += gp[o];
    });
    gx[e] = acc;
  }
}

template <class T>
__global__ void avg_pool_kernel(Window3 g, int64_t planes, bool include_pad, const T* x, T* y) {
  const int64_t ov = g.out_vol(), total = planes * ov;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    int64_t oc[3], st[3];
    g.out_coords(e % ov, oc);
    g.window_start(oc, st);
    const T* xp = x + (e / ov) * g.in_vol();
    double s = 0;
    for (int64_t id = max(st[0], int64_t(0)); id < min(st[0] + g.k[0], g.in[0]); ++id)
      for (int64_t ih = max(st[1], int64_t(0)); ih < min(st[1] + g.k[1], g.in[1]); ++ih)
        for (int64_t iw = max(st[2], int64_t(0)); iw < min(st[2] + g.k[2], g.in[2]); ++iw)
          s += double(xp[(id * g.in[1] + ih) * g.in[2] + iw]);
    y[e] = T(s / double(g.avg_divisor(st, include_pad)));
  }
}

template <class T>
__global__ void avg_pool_backward_kernel(Window3 g, int64_t planes, bool include_pad, const T* gy,
                                         T* gx) {
  const int64_t iv = g.in_vol(), ov = g.out_vol(), total = planes * iv;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const T* gp = gy + (e / iv) * ov;
    T acc = T(0);
    for_each_window_over(g, e % iv, false, [&](int64_t o, const int64_t(&oc)[3]) {
      int64_t st[3];
      g.window_start(oc, st);
      acc += T(double(gp[o]) / double(g.avg_divisor(st, include_pad)));
    });
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
    SPOOL_LAUNCH(max_pool_kernel, grid_for(total), kThreads, 0, stream(), g, planes_of(x),
                 static_cast<const T*>(x.raw()), static_cast<T*>(y.raw()),
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
    SPOOL_LAUNCH(max_pool_backward_kernel, grid_for(total), kThreads, 0, stream(), g, planes_of(gx),
                 static_cast<const T*>(gy.raw()), static_cast<const int64_t*>(indices.raw()),
                 static_cast<T*>(gx.raw()));
    SPOOL_CUDA_LAUNCHED("max_pool_backward");
  });
}

void CudaBackend::avg_pool(const Tensor& x, const WindowParams& p, const Tensor& y) {
  const Window3 g = window3(x.shape(), y.shape(), p);
  const int64_t total = planes_of(x) * g.out_vol();
  if (total == 0) return;
  dispatch_float(x.dtype(), "avg_pool", [&](auto tag) {
    using T = decltype(tag);
    SPOOL_LAUNCH(avg_pool_kernel, grid_for(total), kThreads, 0, stream(), g, planes_of(x),
                 p.count_include_pad, static_cast<const T*>(x.raw()), static_cast<T*>(y.raw()));
    SPOOL_CUDA_LAUNCHED("avg_pool");
  });
}

void CudaBackend::avg_pool_backward(const Tensor& gy, const WindowParams& p, const Tensor& gx) {
  const Window3 g = window3(gx.shape(), gy.shape(), p);
  const int64_t total = gx.numel();
  if (total == 0) return;
  dispatch_float(gy.dtype(), "avg_pool_backward", [&](auto tag) {
    using T = decltype(tag);
    SPOOL_LAUNCH(avg_pool_backward_kernel, grid_for(total), kThreads, 0, stream(), g, planes_of(gx),
                 p.count_include_pad, static_cast<const T*>(gy.raw()), static_cast<T*>(gx.raw()));
    SPOOL_CUDA_LAUNCHED("avg_pool_backward");
  });
}

}  // namespace spool::cuda
