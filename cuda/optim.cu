// CUDA optimizer kernels: the whole Adam / AdamW update in one pass over the parameter, a thread
// per element.
#include <cmath>

#include "cuda/common.cuh"
#include "cuda/cuda_backend.h"

namespace spool::cuda {

namespace {

template <class T>
__global__ void adam_kernel(int64_t n, T* p, const T* g, T* m, T* v, T b1, T b2, T lr, T eps,
                            T inv_c1, T inv_c2, T shrink, T l2) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const T grad = g[i] + l2 * p[i];
    const T mi = b1 * m[i] + (T(1) - b1) * grad;
    const T vi = b2 * v[i] + (T(1) - b2) * grad * grad;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * shrink - lr * (mi * inv_c1) / (sqrt(vi * inv_c2) + eps);
  }
}

}  // namespace

void CudaBackend::adam_step(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v,
                            const AdamParams& a) {
  dispatch_float(p.dtype(), "adam_step", [&](auto tag) {
    using T = decltype(tag);
    const int64_t n = p.numel();
    if (n == 0) return;
    SPOOL_LAUNCH(adam_kernel, grid_for(n), kThreads, 0, stream(), n, p.data<T>(), g.data<T>(),
                 m.data<T>(), v.data<T>(), T(a.beta1), T(a.beta2), T(a.lr), T(a.eps), T(1 / a.c1),
                 T(1 / a.c2), a.decoupled ? T(1 - a.lr * a.weight_decay) : T(1),
                 a.decoupled ? T(0) : T(a.weight_decay));
    SPOOL_CUDA_LAUNCHED("adam_step");
  });
}

}  // namespace spool::cuda
