#include "ops/video.h"

#include "engine/factory.h"
#include "ops/shape.h"

namespace spool {

Tensor temporal_shift(const Tensor& x, int64_t segments, int64_t fold_div, ShiftMode mode) {
  SPOOL_CHECK(x.dim() >= 2, "temporal_shift: input ", describe(x),
              " must be [N * segments, C, ...]");
  SPOOL_CHECK(segments > 0 && x.size(0) % segments == 0, "temporal_shift: ", x.size(0),
              " frames are not a whole number of clips of ", segments, " segments");
  SPOOL_CHECK(fold_div > 0, "temporal_shift: fold_div ", fold_div, " must be positive");
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
    parts.push_back(from_prev(narrow(v, 2, fold, fold), fold));
    if (c > 2 * fold) parts.push_back(narrow(v, 2, 2 * fold, c - 2 * fold));
  } else {
    parts.push_back(from_prev(narrow(v, 2, 0, fold), fold));
    if (c > fold) parts.push_back(narrow(v, 2, fold, c - fold));
  }
  return reshape(cat(parts, 2), x.shape());
}

}  // namespace spool
