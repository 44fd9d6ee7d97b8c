#include "engine/shape.h"

#include <algorithm>

#include "engine/error.h"

namespace spool {

int64_t numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape)
    if (__builtin_mul_overflow(n, s, &n))
      fail("shape ", str(shape), " has more elements than a 64-bit count holds");
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= std::max<int64_t>(shape[i], 1);
  }
  return strides;
}

std::string str(const Shape& shape) {
  // Messages stay one readable line: a shape read from a file may have any number of dims.
  const size_t shown = shape.size() <= kShapeDimsShown ? shape.size() : kShapeDimsShownShort;
  std::string s = "[";
  for (size_t i = 0; i < shown; ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shown < shape.size()) s += ", ... (" + std::to_string(shape.size()) + " dims)";
  return s + "]";
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  int64_t lo = ndim == 0 ? -1 : -ndim, hi = ndim == 0 ? 0 : ndim - 1;
  SPOOL_CHECK(dim >= lo && dim <= hi, op, ": dim ", dim, " is out of range for a tensor of ", ndim,
              " dimensions (expected ", lo, " to ", hi, ")");
  return dim < 0 ? dim + std::max<int64_t>(ndim, 1) : dim;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    SPOOL_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", str(a), " and ", str(b),
                " do not broadcast (dimension ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace spool
