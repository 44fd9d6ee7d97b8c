// Public switches of the CUDA backend. No CUDA header here: callers build without the toolkit.
#pragma once
#include <cstddef>
#include <string>

namespace spool::cuda {

// Which GEMM the matmul kernel (and convolution's GEMMs) use: cuBLAS, or spool's own tiled SGEMM
// (f32 only; f64 always goes to cuBLAS). Default cublas; SPOOL_CUDA_GEMM=tiled in the environment
// selects tiled at start.
enum class Gemm { cublas, tiled };
void set_gemm(Gemm g);
Gemm gemm();

// Bytes the kernels' scratch buffer holds now (a convolution's columns, attention's row dots).
size_t scratch_bytes();

// The device-to-device copy ceiling: bytes read plus written per second by cudaMemcpyAsync of
// `bytes`, the median of `reps` timed copies (CUDA events) after one warm-up.
double copy_bandwidth(size_t bytes, int reps = 10);
// Seconds per call of f, timed with CUDA events around `reps` calls after one warm-up call.
double time_on_stream(void (*f)(void*), void* arg, int reps);

}  // namespace spool::cuda
