// The emulated device's cuBLAS (SPOOL_CUDA=EMULATE): the calls cuda/matmul.cu makes, over the
// host's CBLAS (OpenBLAS, column-major like cuBLAS). Device memory is host memory, so the
// pointers go to the BLAS as they are.
#pragma once
#include <cblas.h>

#include "cuda_runtime.h"

enum cublasStatus_t {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_ARCH_MISMATCH = 8,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
  CUBLAS_STATUS_INTERNAL_ERROR = 14,
  CUBLAS_STATUS_NOT_SUPPORTED = 15,
};
enum cublasOperation_t { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };
enum cublasMath_t { CUBLAS_DEFAULT_MATH = 0, CUBLAS_TF32_TENSOR_OP_MATH = 3 };
struct cublasContext {
  cudaStream_t stream = nullptr;
};
using cublasHandle_t = cublasContext*;

inline cublasStatus_t cublasCreate(cublasHandle_t* h) {
  *h = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  h->stream = s;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t) {
  return h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

namespace spool::emu {
// cuBLAS's argument checks (the ones its documentation lists as CUBLAS_STATUS_INVALID_VALUE),
// so an emulated run refuses what the GPU would.
inline bool gemm_args_ok(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, int lda,
                         int ldb, int ldc, int batch) {
  const int rows_a = ta == CUBLAS_OP_N ? m : k, rows_b = tb == CUBLAS_OP_N ? k : n;
  return m >= 0 && n >= 0 && k >= 0 && batch >= 0 && lda >= (rows_a > 1 ? rows_a : 1) &&
         ldb >= (rows_b > 1 ? rows_b : 1) && ldc >= (m > 1 ? m : 1);
}
inline CBLAS_TRANSPOSE trans(cublasOperation_t t) {
  return t == CUBLAS_OP_N ? CblasNoTrans : CblasTrans;
}
}  // namespace spool::emu

inline cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta,
                                                cublasOperation_t tb, int m, int n, int k,
                                                const float* alpha, const float* a, int lda,
                                                long long sa, const float* b, int ldb, long long sb,
                                                const float* beta, float* c, int ldc, long long sc,
                                                int batch) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!spool::emu::gemm_args_ok(ta, tb, m, n, k, lda, ldb, ldc, batch))
    return CUBLAS_STATUS_INVALID_VALUE;
  for (int i = 0; i < batch; ++i)
    cblas_sgemm(CblasColMajor, spool::emu::trans(ta), spool::emu::trans(tb), m, n, k, *alpha,
                a + i * sa, lda, b + i * sb, ldb, *beta, c + i * sc, ldc);
  return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasDgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta,
                                                cublasOperation_t tb, int m, int n, int k,
                                                const double* alpha, const double* a, int lda,
                                                long long sa, const double* b, int ldb,
                                                long long sb, const double* beta, double* c,
                                                int ldc, long long sc, int batch) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!spool::emu::gemm_args_ok(ta, tb, m, n, k, lda, ldb, ldc, batch))
    return CUBLAS_STATUS_INVALID_VALUE;
  for (int i = 0; i < batch; ++i)
    cblas_dgemm(CblasColMajor, spool::emu::trans(ta), spool::emu::trans(tb), m, n, k, *alpha,
                a + i * sa, lda, b + i * sb, ldb, *beta, c + i * sc, ldc);
  return CUBLAS_STATUS_SUCCESS;
}
