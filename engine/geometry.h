// Host-side shapes that the kernels of every backend view their operands through.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

#include "engine/host_device.h"
#include "engine/tensor.h"

namespace spool {

// A contiguous tensor viewed as [outer, n, inner] around dim.
struct Around {
  int64_t outer = 1, n = 1, inner = 1;
  Around(const Shape& shape, int64_t dim) {
    for (int64_t d = 0; d < int64_t(shape.size()); ++d) {
      if (d < dim)
        outer *= shape[size_t(d)];
      else if (d == dim)
        n = shape[size_t(d)];
      else
        inner *= shape[size_t(d)];
    }
  }
};

// TSM's temporal shift (ops/video.h): the frame of its clip that channel ch of frame t (of
// `segments`) reads from, or -1 for zeros. Bidirectional: channels [0, fold) from t+1, [fold,
// 2 fold) from t-1; online: [0, fold) from t-1. `reverse` gives the backward's map (each moved
// channel reads from the other side).
SPOOL_HD int64_t shift_source(int64_t t, int64_t ch, int64_t fold, bool online, bool reverse,
                              int64_t segments) {
  int64_t src = t;
  if (!online) {
    if (ch < fold)
      src = reverse ? t - 1 : t + 1;
    else if (ch < 2 * fold)
      src = reverse ? t + 1 : t - 1;
  } else if (ch < fold) {
    src = reverse ? t + 1 : t - 1;
  }
  return src >= 0 && src < segments ? src : -1;
}

// RoIAlign (He et al., Mask R-CNN; torchvision.ops.roi_align's definition). Region `roi` = (batch
// index, x1, y1, x2, y2) in input pixels, scaled by spatial_scale (and shifted by -1/2 when
// aligned, pixel centres at integer + 1/2); without `aligned` a region is at least 1 x 1. It is cut
// into out_h x out_w bins, each sampled on a grid of sampling_ratio x sampling_ratio points
// (sampling_ratio <= 0: ceil(region / bins) each way) at the points' centres; a bin's value is
// the mean of its points, each read bilinearly from the 4 nearest pixels. The kernels of every
// backend share these two functions.
struct RoiBins {
  int64_t batch = 0, grid_h = 1, grid_w = 1;
  double y0 = 0, x0 = 0, bin_h = 0, bin_w = 0, count = 1;
};

template <class T>
SPOOL_HD RoiBins roi_bins(const T* roi, double spatial_scale, int64_t out_h, int64_t out_w,
                          int64_t sampling_ratio, bool aligned) {
  RoiBins b;
  b.batch = int64_t(roi[0]);
  const double offset = aligned ? 0.5 : 0.0;
  b.x0 = double(roi[1]) * spatial_scale - offset;
  b.y0 = double(roi[2]) * spatial_scale - offset;
  double w = double(roi[3]) * spatial_scale - offset - b.x0;
  double h = double(roi[4]) * spatial_scale - offset - b.y0;
  if (!aligned) {
    w = w > 1.0 ? w : 1.0;
    h = h > 1.0 ? h : 1.0;
  }
  b.bin_h = h / double(out_h);
  b.bin_w = w / double(out_w);
  b.grid_h = sampling_ratio > 0 ? sampling_ratio : int64_t(ceil(h / double(out_h)));
  b.grid_w = sampling_ratio > 0 ? sampling_ratio : int64_t(ceil(w / double(out_w)));
  const double n = double(b.grid_h * b.grid_w);
  b.count = n > 1.0 ? n : 1.0;
  return b;
}

// The 4 pixels (offsets into an H x W plane) and weights that read point (y, x) bilinearly;
// false, and no pixels, for a point more than one pixel outside the plane. A point within a
// pixel of the border reads the border.
SPOOL_HD bool roi_point(double y, double x, int64_t h, int64_t w, int64_t at[4], double wt[4]) {
  if (y < -1.0 || y > double(h) || x < -1.0 || x > double(w)) return false;
  y = y > 0.0 ? y : 0.0;
  x = x > 0.0 ? x : 0.0;
  int64_t y_low = int64_t(y), x_low = int64_t(x), y_high, x_high;
  if (y_low >= h - 1) {
    y_high = y_low = h - 1;
    y = double(y_low);
  } else {
    y_high = y_low + 1;
  }
  if (x_low >= w - 1) {
    x_high = x_low = w - 1;
    x = double(x_low);
  } else {
    x_high = x_low + 1;
  }
  const double ly = y - double(y_low), lx = x - double(x_low), hy = 1.0 - ly, hx = 1.0 - lx;
  at[0] = y_low * w + x_low;
  at[1] = y_low * w + x_high;
  at[2] = y_high * w + x_low;
  at[3] = y_high * w + x_high;
  wt[0] = hy * hx;
  wt[1] = hy * lx;
  wt[2] = ly * hx;
  wt[3] = ly * lx;
  return true;
}

// Calls f(at, wt) (roi_point's 4 pixels and weights) for every sampling point of bin (ph, pw)
// that falls on an H x W plane: the loop every RoIAlign kernel runs.
template <class F>
SPOOL_HD void roi_bin_points(const RoiBins& b, int64_t ph, int64_t pw, int64_t h, int64_t w,
                             F&& f) {
  for (int64_t iy = 0; iy < b.grid_h; ++iy) {
    const double y = b.y0 + (double(ph) + (double(iy) + 0.5) / double(b.grid_h)) * b.bin_h;
    for (int64_t ix = 0; ix < b.grid_w; ++ix) {
      const double x = b.x0 + (double(pw) + (double(ix) + 0.5) / double(b.grid_w)) * b.bin_w;
      int64_t at[4];
      double wt[4];
      if (roi_point(y, x, h, w, at, wt)) f(at, wt);
    }
  }
}

// A contiguous [N, C, *spatial] tensor viewed as [N, C, S] (batch norm).
struct NCS {
  int64_t n, c, s;
  explicit NCS(const Tensor& x) : n(x.shape()[0]), c(x.shape()[1]), s(1) {
    for (int64_t d = 2; d < x.dim(); ++d) s *= x.shape()[size_t(d)];
  }
};

// How a [rows, cols] strided matrix looks to a row-major BLAS: as itself with leading dimension
// ld (unit column stride), or transposed (unit row stride). Size-1 dimensions accept any stride.
struct MatrixLayout {
  bool ok = false, trans = false;
  int64_t ld = 1;
};

inline MatrixLayout matrix_layout(int64_t rows, int64_t cols, int64_t s_row, int64_t s_col) {
  if (cols == 1 || s_col == 1) {
    const int64_t ld = rows == 1 ? std::max<int64_t>(cols, 1) : s_row;
    if (ld >= std::max<int64_t>(cols, 1)) return {true, false, ld};
  }
  if (rows == 1 || s_row == 1) {
    const int64_t ld = cols == 1 ? std::max<int64_t>(rows, 1) : s_col;
    if (ld >= std::max<int64_t>(rows, 1)) return {true, true, ld};
  }
  return {};
}

// `shape` for N operands with their own strides, size-1 dims dropped and neighbouring dims
// merged where every operand is contiguous across them (so most elementwise loops index one
// dim). A single element leaves no dims; shapes with a zero are the caller's to skip.
template <size_t N>
struct Coalesced {
  Shape size;
  std::array<Shape, N> stride;
};

template <size_t N>
Coalesced<N> coalesce(const Shape& shape, const std::array<const Shape*, N>& strides) {
  Coalesced<N> c;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !c.size.empty();
    for (size_t k = 0; k < N && merge; ++k)
      merge = c.stride[k].back() == (*strides[k])[d] * shape[d];
    if (merge) {
      c.size.back() *= shape[d];
      for (size_t k = 0; k < N; ++k) c.stride[k].back() = (*strides[k])[d];
    } else {
      c.size.push_back(shape[d]);
      for (size_t k = 0; k < N; ++k) c.stride[k].push_back((*strides[k])[d]);
    }
  }
  return c;
}

}  // namespace spool
