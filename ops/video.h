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

// A channel-wise (depthwise) temporal convolution of kernel 3 over the frames of each clip, on
// x [N * segments, C, ...] with weight [C, 1, 3] (torch's Conv1d(C, C, 3, padding=1, groups=C)
// laid along time, as TEA's temporal convolutions): y_t = w[c, 0] x_{t-1} + w[c, 1] x_t +
// w[c, 2] x_{t+1}, the frames outside the clip taken as zeros. Differentiable in x and weight;
// composed of views, products and one concatenation per neighbour.
Tensor temporal_conv(const Tensor& x, const Tensor& weight, int64_t segments);

// The temporal difference of motion modules (TEA's motion excitation, STM's channel-wise motion
// module, TDN's long-term module) on a and b [N * segments, C, ...]: with step 1,
// d_t = a_{t+1} - b_t for every frame but a clip's last, whose difference is zeros; with step -1
// (TDN's backward difference), d_t = a_{t-1} - b_t, zeros for a clip's first frame.
// Differentiable in both.
Tensor temporal_difference(const Tensor& a, const Tensor& b, int64_t segments, int64_t step = 1);

namespace detail {
Tensor temporal_shift_composite(const Tensor& x, int64_t segments, int64_t fold_div,
                                ShiftMode mode);
}  // namespace detail

}  // namespace spool
