// softmax and log_softmax along one dim.
#pragma once
#include "engine/tensor.h"

namespace spool {

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

}  // namespace spool
