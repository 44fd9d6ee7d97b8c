// CUDA softmax + cross-entropy in one pass: a block per row finds the row's maximum, its sum of
// exponentials (in double, as the CPU) and, with label smoothing, its sum; the backward writes the
// gradient with a thread per element from the saved log-sum-exp. The [N, C] log-probabilities of
// the composed version are never stored.
#include "cuda/common.cuh"
#include "cuda/cuda_backend.h"
#include "engine/dispatch.h"

namespace spool::cuda {

namespace {

template <class T>
__global__ void cross_entropy_kernel(int64_t rows, int64_t n, const T* x, const int64_t* targets,
                                     int64_t ignore, double smoothing, T* loss, T* lse) {
  __shared__ T part[32];
  __shared__ double dpart[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* a = x + r * n;
    T mx = -INFINITY;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) mx = a[i] > mx ? a[i] : mx;
    mx = block_max(mx, part, T(-INFINITY));
    if (mx == T(-INFINITY)) mx = 0;  // an all -inf row: lse is -inf, as log_softmax's
    double sum = 0, sx = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      sum += double(exp(a[i] - mx));
      sx += double(a[i]);
    }
    sum = block_sum(sum, dpart);
    if (smoothing > 0) sx = block_sum(sx, dpart);
    if (threadIdx.x == 0) {
      const T l = mx + T(::log(sum));
      lse[r] = l;
      const int64_t t = targets[r];
      if (t == ignore)
        loss[r] = T(0);
      else if (smoothing > 0)
        loss[r] = l - T(1 - smoothing) * a[t] - T(smoothing / double(n) * sx);
      else
        loss[r] = l - a[t];
    }
  }
}

template <class T>
__global__ void cross_entropy_backward_kernel(int64_t rows, int64_t n, const T* x,
                                              const int64_t* targets, const T* lse, const T* gloss,
                                              int64_t ignore, double smoothing, T* gx) {
  const int64_t total = rows * n;
  const T off = T(smoothing / double(n)), hit = T(1 - smoothing);
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = e / n, c = e % n, t = targets[r];
    if (t == ignore) {
      gx[e] = T(0);
      continue;
    }
    T p = exp(x[e] - lse[r]) - off;
    if (c == t) p -= hit;
    gx[e] = gloss[r] * p;
  }
}

}  // namespace

void CudaBackend::cross_entropy(const Tensor& x, const Tensor& targets, int64_t ignore_index,
                                double smoothing, const Tensor& loss, const Tensor& lse) {
  const int64_t rows = x.size(0), n = x.size(1);
  if (rows == 0) return;
  dispatch_float(x.dtype(), "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    SPOOL_LAUNCH(cross_entropy_kernel, row_grid(rows), kThreads, 0, stream(), rows, n,
                 static_cast<const T*>(x.raw()), static_cast<const int64_t*>(targets.raw()),
                 ignore_index, smoothing, static_cast<T*>(loss.raw()), static_cast<T*>(lse.raw()));
    SPOOL_CUDA_LAUNCHED("cross_entropy");
  });
}

void CudaBackend::cross_entropy_backward(const Tensor& x, const Tensor& targets, const Tensor& lse,
                                         const Tensor& gloss, int64_t ignore_index,
                                         double smoothing, const Tensor& gx) {
  const int64_t rows = x.size(0), n = x.size(1);
  if (rows * n == 0) return;
  dispatch_float(x.dtype(), "cross_entropy_backward", [&](auto tag) {
    using T = decltype(tag);
    SPOOL_LAUNCH(cross_entropy_backward_kernel, grid_for(rows * n), kThreads, 0, stream(), rows, n,
                 static_cast<const T*>(x.raw()), static_cast<const int64_t*>(targets.raw()),
                 static_cast<const T*>(lse.raw()), static_cast<const T*>(gloss.raw()), ignore_index,
                 smoothing, static_cast<T*>(gx.raw()));
    SPOOL_CUDA_LAUNCHED("cross_entropy_backward");
  });
}

}  // namespace spool::cuda
