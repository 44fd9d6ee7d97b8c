// CUDA layer norm over the last dimension, forward and backward: one block per row, statistics in
// double; the weight and bias gradients sum over chunks of rows, then across the chunks in order,
// so results repeat run to run.
#include <cmath>

#include "cuda/common.cuh"
#include "cuda/cuda_backend.h"

namespace spool::cuda {

namespace {

// Layer norm: one block per row; statistics in double.
template <class T>
__global__ void layer_norm_kernel(int64_t rows, int64_t d, const T* x, const T* w, const T* b,
                                  double eps, T* y, T* mean, T* rstd) {
  __shared__ double part[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * d;
    T* yr = y + r * d;
    double s = 0;
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) s += double(xr[i]);
    const double mu = block_sum(s, part) / double(d);
    double q = 0;
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
      const double dv = double(xr[i]) - mu;
      q += dv * dv;
    }
    const double rs = 1.0 / sqrt(block_sum(q, part) / double(d) + eps);
    if (threadIdx.x == 0) {
      mean[r] = T(mu);
      rstd[r] = T(rs);
    }
    const T tmu = T(mu), trs = T(rs);
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
      T h = (xr[i] - tmu) * trs;
      if (w) h *= w[i];
      if (b) h += b[i];
      yr[i] = h;
    }
  }
}

// gx of layer norm: one block per row.
template <class T>
__global__ void layer_norm_backward_kernel(int64_t rows, int64_t d, const T* x, const T* w,
                                           const T* mean, const T* rstd, const T* gy, T* gx) {
  __shared__ double part[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * d;
    const T* gr = gy + r * d;
    const double mu = mean[r], rs = rstd[r];
    double sg = 0, sgh = 0;
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
      const double h = (double(xr[i]) - mu) * rs;
      const double g = w ? double(gr[i]) * double(w[i]) : double(gr[i]);
      sg += g;
      sgh += g * h;
    }
    sg = block_sum(sg, part);
    sgh = block_sum(sgh, part);
    const T mg = T(sg / double(d)), mgh = T(sgh / double(d)), trs = T(rs), tmu = T(mu);
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
      const T h = (xr[i] - tmu) * trs;
      const T g = w ? gr[i] * w[i] : gr[i];
      gx[r * d + i] = trs * (g - mg - h * mgh);
    }
  }
}

// Partial column sums of gy * h and gy over row chunk blockIdx.y: part [chunks, 2, d].
template <class T>
__global__ void layer_norm_params_kernel(int64_t rows, int64_t d, int64_t chunk, const T* x,
                                         const T* mean, const T* rstd, const T* gy, double* part) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= d) return;
  const int64_t r0 = blockIdx.y * chunk, r1 = min(rows, r0 + chunk);
  double sw = 0, sb = 0;
  for (int64_t r = r0; r < r1; ++r) {
    const double g = gy[r * d + i];
    sw += g * ((double(x[r * d + i]) - double(mean[r])) * double(rstd[r]));
    sb += g;
  }
  part[(blockIdx.y * 2) * d + i] = sw;
  part[(blockIdx.y * 2 + 1) * d + i] = sb;
}

template <class T>
__global__ void layer_norm_params_finish_kernel(int64_t chunks, int64_t d, const double* part,
                                                T* gw, T* gb) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= d) return;
  double sw = 0, sb = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    sw += part[(c * 2) * d + i];
    sb += part[(c * 2 + 1) * d + i];
  }
  if (gw) gw[i] = T(sw);
  if (gb) gb[i] = T(sb);
}

}  // namespace

void CudaBackend::layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, double eps,
                             const Tensor& y, const Tensor& mean, const Tensor& rstd) {
  const int64_t d = x.shape().back(), rows = d == 0 ? 0 : x.numel() / d;
  if (rows == 0) return;
  dispatch_float(x.dtype(), "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    SPOOL_LAUNCH(layer_norm_kernel, row_grid(rows), kThreads, 0, stream(), rows, d,
                 static_cast<const T*>(x.raw()), ptr_or_null<T>(w), ptr_or_null<T>(b), eps,
                 static_cast<T*>(y.raw()), static_cast<T*>(mean.raw()),
                 static_cast<T*>(rstd.raw()));
    SPOOL_CUDA_LAUNCHED("layer_norm");
  });
}

void CudaBackend::layer_norm_backward(const Tensor& x, const Tensor& w, const Tensor& mean,
                                      const Tensor& rstd, const Tensor& gy, const Tensor& gx,
                                      const Tensor& gw, const Tensor& gb) {
  const int64_t d = x.shape().back(), rows = d == 0 ? 0 : x.numel() / d;
  if (rows == 0) {
    if (gw.defined()) fill(gw, 0);
    if (gb.defined()) fill(gb, 0);
    return;
  }
  dispatch_float(x.dtype(), "layer_norm_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.raw());
    const T* pm = static_cast<const T*>(mean.raw());
    const T* pr = static_cast<const T*>(rstd.raw());
    const T* pg = static_cast<const T*>(gy.raw());
    SPOOL_LAUNCH(layer_norm_backward_kernel, row_grid(rows), kThreads, 0, stream(), rows, d, px,
                 ptr_or_null<T>(w), pm, pr, pg, static_cast<T*>(gx.raw()));
    SPOOL_CUDA_LAUNCHED("layer_norm_backward");
    if (!gw.defined() && !gb.defined()) return;
    const int64_t chunks = std::min<int64_t>(rows, 128), chunk = (rows + chunks - 1) / chunks;
    auto* part = static_cast<double*>(scratch(size_t(chunks * 2 * d) * sizeof(double)));
    const dim3 grid(unsigned((d + kThreads - 1) / kThreads), unsigned(chunks));
    SPOOL_LAUNCH(layer_norm_params_kernel, grid, kThreads, 0, stream(), rows, d, chunk, px, pm, pr,
                 pg, part);
    SPOOL_CUDA_LAUNCHED("layer_norm_backward (parameters)");
    SPOOL_LAUNCH(layer_norm_params_finish_kernel, unsigned((d + kThreads - 1) / kThreads), kThreads,
                 0, stream(), chunks, d, part, mut_or_null<T>(gw), mut_or_null<T>(gb));
    SPOOL_CUDA_LAUNCHED("layer_norm_backward (parameters)");
  });
}

}  // namespace spool::cuda
