#include "ops/video.h"

#include <algorithm>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/factory.h"
#include "ops/elementwise.h"
#include "ops/shape.h"

namespace spool {

namespace {

void check_shift(const Tensor& x, int64_t segments, int64_t fold_div) {
  SPOOL_CHECK(x.dim() >= 2, "temporal_shift: input ", describe(x),
              " must be [N * segments, C, ...]");
  SPOOL_CHECK(segments > 0 && x.size(0) % segments == 0, "temporal_shift: ", x.size(0),
              " frames are not a whole number of clips of ", segments, " segments");
  SPOOL_CHECK(fold_div > 0, "temporal_shift: fold_div ", fold_div, " must be positive");
}

// The backend's kernel into a new tensor; `reverse` gives the backward's map.
Tensor shift_kernel(const Tensor& x, int64_t segments, int64_t fold, ShiftMode mode, bool reverse) {
  const Tensor xc = contiguous(x);
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  backend(x.device()).temporal_shift(xc, segments, fold, mode == ShiftMode::online, reverse, y);
  return y;
}

}  // namespace

Tensor temporal_shift(const Tensor& x, int64_t segments, int64_t fold_div, ShiftMode mode) {
  check_shift(x, segments, fold_div);
  const int64_t fold = x.size(1) / fold_div;
  if (fold == 0) return x;  // too few channels to shift any
  if (!is_float(x.dtype())) return detail::temporal_shift_composite(x, segments, fold_div, mode);
  Tensor y = shift_kernel(x, segments, fold, mode, false);
  record("temporal_shift", {x}, {y}, {},
         [segments, fold, mode](const Tensors&, const Tensors& g, const Needs&) {
           return Tensors{shift_kernel(g[0], segments, fold, mode, true)};
         },
         {0});
  return y;
}

namespace {

// x [N * segments, C, ...] as [N, segments, C, ...].
Tensor as_clips(const Tensor& x, int64_t segments, const char* op) {
  SPOOL_CHECK(x.dim() >= 2, op, ": input ", describe(x), " must be [N * segments, C, ...]");
  SPOOL_CHECK(segments > 0 && x.size(0) % segments == 0, op, ": ", x.size(0),
              " frames are not a whole number of clips of ", segments, " segments");
  Shape s = {x.size(0) / segments, segments};
  for (int64_t d = 1; d < x.dim(); ++d) s.push_back(x.size(d));
  return reshape(x, s);
}

// v [N, K, C, ...] moved one frame along time: step +1 gives frame t+1 at t, -1 frame t-1, with
// zeros where the clip has no such frame.
Tensor neighbour(const Tensor& v, int64_t step) {
  const int64_t k = v.size(1);
  Shape z = v.shape();
  z[1] = 1;
  const Tensor pad = zeros(z, v.dtype(), v.device());
  if (k == 1) return pad;
  return step > 0 ? cat({narrow(v, 1, 1, k - 1), pad}, 1) : cat({pad, narrow(v, 1, 0, k - 1)}, 1);
}

}  // namespace

Tensor temporal_conv(const Tensor& x, const Tensor& weight, int64_t segments) {
  const Tensor v = as_clips(x, segments, "temporal_conv");
  const int64_t c = x.size(1);
  SPOOL_CHECK(
      weight.dim() == 3 && weight.size(0) == c && weight.size(1) == 1 && weight.size(2) == 3,
      "temporal_conv: weight ", describe(weight), " must be [", c, ", 1, 3] for ", c, " channels");
  SPOOL_CHECK(weight.dtype() == x.dtype() && weight.device() == x.device(),
              "temporal_conv: weight ", describe(weight), " and input ", describe(x),
              " differ in dtype or device");
  Shape ws = {1, 1, c};  // a tap's weights broadcast over [N, K, C, ...]
  for (int64_t d = 2; d < x.dim(); ++d) ws.push_back(1);
  auto tap = [&](int64_t k) { return reshape(narrow(weight, 2, k, 1), ws); };
  const Tensor y = neighbour(v, -1) * tap(0) + v * tap(1) + neighbour(v, 1) * tap(2);
  return reshape(y, x.shape());
}

Tensor temporal_difference(const Tensor& a, const Tensor& b, int64_t segments, int64_t step) {
  SPOOL_CHECK(a.shape() == b.shape(), "temporal_difference: ", describe(a), " and ", describe(b),
              " differ in shape");
  SPOOL_CHECK(step == 1 || step == -1, "temporal_difference: step ", step, " is not 1 or -1");
  const Tensor va = as_clips(a, segments, "temporal_difference");
  const Tensor vb = as_clips(b, segments, "temporal_difference");
  Shape z = va.shape();
  z[1] = 1;
  const Tensor edge = zeros(z, a.dtype(), a.device());
  if (segments == 1) return reshape(edge, a.shape());
  if (step == 1) {
    const Tensor d = narrow(va, 1, 1, segments - 1) - narrow(vb, 1, 0, segments - 1);
    return reshape(cat({d, edge}, 1), a.shape());
  }
  const Tensor d = narrow(va, 1, 0, segments - 1) - narrow(vb, 1, 1, segments - 1);
  return reshape(cat({edge, d}, 1), a.shape());
}

namespace detail {

Tensor temporal_shift_composite(const Tensor& x, int64_t segments, int64_t fold_div,
                                ShiftMode mode) {
  check_shift(x, segments, fold_div);
  const int64_t n = x.size(0) / segments, c = x.size(1), fold = c / fold_div;
  if (fold == 0) return x;  // too few channels to shift any
  Shape s5 = {n, segments};
  for (int64_t d = 1; d < x.dim(); ++d) s5.push_back(x.size(d));
  const Tensor v = reshape(x, s5);  // [N, K, C, ...]
  auto zeros_of = [&](int64_t channels) {
    Shape z = s5;
    z[1] = 1;
    z[2] = channels;
    return zeros(z, x.dtype(), x.device());
  };
  // Frames t+1 (from the next frame; the last frame gets zeros) and t-1 (the first gets zeros).
  auto from_next = [&](const Tensor& part, int64_t channels) {
    if (segments == 1) return zeros_of(channels);
    return cat({narrow(part, 1, 1, segments - 1), zeros_of(channels)}, 1);
  };
  auto from_prev = [&](const Tensor& part, int64_t channels) {
    if (segments == 1) return zeros_of(channels);
    return cat({zeros_of(channels), narrow(part, 1, 0, segments - 1)}, 1);
  };
  Tensors parts;
  if (mode == ShiftMode::bidirectional) {
    parts.push_back(from_next(narrow(v, 2, 0, fold), fold));
    const int64_t back = std::min(fold, c - fold);  // fold_div 1: every channel moves forward
    if (back > 0) parts.push_back(from_prev(narrow(v, 2, fold, back), back));
    if (c > 2 * fold) parts.push_back(narrow(v, 2, 2 * fold, c - 2 * fold));
  } else {
    parts.push_back(from_prev(narrow(v, 2, 0, fold), fold));
    if (c > fold) parts.push_back(narrow(v, 2, fold, c - fold));
  }
  return reshape(cat(parts, 2), x.shape());
}

}  // namespace detail

}  // namespace spool
