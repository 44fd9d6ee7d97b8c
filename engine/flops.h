// Counting the floating-point operations of a forward computation from the tape's cost records.
#pragma once
#include <functional>

#include "engine/tensor.h"

namespace spool {

// The floating-point operations of what `forward` records on this thread's tape: the sum of
// its nodes' Cost::flops (convolutions, matmuls and attention count 2 per multiply-add; ops
// without a cost of their own, one per output element). Ops that record nothing (under NoGrad,
// or on inputs that need no gradient) count nothing.
double forward_flops(const std::function<Tensor()>& forward);

}  // namespace spool
