// CPU max and average pooling over 1-3 spatial dims, one (sample, channel) plane per task.
#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"
#include "ops/cpu/window.h"

namespace spool::cpu {

namespace {

// A window plus the number of (sample, channel) planes it slides over.
struct PoolGeo : Window3 {
  int64_t planes;
};

PoolGeo pool_geometry(const Shape& in_shape, const Shape& out_shape, const WindowParams& w) {
  PoolGeo g;
  static_cast<Window3&>(g) = window3(in_shape, out_shape, w);
  g.planes = in_shape[0] * in_shape[1];
  return g;
}

// Calls f(out_index, window start per dim) for every output position of a plane.
template <class F>
void for_each_window(const PoolGeo& g, F&& f) {
  int64_t o = 0;
  for (int64_t od = 0; od < g.out[0]; ++od)
    for (int64_t oh = 0; oh < g.out[1]; ++oh)
      for (int64_t ow = 0; ow < g.out[2]; ++ow, ++o)
        f(o, od * g.s[0] - g.p[0], oh * g.s[1] - g.p[1], ow * g.s[2] - g.p[2]);
}

// The taps [lo, hi) of a window starting at st (taps dil apart, k of them) that fall inside an
// input of size n.
inline void tap_range(int64_t st, int64_t dil, int64_t k, int64_t n, int64_t& lo, int64_t& hi) {
  lo = st >= 0 ? 0 : (-st + dil - 1) / dil;
  hi = st >= n ? 0 : std::min<int64_t>(k, (n - 1 - st) / dil + 1);
  if (hi < lo) hi = lo;
}

// window_max's result without a branch per tap (a data-dependent branch mispredicts about half
// the time on random activations): the taps inside the input only, the first maximum kept, the
// first NaN kept once met (as PyTorch). Returns -inf and index -1 for a window wholly in the
// padding.
template <class T>
inline T plane_window_max(const Window3& g, const T* x, int64_t d0, int64_t h0, int64_t w0,
                          int64_t* arg) {
  int64_t alo, ahi, blo, bhi, clo, chi;
  tap_range(d0, g.d[0], g.k[0], g.in[0], alo, ahi);
  tap_range(h0, g.d[1], g.k[1], g.in[1], blo, bhi);
  tap_range(w0, g.d[2], g.k[2], g.in[2], clo, chi);
  T best = -std::numeric_limits<T>::infinity();
  int64_t at_best = -1;
  bool first = true;
  for (int64_t a = alo; a < ahi; ++a)
    for (int64_t b = blo; b < bhi; ++b) {
      const int64_t row = ((d0 + a * g.d[0]) * g.in[1] + h0 + b * g.d[1]) * g.in[2] + w0;
      for (int64_t c = clo; c < chi; ++c) {
        const int64_t at = row + c * g.d[2];
        const T v = x[at];
        const bool take = first | (v > best) | ((v != v) & (best == best));
        best = take ? v : best;
        at_best = take ? at : at_best;
        first = false;
      }
    }
  *arg = at_best;
  return best;
}

// One plane's max pooling, a row of outputs at a time. The windows of a row that lie wholly inside
// the input along the width (outputs [wlo, whi)) are done tap by tap across the row: for each tap
// of the window, the row's candidates are compared with the running maxima in one loop over the
// outputs, which the compiler vectorises (S, the width stride, is a constant when 1 or 2), and
// the winner's flat index is kept as a 32-bit offset (`rel`). Taps are visited in the window's
// scan order with a strict comparison, and a NaN wins over a number once met, so the result and
// index are those of plane_window_max. The windows that reach into the padding along the width
// (the row's ends) go through plane_window_max. Needs a plane of fewer than 2^31 elements.
template <class T, int S>
void max_pool_plane(const Window3& g, const T* __restrict xp, T* __restrict yp,
                    int64_t* __restrict ip, int32_t* __restrict rel) {
  const int64_t s2 = S ? S : g.s[2];
  // Outputs whose width taps all lie inside the input: ow * s2 - p >= 0 and
  // ow * s2 - p + (k - 1) * d <= in - 1.
  const int64_t wlo = std::min(g.out[2], (g.p[2] + s2 - 1) / s2);
  const int64_t last = g.in[2] - 1 - (g.k[2] - 1) * g.d[2] + g.p[2];
  const int64_t whi = std::max(wlo, std::min(g.out[2], last < 0 ? 0 : last / s2 + 1));
  for (int64_t od = 0; od < g.out[0]; ++od)
    for (int64_t oh = 0; oh < g.out[1]; ++oh) {
      const int64_t o = (od * g.out[1] + oh) * g.out[2];
      const int64_t d0 = od * g.s[0] - g.p[0], h0 = oh * g.s[1] - g.p[1];
      T* yrow = yp + o;
      int64_t* irow = ip + o;
      for (int64_t ow = 0; ow < wlo; ++ow)
        yrow[ow] = plane_window_max(g, xp, d0, h0, ow * s2 - g.p[2], &irow[ow]);
      for (int64_t ow = whi; ow < g.out[2]; ++ow)
        yrow[ow] = plane_window_max(g, xp, d0, h0, ow * s2 - g.p[2], &irow[ow]);
      if (wlo == whi) continue;
      int64_t alo, ahi, blo, bhi;
      tap_range(d0, g.d[0], g.k[0], g.in[0], alo, ahi);
      tap_range(h0, g.d[1], g.k[1], g.in[1], blo, bhi);
      bool first = true;
      for (int64_t a = alo; a < ahi; ++a)
        for (int64_t b = blo; b < bhi; ++b) {
          const int64_t row = ((d0 + a * g.d[0]) * g.in[1] + h0 + b * g.d[1]) * g.in[2];
          for (int64_t c = 0; c < g.k[2]; ++c) {
            // The tap's input for output ow is x[at + ow * s2].
            const int32_t at = int32_t(row + c * g.d[2] - g.p[2]);
            if (first) {
              for (int64_t ow = wlo; ow < whi; ++ow) {
                yrow[ow] = xp[at + ow * s2];
                rel[ow] = at;
              }
              first = false;
              continue;
            }
            for (int64_t ow = wlo; ow < whi; ++ow) {
              const T v = xp[at + ow * s2], best = yrow[ow];
              const bool take = (v > best) | ((v != v) & (best == best));
              yrow[ow] = take ? v : best;
              rel[ow] = take ? at : rel[ow];
            }
          }
        }
      for (int64_t ow = wlo; ow < whi; ++ow) {
        if (first) {  // the window's rows lie wholly in the padding
          yrow[ow] = -std::numeric_limits<T>::infinity();
          irow[ow] = -1;
        } else {
          irow[ow] = rel[ow] + ow * s2;
        }
      }
    }
}

}  // namespace

void CpuBackend::max_pool(const Tensor& x, const WindowParams& p, const Tensor& y,
                          const Tensor& indices) {
  const PoolGeo g = pool_geometry(x.shape(), y.shape(), p);
  const bool rows = g.in_vol() < std::numeric_limits<int32_t>::max();
  dispatch_float(x.dtype(), "max_pool", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.raw());
    T* py = static_cast<T*>(y.raw());
    int64_t* pi = static_cast<int64_t*>(indices.raw());
    auto plane = g.s[2] == 1   ? max_pool_plane<T, 1>
                 : g.s[2] == 2 ? max_pool_plane<T, 2>
                               : max_pool_plane<T, 0>;
#pragma omp parallel if (g.planes * g.out_vol() >= kParallelGrain / 8)
    {
      std::vector<int32_t> rel(rows ? size_t(g.out[2]) : 0);
#pragma omp for schedule(static)
      for (int64_t pl = 0; pl < g.planes; ++pl) {
        const T* xp = px + pl * g.in_vol();
        T* yp = py + pl * g.out_vol();
        int64_t* ip = pi + pl * g.out_vol();
        if (rows) {
          plane(g, xp, yp, ip, rel.data());
          continue;
        }
        for_each_window(g, [&](int64_t o, int64_t d0, int64_t h0, int64_t w0) {
          yp[o] = plane_window_max(g, xp, d0, h0, w0, &ip[o]);
        });
      }
    }
  });
}

