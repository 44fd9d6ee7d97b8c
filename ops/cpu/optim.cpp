// CPU optimizer kernels: the whole Adam / AdamW update in one pass over the parameter.
#include <cmath>

#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"

namespace spool::cpu {

void CpuBackend::adam_step(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v,
                           const AdamParams& a) {
  dispatch_float(p.dtype(), "adam_step", [&](auto tag) {
    using T = decltype(tag);
    T* pp = p.data<T>();
    const T* pg = g.data<T>();
    T* pm = m.data<T>();
    T* pv = v.data<T>();
    const T b1 = T(a.beta1), b2 = T(a.beta2), lr = T(a.lr), eps = T(a.eps);
    const T inv_c1 = T(1 / a.c1), inv_c2 = T(1 / a.c2), wd = T(a.weight_decay);
    const T shrink = a.decoupled ? T(1 - a.lr * a.weight_decay) : T(1);
    const T l2 = a.decoupled ? T(0) : wd;
    const int64_t n = p.numel();
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      const T grad = pg[i] + l2 * pp[i];
      const T mi = b1 * pm[i] + (T(1) - b1) * grad;
      const T vi = b2 * pv[i] + (T(1) - b2) * grad * grad;
      pm[i] = mi;
      pv[i] = vi;
      pp[i] = pp[i] * shrink - lr * (mi * inv_c1) / (std::sqrt(vi * inv_c2) + eps);
    }
  });
}

}  // namespace spool::cpu
