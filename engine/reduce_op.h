// The arithmetic of a reduction, shared by the CPU and CUDA kernels: sums accumulate in double
// (floats) or int64 (integers), max / min in the element type with NaN winning, as in PyTorch.
#pragma once
#include <cstdint>
#include <limits>
#include <type_traits>

#include "engine/backend.h"
#include "engine/host_device.h"

namespace spool {

template <ReduceOp OP, class T>
using ReduceAcc =
    std::conditional_t<OP == ReduceOp::sum,
                       std::conditional_t<std::is_floating_point_v<T>, double, int64_t>, T>;

template <ReduceOp OP, class A>
struct Reducer {
  SPOOL_HD static A init() {
    if constexpr (OP == ReduceOp::sum) return A(0);
    // Floats start from -inf / +inf, not from the largest finite value: the max of a row that
    // is all -inf (a fully masked attention row) is -inf, not -FLT_MAX.
    else if constexpr (OP == ReduceOp::max)
      return std::numeric_limits<A>::has_infinity ? -std::numeric_limits<A>::infinity()
                                                  : std::numeric_limits<A>::lowest();
    else
      return std::numeric_limits<A>::has_infinity ? std::numeric_limits<A>::infinity()
                                                  : std::numeric_limits<A>::max();
  }
  SPOOL_HD static A combine(A acc, A v) {
    if constexpr (OP == ReduceOp::sum)
      return acc + v;
    else if constexpr (OP == ReduceOp::max)
      return (v > acc || v != v) ? v : acc;  // NaN wins
    else
      return (v < acc || v != v) ? v : acc;
  }
};

}  // namespace spool
