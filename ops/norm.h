// Normalisation layers' ops.
#pragma once
#include "engine/tensor.h"

namespace spool {

// Normalises over the trailing dims given by normalized_shape, then scales by weight and shifts
// by bias (both of normalized_shape, either may be undefined), as torch.nn.functional.layer_norm.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = {},
                  const Tensor& bias = {}, double eps = 1e-5);

}  // namespace spool
