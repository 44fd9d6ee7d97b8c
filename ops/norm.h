// Normalisation layers' ops.
#pragma once
#include "engine/tensor.h"

namespace spool {

// Normalises over the trailing dims given by normalized_shape, then scales by weight and shifts
// by bias (both of normalized_shape, either may be undefined), as torch.nn.functional.layer_norm.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = {},
                  const Tensor& bias = {}, double eps = 1e-5);

// Batch norm over x [N, C, *] per channel, as torch.nn.functional.batch_norm. In training the
// batch's mean and biased variance normalise, and running_mean / running_var (when defined) are
// updated in place: r = (1 - momentum) r + momentum * stat, with the unbiased variance. In eval
// the running statistics normalise. weight and bias [C] may be undefined.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum = 0.1,
                  double eps = 1e-5);

// relu(batch_norm(x) + residual) (residual, of x's shape, may be undefined: relu(batch_norm(x))),
// with the sum and relu done in place on the normalised output: the values and gradients are
// those of the three ops, and the forward holds two tensors of x's size at once (x and the
// output) instead of three or four. ResNet's blocks end in it (cuDNN fuses the same).
Tensor batch_norm_relu(const Tensor& x, const Tensor& residual, const Tensor& running_mean,
                       const Tensor& running_var, const Tensor& weight, const Tensor& bias,
                       bool training, double momentum = 0.1, double eps = 1e-5);

}  // namespace spool
