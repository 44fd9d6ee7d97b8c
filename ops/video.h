// Ops for video models.
#pragma once
#include "engine/tensor.h"

namespace spool {

enum class ShiftMode {
  bidirectional,  // TSM: channels [0, C/d) from frame t+1, [C/d, 2C/d) from frame t-1
  online,         // uni-directional TSM for streaming: channels [0, C/d) from frame t-1 only
};

// The temporal shift of TSM (Lin et al., 2019) on x [N * segments, C, ...] (frames of a clip
// adjacent along dim 0): some channels take their values from the next or previous frame of the
// same clip, zero-filled at the clip's ends; the rest stay. fold_div d = 8 shifts 1/8 of the
// channels each way. Differentiable (the gradient shifts back).
// f32 and f64 go through the backend's kernel (one pass, on the CPU and the GPU); other dtypes
// through views and one concatenation (detail::temporal_shift_composite), which the tests hold
// the kernels to.
Tensor temporal_shift(const Tensor& x, int64_t segments, int64_t fold_div = 8,
                      ShiftMode mode = ShiftMode::bidirectional);

namespace detail {
Tensor temporal_shift_composite(const Tensor& x, int64_t segments, int64_t fold_div,
                                ShiftMode mode);
}  // namespace detail

}  // namespace spool
