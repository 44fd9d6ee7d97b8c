// Matrix products with PyTorch's rules: 1-D operands are promoted and the added dim removed;
// batch dims broadcast. linear(x, w, b) = x @ w^T + b with w [out, in], as torch.nn.Linear.
#pragma once
#include "engine/tensor.h"

namespace spool {

Tensor matmul(const Tensor& a, const Tensor& b);
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = {});

}  // namespace spool
