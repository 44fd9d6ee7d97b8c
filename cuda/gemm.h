// The GEMM entry point shared by matmul and convolution (CUDA side).
#pragma once
#include <cstdint>

namespace spool::cuda {

// C[i] = A[i] B[i] + beta C[i] for i < batch, row-major [m, k] x [k, n] -> [m, n], every operand
// given by element strides (A: a_row, a_col; B: b_row, b_col; C: c_row with unit column stride).
template <class T>
struct GemmArgs {
  int64_t m = 0, n = 0, k = 0, batch = 1;
  const T* a = nullptr;
  int64_t a_row = 0, a_col = 0, batch_a = 0;
  const T* b = nullptr;
  int64_t b_row = 0, b_col = 0, batch_b = 0;
  T* c = nullptr;
  int64_t c_row = 0, batch_c = 0;
  T beta = T(0);
};

// Through cuBLAS, or the tiled SGEMM when cuda::gemm() is Gemm::tiled and T is float.
template <class T>
void gemm_strided(const GemmArgs<T>& g);

}  // namespace spool::cuda
