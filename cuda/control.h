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

// Which path the convolution kernels (conv, conv_backward_input, conv_backward_weight) take:
// im2col / vol2col plus GEMMs (cuda/conv.cu), or cuDNN (cuda/cudnn_conv.cu; deterministic
// algorithms, FMA math, so f32 is not rounded through TF32). Default im2col; SPOOL_CUDA_CONV=cudnn
// (or im2col) in the environment selects at the first convolution. cuDNN is there only in a real
// CUDA build that found it at configure time (not on the emulated device): set_conv(Conv::cudnn)
// throws spool::Error saying why where it is not, and so does the first convolution under
// SPOOL_CUDA_CONV=cudnn.
enum class Conv { im2col, cudnn };
void set_conv(Conv c);
Conv conv_path();
// Whether this build has the cuDNN path; if not, why in *why.
bool cudnn_available(std::string* why = nullptr);
// cuDNN's version as cudnnGetVersion() reports it (e.g. 91900 for 9.19.0) when the build has
// cuDNN, else 0. Needs no GPU.
size_t cudnn_version();

// Bytes the kernels' scratch buffer holds now (a convolution's columns, attention's row dots).
size_t scratch_bytes();

// The device-to-device copy ceiling: bytes read plus written per second by cudaMemcpyAsync of
// `bytes`, the median of `reps` timed copies (CUDA events) after one warm-up.
double copy_bandwidth(size_t bytes, int reps = 10);
// Seconds per call of f, timed with CUDA events around `reps` calls after one warm-up call.
double time_on_stream(void (*f)(void*), void* arg, int reps);

}  // namespace spool::cuda
