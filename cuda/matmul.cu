// CUDA GEMM: batched matmul through cuBLAS (strided-batched sgemm / dgemm, no TF32: f32 results
// stay within f32 rounding of the CPU's), and spool's own tiled SGEMM beside it for comparison
// (cuda::set_gemm). Convolution's GEMMs come through gemm_strided below as well.
#include <cublas_v2.h>
#include <climits>

#include "cuda/common.cuh"
#include "cuda/control.h"
#include "cuda/cuda_backend.h"
#include "cuda/gemm.h"
#include "engine/geometry.h"

namespace spool::cuda {

namespace {

const char* cublas_status(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS:
      return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "not initialised";
    case CUBLAS_STATUS_ALLOC_FAILED:
      return "allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return "architecture mismatch";
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return "execution failed";
    case CUBLAS_STATUS_INTERNAL_ERROR:
      return "internal error";
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return "not supported";
    default:
      return "unknown status";
  }
}

#define SPOOL_CUBLAS_CHECK(call)                                                                   \
  do {                                                                                             \
    const cublasStatus_t spool_st_ = (call);                                                       \
    if (spool_st_ != CUBLAS_STATUS_SUCCESS)                                                        \
      ::spool::fail("cublas: ", #call, " failed: ", cublas_status(spool_st_), " (", __FILE__, ":", \
                    __LINE__, ")");                                                                \
  } while (0)

cublasHandle_t handle() {
  static cublasHandle_t h = [] {
    cublasHandle_t made = nullptr;
    SPOOL_CUBLAS_CHECK(cublasCreate(&made));
    SPOOL_CUBLAS_CHECK(cublasSetStream(made, stream()));
    SPOOL_CUBLAS_CHECK(cublasSetMathMode(made, CUBLAS_DEFAULT_MATH));
    return made;
  }();
  return h;
}

// Tiled SGEMM: a 64 x 64 tile of C per block of 256 threads, each thread a 4 x 4 micro-tile,
// K in steps of 16 through shared memory. Operands are read through their strides (so
// transposed views need no copy); C is written with its own row stride.
constexpr int kTM = 64, kTN = 64, kTK = 16;

__global__ void __launch_bounds__(256) sgemm_tiled_kernel(GemmArgs<float> g) {
  __shared__ float As[kTK][kTM + 4];
  __shared__ float Bs[kTK][kTN + 4];
  const int batch = blockIdx.z;
  const float* A = g.a + batch * g.batch_a;
  const float* B = g.b + batch * g.batch_b;
  float* C = g.c + batch * g.batch_c;
  const int64_t row0 = int64_t(blockIdx.y) * kTM, col0 = int64_t(blockIdx.x) * kTN;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < g.k; k0 += kTK) {
    // 64 x 16 of A and 16 x 64 of B: 1024 values each, four per thread.
    for (int e = threadIdx.x; e < kTM * kTK; e += 256) {
      const int r = e / kTK, kk = e % kTK;
      const int64_t gr = row0 + r, gk = k0 + kk;
      As[kk][r] = (gr < g.m && gk < g.k) ? A[gr * g.a_row + gk * g.a_col] : 0.0f;
    }
    for (int e = threadIdx.x; e < kTK * kTN; e += 256) {
      const int kk = e / kTN, c = e % kTN;
      const int64_t gk = k0 + kk, gc = col0 + c;
      Bs[kk][c] = (gk < g.k && gc < g.n) ? B[gk * g.b_row + gc * g.b_col] : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTK; ++kk) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = As[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = Bs[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t r = row0 + ty + 16 * i;
    if (r >= g.m) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t c = col0 + tx + 16 * j;
      if (c >= g.n) continue;
      float* out = C + r * g.c_row + c;
      *out = g.beta == 0.0f ? acc[i][j] : acc[i][j] + g.beta * *out;
    }
  }
}

void check_cublas_ints(int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc,
                       int64_t batch) {
  const struct {
    const char* name;
    int64_t value;
  } ints[] = {{"m", m},     {"n", n},     {"k", k},        {"lda", lda},
              {"ldb", ldb}, {"ldc", ldc}, {"batch", batch}};
  for (const auto& [name, value] : ints)
    SPOOL_CHECK(value >= 0 && value <= int64_t(INT_MAX), "matmul: ", name, " = ", value,
                " does not fit cuBLAS's 32-bit int; this product needs the tiled kernel "
                "(SPOOL_CUDA_GEMM=tiled) or smaller operands");
}

template <class T>
void cublas_gemm(const GemmArgs<T>& g, const MatrixLayout& la, const MatrixLayout& lb) {
  // Row-major C = A B is column-major C^T = B^T A^T: cuBLAS gets (B, A) and n, m swapped.
  const cublasOperation_t opb = lb.trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t opa = la.trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  const T one = T(1), beta = g.beta;
  // cuBLAS takes sizes, leading dimensions and the batch count as int: each is checked, not
  // narrowed (a leading dimension of 2^31 would wrap negative and cuBLAS would read elsewhere).
  check_cublas_ints(g.m, g.n, g.k, la.ld, lb.ld, g.c_row, g.batch);
  if constexpr (std::is_same_v<T, float>)
    SPOOL_CUBLAS_CHECK(cublasSgemmStridedBatched(
        handle(), opb, opa, int(g.n), int(g.m), int(g.k), &one, g.b, int(lb.ld), g.batch_b, g.a,
        int(la.ld), g.batch_a, &beta, g.c, int(g.c_row), g.batch_c, int(g.batch)));
  else
    SPOOL_CUBLAS_CHECK(cublasDgemmStridedBatched(
        handle(), opb, opa, int(g.n), int(g.m), int(g.k), &one, g.b, int(lb.ld), g.batch_b, g.a,
        int(la.ld), g.batch_a, &beta, g.c, int(g.c_row), g.batch_c, int(g.batch)));
}

}  // namespace

