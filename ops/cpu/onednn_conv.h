// The oneDNN convolution path behind ops/cpu/paths.h: the three entry points for contiguous f32
// tensors, the same contracts as Backend::conv, conv_backward_input and conv_backward_weight.
// Defined only where the build found oneDNN (SPOOL_HAVE_ONEDNN).
#pragma once
#include "engine/backend.h"

namespace spool::cpu::onednn {

void conv(const Tensor& x, const Tensor& w, const WindowParams& p, const Tensor& y);
void conv_backward_input(const Tensor& gy, const Tensor& w, const WindowParams& p,
                         const Tensor& gx);
void conv_backward_weight(const Tensor& gy, const Tensor& x, const WindowParams& p,
                          const Tensor& gw);

}  // namespace spool::cpu::onednn
