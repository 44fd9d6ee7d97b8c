// CUDA batch norm over contiguous x viewed as [N, C, S]: statistics and the backward one block per
// channel, sums in double through a fixed tree (so results repeat run to run); the apply a thread
// per element.
#include <cmath>

#include "cuda/common.cuh"
#include "cuda/cuda_backend.h"
#include "engine/geometry.h"

namespace spool::cuda {

namespace {

// Batch norm over contiguous x viewed as [N, C, S]: one block per channel, statistics in double.
template <class T>
__global__ void batch_norm_stats_kernel(int64_t n, int64_t c, int64_t s, const T* x, T* mean,
                                        T* var) {
  __shared__ double part[32];
  const int64_t ch = blockIdx.x, count = n * s;
  double sum = 0;
  for (int64_t k = threadIdx.x; k < count; k += blockDim.x)
    sum += double(x[((k / s) * c + ch) * s + k % s]);
  const double mu = block_sum(sum, part) / double(count);
  double sq = 0;
  for (int64_t k = threadIdx.x; k < count; k += blockDim.x) {
    const double dv = double(x[((k / s) * c + ch) * s + k % s]) - mu;
    sq += dv * dv;
  }
  sq = block_sum(sq, part);
  if (threadIdx.x == 0) {
    mean[ch] = T(mu);
    var[ch] = T(sq / double(count));
  }
}

template <class T>
__global__ void batch_norm_apply_kernel(int64_t total, int64_t c, int64_t s, const T* x,
                                        const T* mean, const T* invstd, const T* w, const T* b,
                                        T* y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ch = (i / s) % c;
    const T scale = invstd[ch] * (w ? w[ch] : T(1));
    const T shift = (b ? b[ch] : T(0)) - mean[ch] * scale;
    y[i] = x[i] * scale + shift;
  }
}

template <class T>
__global__ void batch_norm_backward_kernel(int64_t n, int64_t c, int64_t s, const T* x, const T* gy,
                                           const T* mean, const T* invstd, const T* w,
                                           bool batch_stats, T* gx, T* gw, T* gb) {
  __shared__ double part[32];
  const int64_t ch = blockIdx.x, count = n * s;
  const double mu = mean[ch], rs = invstd[ch], wc = w ? double(w[ch]) : 1.0;
  double sg = 0, sgx = 0;
  for (int64_t k = threadIdx.x; k < count; k += blockDim.x) {
    const int64_t at = ((k / s) * c + ch) * s + k % s;
    sg += double(gy[at]);
    sgx += double(gy[at]) * (double(x[at]) - mu) * rs;
  }
  sg = block_sum(sg, part);
  sgx = block_sum(sgx, part);
  if (threadIdx.x == 0) {
    if (gw) gw[ch] = T(sgx);
    if (gb) gb[ch] = T(sg);
  }
  if (!gx) return;
  const double mg = batch_stats ? sg / double(count) : 0,
               mgx = batch_stats ? sgx / double(count) : 0;
  for (int64_t k = threadIdx.x; k < count; k += blockDim.x) {
    const int64_t at = ((k / s) * c + ch) * s + k % s;
    gx[at] = T(wc * rs * (double(gy[at]) - mg - (double(x[at]) - mu) * rs * mgx));
  }
}

}  // namespace

void CudaBackend::batch_norm_stats(const Tensor& x, const Tensor& mean, const Tensor& var) {
  const NCS g(x);
  if (g.c == 0) return;
  dispatch_float(x.dtype(), "batch_norm", [&](auto tag) {
    using T = decltype(tag);
    SPOOL_LAUNCH(batch_norm_stats_kernel, unsigned(g.c), kThreads, 0, stream(), g.n, g.c, g.s,
                 static_cast<const T*>(x.raw()), static_cast<T*>(mean.raw()),
                 static_cast<T*>(var.raw()));
    SPOOL_CUDA_LAUNCHED("batch_norm_stats");
  });
}

void CudaBackend::batch_norm_apply(const Tensor& x, const Tensor& mean, const Tensor& invstd,
                                   const Tensor& w, const Tensor& b, const Tensor& y) {
  const NCS g(x);
  const int64_t total = x.numel();
  if (total == 0) return;
  dispatch_float(x.dtype(), "batch_norm", [&](auto tag) {
    using T = decltype(tag);
    SPOOL_LAUNCH(batch_norm_apply_kernel, grid_for(total), kThreads, 0, stream(), total, g.c, g.s,
                 static_cast<const T*>(x.raw()), static_cast<const T*>(mean.raw()),
                 static_cast<const T*>(invstd.raw()), ptr_or_null<T>(w), ptr_or_null<T>(b),
                 static_cast<T*>(y.raw()));
    SPOOL_CUDA_LAUNCHED("batch_norm_apply");
  });
}

void CudaBackend::batch_norm_backward(const Tensor& x, const Tensor& gy, const Tensor& mean,
                                      const Tensor& invstd, const Tensor& w, bool batch_stats,
                                      const Tensor& gx, const Tensor& gw, const Tensor& gb) {
  const NCS g(x);
  if (g.c == 0) return;
  dispatch_float(x.dtype(), "batch_norm_backward", [&](auto tag) {
    using T = decltype(tag);
    SPOOL_LAUNCH(batch_norm_backward_kernel, unsigned(g.c), kThreads, 0, stream(), g.n, g.c, g.s,
                 static_cast<const T*>(x.raw()), static_cast<const T*>(gy.raw()),
                 static_cast<const T*>(mean.raw()), static_cast<const T*>(invstd.raw()),
                 ptr_or_null<T>(w), batch_stats, mut_or_null<T>(gx), mut_or_null<T>(gw),
                 mut_or_null<T>(gb));
    SPOOL_CUDA_LAUNCHED("batch_norm_backward");
  });
}

}  // namespace spool::cuda