template <class T>
void gemm_strided(const GemmArgs<T>& g) {
  if (g.m == 0 || g.n == 0 || g.batch == 0) return;
  if constexpr (std::is_same_v<T, float>) {
    if (gemm() == Gemm::tiled && g.batch <= 65535 && (g.m + kTM - 1) / kTM <= 65535) {
      const dim3 grid(unsigned((g.n + kTN - 1) / kTN), unsigned((g.m + kTM - 1) / kTM),
                      unsigned(g.batch));
      SPOOL_LAUNCH(sgemm_tiled_kernel, grid, 256, 0, stream(), g);
      SPOOL_CUDA_LAUNCHED("sgemm_tiled");
      return;
    }
  }
  const MatrixLayout la = matrix_layout(g.m, g.k, g.a_row, g.a_col),
                     lb = matrix_layout(g.k, g.n, g.b_row, g.b_col);
  SPOOL_CHECK(la.ok && lb.ok && g.c_row >= g.n, "gemm: operands cuBLAS cannot describe");
  cublas_gemm(g, la, lb);
}
template void gemm_strided<float>(const GemmArgs<float>&);
template void gemm_strided<double>(const GemmArgs<double>&);

void CudaBackend::matmul(const Tensor& a, const Tensor& b, const Tensor& out) {
  const int64_t batch = a.shape()[0], m = a.shape()[1], k = a.shape()[2], n = b.shape()[2];
  if (m == 0 || n == 0 || batch == 0) return;
  if (a.dtype() == DType::bf16) {
    // autocast's product: bf16 operands, f32 accumulation and result, through cuBLAS (tensor
    // cores on sm_90) whichever GEMM cuda::gemm() names.
    const MatrixLayout la = matrix_layout(m, k, a.strides()[1], a.strides()[2]),
                       lb = matrix_layout(k, n, b.strides()[1], b.strides()[2]);
    SPOOL_CHECK(la.ok && lb.ok && out.dtype() == DType::f32,
                "matmul: bf16 operands cuBLAS cannot describe, or a result that is not f32");
    check_cublas_ints(m, n, k, la.ld, lb.ld, n, batch);
    const float one = 1, zero = 0;
    SPOOL_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        handle(), lb.trans ? CUBLAS_OP_T : CUBLAS_OP_N, la.trans ? CUBLAS_OP_T : CUBLAS_OP_N,
        int(n), int(m), int(k), &one, b.raw(), CUDA_R_16BF, int(lb.ld), b.strides()[0], a.raw(),
        CUDA_R_16BF, int(la.ld), a.strides()[0], &zero, out.raw(), CUDA_R_32F, int(n), m * n,
        int(batch), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return;
  }
  dispatch_float(a.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    GemmArgs<T> g;
    g.m = m;
    g.n = n;
    g.k = k;
    g.batch = batch;
    g.a = static_cast<const T*>(a.raw());
    g.a_row = a.strides()[1];
    g.a_col = a.strides()[2];
    g.batch_a = a.strides()[0];
    g.b = static_cast<const T*>(b.raw());
    g.b_row = b.strides()[1];
    g.b_col = b.strides()[2];
    g.batch_b = b.strides()[0];
    g.c = static_cast<T*>(out.raw());
    g.c_row = n;
    g.batch_c = m * n;
    g.beta = T(0);
    gemm_strided(g);
  });
}

}  // namespace spool::cuda
