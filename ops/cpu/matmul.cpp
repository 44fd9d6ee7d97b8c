// CPU GEMM: batched matmul, f32 on the GEMM path of ops/cpu/paths.h (oneDNN's sgemm where the
// build has it, else OpenBLAS's), f64 through OpenBLAS's dgemm; any strides that BLAS can describe.
#include <cblas.h>

#include <type_traits>

#include "engine/geometry.h"
#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"
#include "ops/cpu/paths.h"

namespace spool::cpu {

void CpuBackend::matmul(const Tensor& a, const Tensor& b, const Tensor& out) {
  const int64_t batch = a.shape()[0], m = a.shape()[1], k = a.shape()[2], n = b.shape()[2];
  if (m == 0 || n == 0 || batch == 0) return;
  const MatrixLayout la = matrix_layout(m, k, a.strides()[1], a.strides()[2]),
                     lb = matrix_layout(k, n, b.strides()[1], b.strides()[2]);
  if (a.dtype() == DType::f32) {
    const float* pa = static_cast<const float*>(a.raw());
    const float* pb = static_cast<const float*>(b.raw());
    float* pc = static_cast<float*>(out.raw());
    for (int64_t i = 0; i < batch; ++i)
      sgemm(la.trans, lb.trans, m, n, k, 1.f, pa + i * a.strides()[0], la.ld,
            pb + i * b.strides()[0], lb.ld, 0.f, pc + i * m * n, n, "matmul");
    return;
  }
  dispatch_float(a.dtype(), "matmul", [&](auto tag) {  // f64 (f32 took sgemm above)
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, double>) {
      const double* pa = static_cast<const double*>(a.raw());
      const double* pb = static_cast<const double*>(b.raw());
      double* pc = static_cast<double*>(out.raw());
      for (int64_t i = 0; i < batch; ++i)
        cblas_dgemm(CblasRowMajor, la.trans ? CblasTrans : CblasNoTrans,
                    lb.trans ? CblasTrans : CblasNoTrans, int(m), int(n), int(k), 1.0,
                    pa + i * a.strides()[0], int(la.ld), pb + i * b.strides()[0], int(lb.ld), 0.0,
                    pc + i * m * n, int(n));
    }
  });
}

}  // namespace spool::cpu
