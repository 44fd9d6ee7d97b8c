// CPU softmax + cross-entropy in one pass over each row (maximum, sum of exponentials in double,
// and the row's sum under label smoothing); the backward writes each row's gradient from the saved
// log-sum-exp. The [N, C] log-probabilities of the composed version are never stored.
#include <cmath>
#include <limits>

#include "engine/dispatch.h"
#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"
#include "ops/cpu/vec_math.h"

namespace spool::cpu {

void CpuBackend::cross_entropy(const Tensor& x, const Tensor& targets, int64_t ignore_index,
                               double smoothing, const Tensor& loss, const Tensor& lse) {
  const int64_t rows = x.size(0), n = x.size(1);
  dispatch_float(x.dtype(), "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.raw());
    const int64_t* pt = static_cast<const int64_t*>(targets.raw());
    T* pl = static_cast<T*>(loss.raw());
    T* pe = static_cast<T*>(lse.raw());
#pragma omp parallel for schedule(static) if (rows * n >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      const T* a = px + r * n;
      T mx = n > 0 ? max_contiguous(a, n) : -std::numeric_limits<T>::infinity();
      if (mx == -std::numeric_limits<T>::infinity()) mx = 0;  // an all -inf row: lse is -inf
      double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t i = 0;
      for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; ++k) acc[k] += double(exp_fast(T(a[i + k] - mx)));
      double sum = 0;
      for (; i < n; ++i) sum += double(exp_fast(T(a[i] - mx)));
      sum += ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
      const T l = mx + T(std::log(sum));
      pe[r] = l;
      const int64_t t = pt[r];
      if (t == ignore_index)
        pl[r] = T(0);
      else if (smoothing > 0)
        pl[r] = l - T(1 - smoothing) * a[t] - T(smoothing / double(n) * sum_contiguous(a, n));
      else
        pl[r] = l - a[t];
    }
  });
}

void CpuBackend::cross_entropy_backward(const Tensor& x, const Tensor& targets, const Tensor& lse,
                                        const Tensor& gloss, int64_t ignore_index, double smoothing,
                                        const Tensor& gx) {
  const int64_t rows = x.size(0), n = x.size(1);
  dispatch_float(x.dtype(), "cross_entropy_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.raw());
    const int64_t* pt = static_cast<const int64_t*>(targets.raw());
    const T* pe = static_cast<const T*>(lse.raw());
    const T* pg = static_cast<const T*>(gloss.raw());
    T* po = static_cast<T*>(gx.raw());
    const T off = T(smoothing / double(n)), hit = T(1 - smoothing);
#pragma omp parallel for schedule(static) if (rows * n >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      const T* a = px + r * n;
      T* o = po + r * n;
      const int64_t t = pt[r];
      if (t == ignore_index) {
        for (int64_t c = 0; c < n; ++c) o[c] = T(0);
        continue;
      }
      const T g = pg[r], l = pe[r];
      for (int64_t c = 0; c < n; ++c) o[c] = g * (exp_fast(T(a[c] - l)) - off);
      o[t] -= g * hit;
    }
  });
}

}  // namespace spool::cpu
