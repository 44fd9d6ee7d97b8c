// CPU layer norm over the last dimension, forward and backward. Statistics in double.
#include <cmath>
#include <vector>

#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"
#include "ops/cpu/vec_math.h"

namespace spool::cpu {

void CpuBackend::layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, double eps,
                            const Tensor& y, const Tensor& mean, const Tensor& rstd) {
  const int64_t d = x.shape().back(), rows = d == 0 ? 0 : x.numel() / d;
  dispatch_float(x.dtype(), "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.raw());
    const T* pw = w.defined() ? static_cast<const T*>(w.raw()) : nullptr;
    const T* pb = b.defined() ? static_cast<const T*>(b.raw()) : nullptr;
    T* py = static_cast<T*>(y.raw());
    T* pm = static_cast<T*>(mean.raw());
    T* pr = static_cast<T*>(rstd.raw());
#pragma omp parallel for schedule(static) if (rows * d >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = px + r * d;
      T* yr = py + r * d;
      const double mu = sum_contiguous(xr, d) / double(d);
      const double rs = 1.0 / std::sqrt(sum_sq_dev(xr, d, mu) / double(d) + eps);
      pm[r] = T(mu);
      pr[r] = T(rs);
      const T tmu = T(mu), trs = T(rs);
      for (int64_t i = 0; i < d; ++i) {
        T h = (xr[i] - tmu) * trs;
        if (pw) h *= pw[i];
        if (pb) h += pb[i];
        yr[i] = h;
      }
    }
  });
}

void CpuBackend::layer_norm_backward(const Tensor& x, const Tensor& w, const Tensor& mean,
                                     const Tensor& rstd, const Tensor& gy, const Tensor& gx,
                                     const Tensor& gw, const Tensor& gb) {
  const int64_t d = x.shape().back(), rows = d == 0 ? 0 : x.numel() / d;
  dispatch_float(x.dtype(), "layer_norm_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.raw());
    const T* pw = w.defined() ? static_cast<const T*>(w.raw()) : nullptr;
    const T* pm = static_cast<const T*>(mean.raw());
    const T* pr = static_cast<const T*>(rstd.raw());
    const T* pg = static_cast<const T*>(gy.raw());
    T* pgx = static_cast<T*>(gx.raw());
    const bool want_params = gw.defined() || gb.defined();
    Ranges ranges = split_ranges(rows * d);
    if (ranges.parts > rows) ranges.parts = int(std::max<int64_t>(rows, 1));
    ranges.n = rows;
    // Per-range partial sums of the parameter gradients, combined in range order.
    std::vector<double> pgw(want_params ? size_t(ranges.parts * d) : 0, 0.0),
        pgb(want_params ? size_t(ranges.parts * d) : 0, 0.0);
#pragma omp parallel for schedule(static) if (ranges.parts > 1)
    for (int p = 0; p < ranges.parts; ++p) {
      for (int64_t r = ranges.begin(p); r < ranges.end(p); ++r) {
        const T* xr = px + r * d;
        const T* gr = pg + r * d;
        T* o = pgx + r * d;
        const double mu = pm[r], rs = pr[r];
        // With h = (x - mu) * rs and g = gy * w: gx = rs * (g - mean(g) - h * mean(g * h)).
        // Eight accumulator lanes keep the sums pipelined; their order is fixed.
        double sg8[8] = {0, 0, 0, 0, 0, 0, 0, 0}, sgh8[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t i = 0; i < d; ++i) {
          const double h = (double(xr[i]) - mu) * rs;
          const double g = pw ? double(gr[i]) * double(pw[i]) : double(gr[i]);
          sg8[i & 7] += g;
          sgh8[i & 7] += g * h;
        }
        if (want_params) {
          double* gwp = pgw.data() + p * d;
          double* gbp = pgb.data() + p * d;
          for (int64_t i = 0; i < d; ++i) {
            gwp[i] += double(gr[i]) * ((double(xr[i]) - mu) * rs);
            gbp[i] += double(gr[i]);
          }
        }
        double sg = 0, sgh = 0;
        for (int k = 0; k < 8; ++k) sg += sg8[k], sgh += sgh8[k];
        const T mg = T(sg / double(d)), mgh = T(sgh / double(d)), trs = T(rs), tmu = T(mu);
        for (int64_t i = 0; i < d; ++i) {
          const T h = (xr[i] - tmu) * trs;
          const T g = pw ? gr[i] * pw[i] : gr[i];
          o[i] = trs * (g - mg - h * mgh);
        }
      }
    }
    if (gw.defined() || gb.defined()) {
      T* ow = gw.defined() ? static_cast<T*>(gw.raw()) : nullptr;
      T* ob = gb.defined() ? static_cast<T*>(gb.raw()) : nullptr;
      for (int64_t i = 0; i < d; ++i) {
        double sw = 0, sb = 0;
        for (int p = 0; p < ranges.parts; ++p) {
          sw += pgw[size_t(p * d + i)];
          sb += pgb[size_t(p * d + i)];
        }
        if (ow) ow[i] = T(sw);
        if (ob) ob[i] = T(sb);
      }
    }
  });
}

}  // namespace spool::cpu
