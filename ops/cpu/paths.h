// Library paths of the CPU backend beside spool's own, each selectable at run time.
//
// Convolutions (conv, conv_backward_input, conv_backward_weight) in f32: spool's im2col / vol2col
// plus OpenBLAS GEMMs (ops/cpu/conv.cpp), or oneDNN's direct convolutions on its blocked layouts
// (ops/cpu/onednn_conv.cpp), reordered from and to spool's contiguous [N, C, *spatial] on every
// call, as PyTorch's eager CPU path does. f64 always takes im2col (oneDNN has no f64 convolution).
//
// Matrix products (matmul, and so linear layers and their gradients) in f32: OpenBLAS's sgemm or
// oneDNN's dnnl_sgemm. f64 always takes OpenBLAS's dgemm.
//
// The default is oneDNN for both where the build has it (its convolutions are the faster on every
// standard model; its sgemm and OpenBLAS's are within noise of each other at the models' shapes:
// docs/benchmarks.md), else spool's path and OpenBLAS.
// SPOOL_CPU_CONV=im2col|onednn and SPOOL_CPU_GEMM=openblas|onednn in the environment select at the
// first call. Selecting oneDNN in a build without it throws spool::Error saying why (set_conv,
// set_gemm, or the first call under the environment variable).
#pragma once
#include <cstdint>
#include <string>

namespace spool::cpu {

enum class Conv { im2col, onednn };
void set_conv(Conv c);
Conv conv_path();

enum class Gemm { openblas, onednn };
void set_gemm(Gemm g);
Gemm gemm_path();

// C [m, n] = alpha A [m, k] B [k, n] + beta C (A and B transposed in memory when ta, tb;
// row-major) on the selected f32 GEMM path: oneDNN's sgemm or OpenBLAS's. Called inside an
// OpenMP region, it runs on the calling thread. `what` names the caller in oneDNN's errors.
void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
           const char* what);

// Whether this build has oneDNN; if not, why in *why.
bool onednn_available(std::string* why = nullptr);
// oneDNN's version as "major.minor.patch" where the build has it, else "".
std::string onednn_version();

}  // namespace spool::cpu
