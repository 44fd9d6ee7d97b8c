// The emulated device's cuBLAS (SPOOL_CUDA=EMULATE): the calls cuda/matmul.cu makes, over the
// host's CBLAS (OpenBLAS, column-major like cuBLAS). Device memory is host memory, so the
// pointers go to the BLAS as they are.
#pragma once
#include <cblas.h>

#include <cstdint>
#include <cstring>
#include <vector>

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

// cublasGemmStridedBatchedEx for what spool calls it with: bf16 A and B, f32 C, f32 compute. The
// bf16 operands are widened to f32 (exactly) and multiplied by the host's SGEMM.
enum cudaDataType_t { CUDA_R_32F = 0, CUDA_R_64F = 1, CUDA_R_16F = 2, CUDA_R_16BF = 14 };
enum cublasComputeType_t { CUBLAS_COMPUTE_32F = 68 };
enum cublasGemmAlgo_t { CUBLAS_GEMM_DEFAULT = -1 };

namespace spool::emu {
// A column-major rows x cols bf16 matrix with leading dimension ld, widened into out.
inline void widen_bf16(const void* p, int rows, int cols, int ld, std::vector<float>& out) {
  const size_t n = cols == 0 ? 0 : size_t(ld) * size_t(cols - 1) + size_t(rows);
  out.assign(n, 0.0f);
  const uint16_t* h = static_cast<const uint16_t*>(p);
  for (int c = 0; c < cols; ++c)
    for (int r = 0; r < rows; ++r) {
      const uint32_t u = uint32_t(h[size_t(c) * size_t(ld) + size_t(r)]) << 16;
      std::memcpy(&out[size_t(c) * size_t(ld) + size_t(r)], &u, 4);
    }
}
}  // namespace spool::emu

inline cublasStatus_t cublasGemmStridedBatchedEx(
    cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
    const void* alpha, const void* a, cudaDataType_t atype, int lda, long long sa, const void* b,
    cudaDataType_t btype, int ldb, long long sb, const void* beta, void* c, cudaDataType_t ctype,
    int ldc, long long sc, int batch, cublasComputeType_t compute, cublasGemmAlgo_t) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (atype != CUDA_R_16BF || btype != CUDA_R_16BF || ctype != CUDA_R_32F ||
      compute != CUBLAS_COMPUTE_32F)
    return CUBLAS_STATUS_NOT_SUPPORTED;
  if (!spool::emu::gemm_args_ok(ta, tb, m, n, k, lda, ldb, ldc, batch))
    return CUBLAS_STATUS_INVALID_VALUE;
  const int ra = ta == CUBLAS_OP_N ? m : k, ca = ta == CUBLAS_OP_N ? k : m;
  const int rb = tb == CUBLAS_OP_N ? k : n, cb = tb == CUBLAS_OP_N ? n : k;
  std::vector<float> fa, fb;
  for (int i = 0; i < batch; ++i) {
    spool::emu::widen_bf16(static_cast<const uint16_t*>(a) + i * sa, ra, ca, lda, fa);
    spool::emu::widen_bf16(static_cast<const uint16_t*>(b) + i * sb, rb, cb, ldb, fb);
    cblas_sgemm(CblasColMajor, spool::emu::trans(ta), spool::emu::trans(tb), m, n, k,
                *static_cast<const float*>(alpha), fa.data(), lda, fb.data(), ldb,
                *static_cast<const float*>(beta), static_cast<float*>(c) + i * sc, ldc);
  }
  return CUBLAS_STATUS_SUCCESS;
}
