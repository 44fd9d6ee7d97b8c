// Random chain and graph profiles whose numbers are consistent with each other, for the
// planner's tests and benchmarks (bench/planner_*.cpp).
#pragma once
#include <cstdint>

#include "engine/planner/chain.h"

namespace spool::detail {

// A random chain profile whose numbers are consistent with each other (what a stage keeps,
// frees and makes), n stages, the last the loss. With skips > 0 each stage also reads up to that
// many random earlier boundaries (a graph).
ChainProfile synthetic_profile(uint64_t seed, int n, int skips = 0);

}  // namespace spool::detail
