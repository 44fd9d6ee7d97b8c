// CPU batch norm over contiguous x viewed as [N, C, S]; statistics in double, one channel per
// task (so per-channel sums have a fixed order).
#include <cmath>

#include "engine/geometry.h"
#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"
#include "ops/cpu/vec_math.h"

namespace spool::cpu {

void CpuBackend::batch_norm_stats(const Tensor& x, const Tensor& mean, const Tensor& var) {
  const NCS g(x);
  dispatch_float(x.dtype(), "batch_norm", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.raw());
    T* pm = static_cast<T*>(mean.raw());
    T* pv = static_cast<T*>(var.raw());
    const double count = double(g.n * g.s);
#pragma omp parallel for schedule(static) if (g.n * g.c * g.s >= kParallelGrain)
    for (int64_t c = 0; c < g.c; ++c) {
      double sum = 0;
      for (int64_t n = 0; n < g.n; ++n) sum += sum_contiguous(px + (n * g.c + c) * g.s, g.s);
      const double mu = sum / count;
      double sq = 0;
      for (int64_t n = 0; n < g.n; ++n) {
        const T* p = px + (n * g.c + c) * g.s;
        for (int64_t i = 0; i < g.s; ++i) sq += (p[i] - mu) * (p[i] - mu);
      }
      pm[c] = T(mu);
      pv[c] = T(sq / count);
    }
  });
}

void CpuBackend::batch_norm_apply(const Tensor& x, const Tensor& mean, const Tensor& invstd,
                                  const Tensor& w, const Tensor& b, const Tensor& y) {
  const NCS g(x);
  dispatch_float(x.dtype(), "batch_norm", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.raw());
    const T* pm = static_cast<const T*>(mean.raw());
    const T* pr = static_cast<const T*>(invstd.raw());
    const T* pw = w.defined() ? static_cast<const T*>(w.raw()) : nullptr;
    const T* pb = b.defined() ? static_cast<const T*>(b.raw()) : nullptr;
    T* py = static_cast<T*>(y.raw());
#pragma omp parallel for collapse(2) schedule(static) if (g.n * g.c * g.s >= kParallelGrain)
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t c = 0; c < g.c; ++c) {
        // y = x * scale + shift
        const T scale = pr[c] * (pw ? pw[c] : T(1));
        const T shift = (pb ? pb[c] : T(0)) - pm[c] * scale;
        const T* xi = px + (n * g.c + c) * g.s;
        T* yi = py + (n * g.c + c) * g.s;
        for (int64_t i = 0; i < g.s; ++i) yi[i] = xi[i] * scale + shift;
      }
  });
}

void CpuBackend::batch_norm_backward(const Tensor& x, const Tensor& gy, const Tensor& mean,
                                     const Tensor& invstd, const Tensor& w, bool batch_stats,
                                     const Tensor& gx, const Tensor& gw, const Tensor& gb) {
  const NCS g(x);
  dispatch_float(x.dtype(), "batch_norm_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.raw());
    const T* pg = static_cast<const T*>(gy.raw());
    const T* pm = static_cast<const T*>(mean.raw());
    const T* pr = static_cast<const T*>(invstd.raw());
    const T* pw = w.defined() ? static_cast<const T*>(w.raw()) : nullptr;
    T* pgx = gx.defined() ? static_cast<T*>(gx.raw()) : nullptr;
    T* pgw = gw.defined() ? static_cast<T*>(gw.raw()) : nullptr;
    T* pgb = gb.defined() ? static_cast<T*>(gb.raw()) : nullptr;
    const double count = double(g.n * g.s);
#pragma omp parallel for schedule(static) if (g.n * g.c * g.s >= kParallelGrain)
    for (int64_t c = 0; c < g.c; ++c) {
      const double mu = pm[c], rs = pr[c], wc = pw ? pw[c] : 1.0;
      // sum(gy) and sum(gy * xhat) over the channel.
      double sg = 0, sgx = 0;
      for (int64_t n = 0; n < g.n; ++n) {
        const T* xi = px + (n * g.c + c) * g.s;
        const T* gi = pg + (n * g.c + c) * g.s;
        for (int64_t i = 0; i < g.s; ++i) {
          sg += gi[i];
          sgx += gi[i] * (xi[i] - mu) * rs;
        }
      }
      if (pgw) pgw[c] = T(sgx);
      if (pgb) pgb[c] = T(sg);
      if (!pgx) continue;
      // Batch statistics: gx = w rs (gy - mean(gy) - xhat mean(gy xhat)); fixed ones: w rs gy.
      const double mg = batch_stats ? sg / count : 0, mgx = batch_stats ? sgx / count : 0;
      for (int64_t n = 0; n < g.n; ++n) {
        const T* xi = px + (n * g.c + c) * g.s;
        const T* gi = pg + (n * g.c + c) * g.s;
        T* o = pgx + (n * g.c + c) * g.s;
        for (int64_t i = 0; i < g.s; ++i)
          o[i] = T(wc * rs * (gi[i] - mg - (xi[i] - mu) * rs * mgx));
      }
    }
  });
}

}  // namespace spool::cpu
