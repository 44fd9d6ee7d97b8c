// CUDA temporal shift (TSM): a thread per element copies from the frame engine/geometry.h's
// shift_source names, or writes zero; the backward is the same kernel with the map reversed.
#include "cuda/common.cuh"
#include "cuda/cuda_backend.h"
#include "engine/dispatch.h"
#include "engine/geometry.h"

namespace spool::cuda {

namespace {

template <class T>
__global__ void temporal_shift_kernel(int64_t total, int64_t segments, int64_t c, int64_t plane,
                                      int64_t fold, bool online, bool reverse, const T* x, T* out) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ch = (e / plane) % c, f = e / (plane * c), t = f % segments;
    const int64_t src = shift_source(t, ch, fold, online, reverse, segments);
    out[e] = src < 0 ? T(0) : x[e + (src - t) * c * plane];
  }
}

}  // namespace

void CudaBackend::temporal_shift(const Tensor& x, int64_t segments, int64_t fold, bool online,
                                 bool reverse, const Tensor& out) {
  const int64_t total = x.numel(), c = x.size(1);
  if (total == 0) return;
  const int64_t plane = total / (x.size(0) * c);
  dispatch_float(x.dtype(), "temporal_shift", [&](auto tag) {
    using T = decltype(tag);
    SPOOL_LAUNCH(temporal_shift_kernel, grid_for(total), kThreads, 0, stream(), total, segments, c,
                 plane, fold, online, reverse, static_cast<const T*>(x.raw()),
                 static_cast<T*>(out.raw()));
    SPOOL_CUDA_LAUNCHED("temporal_shift");
  });
}

}  // namespace spool::cuda