void CpuBackend::max_pool_backward(const Tensor& gy, const Tensor& indices, const WindowParams&,
                                   const Tensor& gx) {
  const int64_t planes = gy.shape()[0] * gy.shape()[1];
  const int64_t ov = planes == 0 ? 0 : gy.numel() / planes;
  const int64_t iv = planes == 0 ? 0 : gx.numel() / planes;
  dispatch_float(gy.dtype(), "max_pool_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* pg = static_cast<const T*>(gy.raw());
    const int64_t* pi = static_cast<const int64_t*>(indices.raw());
    T* px = static_cast<T*>(gx.raw());
    std::memset(px, 0, size_t(gx.numel()) * sizeof(T));
#pragma omp parallel for schedule(static) if (planes * ov >= kParallelGrain)
    for (int64_t pl = 0; pl < planes; ++pl)
      for (int64_t o = 0; o < ov; ++o)
        if (pi[pl * ov + o] >= 0) px[pl * iv + pi[pl * ov + o]] += pg[pl * ov + o];
  });
}

namespace {
int64_t divisor(const PoolGeo& g, const WindowParams& p, int64_t d0, int64_t h0, int64_t w0) {
  const int64_t start[3] = {d0, h0, w0};
  return g.avg_divisor(start, p.count_include_pad);
}
}  // namespace

