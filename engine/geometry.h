// Host-side shapes that the kernels of every backend view their operands through.
#pragma once
#include <algorithm>
#include <array>
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
