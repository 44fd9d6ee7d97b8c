// Shared pieces of the CUDA kernels: error checks, the stream, launch sizes, dtype dispatch, and
// strided indexing of up to kMaxDims dimensions. Included by cuda/*.cu only.
#pragma once
#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <vector>

#include "engine/backend.h"
#include "engine/dispatch.h"
#include "engine/error.h"
#include "engine/geometry.h"

namespace spool::cuda {

// Throws spool::Error naming the call, the CUDA error and where it was made.
[[noreturn]] void fail_call(const char* call, cudaError_t err, const char* file, int line);
// After a kernel launch: a launch error at once; with SPOOL_CUDA_SYNC=1 in the environment also an
// error the kernel met while running (the launch is synchronised), named after the kernel.
void check_launch(const char* kernel, const char* file, int line);

#define SPOOL_CUDA_CHECK(call)                                         \
  do {                                                                 \
    const cudaError_t spool_err_ = (call);                             \
    if (spool_err_ != cudaSuccess)                                     \
      ::spool::cuda::fail_call(#call, spool_err_, __FILE__, __LINE__); \
  } while (0)
#define SPOOL_CUDA_LAUNCHED(name) ::spool::cuda::check_launch(name, __FILE__, __LINE__)

// The one launch syntax, compiled by nvcc and by the emulated device's header alike:
//   SPOOL_LAUNCH(kernel, grid, block, smem, stream, args...);
// (a kernel whose template arguments hold a comma goes in parentheses), and the one declaration
// of a kernel's dynamic shared memory: SPOOL_DYNAMIC_SHARED(float, smem);
// cuda/emulate/cuda_runtime.h defines both for the host compiler.
#ifndef SPOOL_CUDA_EMULATED_DEVICE
#define SPOOL_LAUNCH(kernel, grid, block, smem, stream, ...) \
  kernel<<<grid, block, smem, stream>>>(__VA_ARGS__)
#define SPOOL_DYNAMIC_SHARED(T, name) extern __shared__ T name[]
#endif

// The one stream all of spool's work on the GPU is queued on (created at initialisation).
cudaStream_t stream();
// Multiprocessors of the device, for grid sizes.
int sm_count();

// Kernel scratch memory (not tensor memory, so not counted by the allocator, like the CPU
// backend's column buffers). Valid until the next call of scratch() or the next tensor
// allocation (an allocation that runs out of memory frees scratch before it retries: a large
// column buffer left by one convolution must not make a later tensor fail); so take scratch
// after a kernel's tensors exist. Work is ordered on one stream, so a buffer reused by the next
// kernel is never read by an earlier one still running.
void* scratch(size_t nbytes);
// Frees the scratch buffer (after the stream's work); the next scratch() allocates afresh.
void release_scratch();

constexpr int kThreads = 256;
// A grid-stride loop's grid: enough blocks to fill the device, no more than the work needs.
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  const int64_t need = (n + threads - 1) / threads;
  const int64_t cap = int64_t(sm_count()) * 16;
  return unsigned(need < 1 ? 1 : (need < cap ? need : cap));
}

// A block-per-row kernel's grid: a block for each row, at most 32 per SM (the rest loop).
inline unsigned row_grid(int64_t rows) {
  const int64_t cap = int64_t(sm_count()) * 32;
  return unsigned(rows < 1 ? 1 : (rows < cap ? rows : cap));
}

constexpr int kMaxDims = 8;

// Offsets of element i (row-major over a shared shape) in N operands with their own strides.
// Dimensions that are contiguous across all operands are merged first, so most calls index a
// single dimension.
template <int N>
struct Strides {
  int ndim = 0;
  bool linear = false;  // every operand has unit stride over one dimension: offset == i
  int64_t size[kMaxDims];
  int64_t stride[N][kMaxDims];

  __device__ __forceinline__ void offsets(int64_t i, int64_t (&off)[N]) const {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = linear ? i : 0;
    if (linear) return;
#pragma unroll
    for (int d = kMaxDims - 1; d >= 0; --d) {
      if (d >= ndim) continue;
      const int64_t c = i % size[d];
      i /= size[d];
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += c * stride[k][d];
    }
  }
};

template <int N>
Strides<N> make_strides(const Shape& shape, const std::array<const Shape*, N>& strides,
                        const char* op) {
  const Coalesced<N> c = coalesce<N>(shape, strides);
  SPOOL_CHECK(c.size.size() <= size_t(kMaxDims), op, ": a tensor of ", c.size.size(),
              " non-mergeable dimensions exceeds the cuda backend's limit of ", kMaxDims);
  Strides<N> s;
  s.ndim = int(c.size.size());
  for (int d = 0; d < s.ndim; ++d) {
    s.size[d] = c.size[size_t(d)];
    for (int k = 0; k < N; ++k) s.stride[k][d] = c.stride[size_t(k)][size_t(d)];
  }
  s.linear = s.ndim == 0;
  if (s.ndim == 1) {
    s.linear = true;
    for (int k = 0; k < N; ++k) s.linear = s.linear && s.stride[k][0] == 1;
  }
  return s;
}

// An optional operand's data (a weight or bias, a gradient not asked for): null when undefined.
template <class T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.raw()) : nullptr;
}
template <class T>
T* mut_or_null(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.raw()) : nullptr;
}

// Warp and block sums / maxima. blockDim.x must be a multiple of 32, at most 1024.
template <class T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
// fmaxf's semantics (a NaN loses to a number), so every lane ends with the same maximum: with
// `w > v ? w : v` a lane holding NaN kept it while the others dropped it, and lanes of one warp
// took different branches around later shuffles.
template <class T>
__device__ __forceinline__ T warp_max(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const T w = __shfl_xor_sync(0xffffffffu, v, o);
    v = (w > v || v != v) ? w : v;
  }
  return v;
}
// All threads get the block's sum. `shared` holds 32 values; the call synchronises the block.
template <class T>
__device__ __forceinline__ T block_sum(T v, T* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  T t = lane < warps ? shared[lane] : T(0);
  return warp_sum(t);
}
template <class T>
__device__ __forceinline__ T block_max(T v, T* shared, T lowest) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  T t = lane < warps ? shared[lane] : lowest;
  return warp_max(t);
}

}  // namespace spool::cuda
