// CPU GEMM: batched matmul through OpenBLAS (sgemm / dgemm), any strides that BLAS can describe.
#include <cblas.h>

#include <cstring>

#include "engine/factory.h"
#include "engine/geometry.h"
#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"

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

void CpuBackend::matmul(const Tensor& a_in, const Tensor& b_in, const Tensor& out) {
  const int64_t batch = a_in.shape()[0], m = a_in.shape()[1], k = a_in.shape()[2],
                n = b_in.shape()[2];
  if (m == 0 || n == 0 || batch == 0) return;
  if (k == 0) {
    fill(out, 0);
    return;
  }
  // Operands BLAS cannot describe are copied to contiguous first.
  auto prepare = [&](const Tensor& t, int64_t rows, int64_t cols, MatrixLayout& l) {
    l = matrix_layout(rows, cols, t.strides()[1], t.strides()[2]);
    if (l.ok) return t;
    Tensor c = empty(t.shape(), t.dtype(), t.device());
    copy(t, c);
    l = matrix_layout(rows, cols, c.strides()[1], c.strides()[2]);
    return c;
  };
  MatrixLayout la, lb;
  Tensor a = prepare(a_in, m, k, la), b = prepare(b_in, k, n, lb);
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