void CpuBackend::avg_pool(const Tensor& x, const WindowParams& p, const Tensor& y) {
  const PoolGeo g = pool_geometry(x.shape(), y.shape(), p);
  dispatch_float(x.dtype(), "avg_pool", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.raw());
    T* py = static_cast<T*>(y.raw());
#pragma omp parallel for schedule(static) if (g.planes * g.out_vol() >= kParallelGrain / 8)
    for (int64_t pl = 0; pl < g.planes; ++pl) {
      const T* xp = px + pl * g.in_vol();
      T* yp = py + pl * g.out_vol();
      for_each_window(g, [&](int64_t o, int64_t d0, int64_t h0, int64_t w0) {
        double s = 0;
        for (int64_t id = std::max<int64_t>(d0, 0); id < std::min(d0 + g.k[0], g.in[0]); ++id)
          for (int64_t ih = std::max<int64_t>(h0, 0); ih < std::min(h0 + g.k[1], g.in[1]); ++ih)
            for (int64_t iw = std::max<int64_t>(w0, 0); iw < std::min(w0 + g.k[2], g.in[2]); ++iw)
              s += xp[(id * g.in[1] + ih) * g.in[2] + iw];
        yp[o] = T(s / double(divisor(g, p, d0, h0, w0)));
      });
    }
  });
}

void CpuBackend::avg_pool_backward(const Tensor& gy, const WindowParams& p, const Tensor& gx) {
  const PoolGeo g = pool_geometry(gx.shape(), gy.shape(), p);
  dispatch_float(gy.dtype(), "avg_pool_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* pg = static_cast<const T*>(gy.raw());
    T* px = static_cast<T*>(gx.raw());
    std::memset(px, 0, size_t(gx.numel()) * sizeof(T));
#pragma omp parallel for schedule(static) if (g.planes * g.out_vol() >= kParallelGrain / 8)
    for (int64_t pl = 0; pl < g.planes; ++pl) {
      T* xp = px + pl * g.in_vol();
      const T* gp = pg + pl * g.out_vol();
      for_each_window(g, [&](int64_t o, int64_t d0, int64_t h0, int64_t w0) {
        const T v = T(double(gp[o]) / double(divisor(g, p, d0, h0, w0)));
        for (int64_t id = std::max<int64_t>(d0, 0); id < std::min(d0 + g.k[0], g.in[0]); ++id)
          for (int64_t ih = std::max<int64_t>(h0, 0); ih < std::min(h0 + g.k[1], g.in[1]); ++ih)
            for (int64_t iw = std::max<int64_t>(w0, 0); iw < std::min(w0 + g.k[2], g.in[2]); ++iw)
              xp[(id * g.in[1] + ih) * g.in[2] + iw] += v;
      });
    }
  });
}

}  // namespace spool::cpu
