// What the planner benchmarks share.
#pragma once
#include <cstdio>
#include <string>

#include "engine/error.h"
#include "engine/planner/planner.h"

namespace spool::bench {

// The recompute (ms) of `policy`'s plan at `budget`, or "infeasible".
inline std::string recompute(const ChainProfile& p, const std::string& policy, int64_t budget) {
  try {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", make_plan(p, policy, budget).recompute_ms);
    return buf;
  } catch (const Error&) {
    return "infeasible";
  }
}

}  // namespace spool::bench
