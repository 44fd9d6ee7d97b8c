// CPU GEMM: batched matmul through OpenBLAS (sgemm / dgemm) or, for f32 where ops/cpu/paths.h
// selects it (the default where the build has oneDNN), oneDNN's dnnl_sgemm; any strides that BLAS
// can describe.
#include <cblas.h>

#ifdef SPOOL_HAVE_ONEDNN
#include <dnnl.h>
#endif

#include "engine/geometry.h"
#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"
#include "ops/cpu/paths.h"

namespace spool::cpu {

namespace {

template <class T>
void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t m, int64_t n, int64_t k, const T* a,
          int64_t lda, const T* b, int64_t ldb, T* c, int64_t ldc) {
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, ta, tb, int(m), int(n), int(k), 1.0f, a, int(lda), b, int(ldb), 0.0f,
                c, int(ldc));
  else
    cblas_dgemm(CblasRowMajor, ta, tb, int(m), int(n), int(k), 1.0, a, int(lda), b, int(ldb), 0.0,
                c, int(ldc));
}

}  // namespace

void CpuBackend::matmul(const Tensor& a, const Tensor& b, const Tensor& out) {
  const int64_t batch = a.shape()[0], m = a.shape()[1], k = a.shape()[2], n = b.shape()[2];
  if (m == 0 || n == 0 || batch == 0) return;
  const MatrixLayout la = matrix_layout(m, k, a.strides()[1], a.strides()[2]),
                     lb = matrix_layout(k, n, b.strides()[1], b.strides()[2]);
#ifdef SPOOL_HAVE_ONEDNN
  if (a.dtype() == DType::f32 && gemm_path() == Gemm::onednn) {
    const float* pa = static_cast<const float*>(a.raw());
    const float* pb = static_cast<const float*>(b.raw());
    float* pc = static_cast<float*>(out.raw());
    for (int64_t i = 0; i < batch; ++i) {
      const dnnl_status_t st = dnnl_sgemm(la.trans ? 'T' : 'N', lb.trans ? 'T' : 'N', m, n, k, 1.f,
                                          pa + i * a.strides()[0], la.ld, pb + i * b.strides()[0],
                                          lb.ld, 0.f, pc + i * m * n, n);
      SPOOL_CHECK(st == dnnl_success, "matmul (oneDNN sgemm): status ", int(st), " for [", m, ", ",
                  k, "] @ [", k, ", ", n, "]; SPOOL_CPU_GEMM=openblas takes OpenBLAS");
    }
    return;
  }
#endif
  dispatch_float(a.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    const T* pa = static_cast<const T*>(a.raw());
    const T* pb = static_cast<const T*>(b.raw());
    T* pc = static_cast<T*>(out.raw());
    for (int64_t i = 0; i < batch; ++i)
      gemm<T>(la.trans ? CblasTrans : CblasNoTrans, lb.trans ? CblasTrans : CblasNoTrans, m, n, k,
              pa + i * a.strides()[0], la.ld, pb + i * b.strides()[0], lb.ld, pc + i * m * n, n);
  });
}

}  // namespace spool::cpu
