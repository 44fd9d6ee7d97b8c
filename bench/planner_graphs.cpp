// The ilp policy on graphs of stages (stages that read earlier boundaries besides their own
// input): solve time, the optimality gap reached and the plan's recompute, against greedy and
// sqrt, on synthetic graph profiles (detail::synthetic_profile with up to two skip inputs a
// stage) of 8 to 48 plannable stages, at budgets of 1/2 and 1/3 of the activation bytes (or the
// smallest feasible budget when that is larger), with the default 10 s time limit.
//   build/bench_planner_graphs
#include <cstdio>
#include <string>

#include "bench/planner_common.h"
#include "engine/planner/planner.h"
#include "tests/support/synthetic_profile.h"

using namespace spool;
using spool::bench::recompute;

int main() {
  std::printf(
      "| stages | skip edges | budget | smallest ilp / greedy / sqrt (KB above base) | ilp ms | "
      "gap | ilp recompute ms | greedy | sqrt |\n|---|---|---|---|---|---|---|---|---|\n");
  for (int n : {9, 17, 25, 33, 49}) {
    for (uint64_t seed : {1, 2}) {
      const ChainProfile p = detail::synthetic_profile(seed, n, 2);
      int skips = 0;
      for (int i = 0; i < p.size(); ++i) skips += int(p.inputs(i).size()) - 1;
      const int64_t plain = make_plan(p, "none", kUnlimited).predicted_peak;
      const int64_t lo = smallest_budget(p, "ilp");
      auto kb = [&](int64_t b) { return double(b - p.base_bytes) / 1024; };
      char least[96];
      std::snprintf(least, sizeof least, "%.0f / %.0f / %.0f", kb(lo),
                    kb(smallest_budget(p, "greedy")), kb(smallest_budget(p, "sqrt")));
      for (int d : {2, 3}) {
        const int64_t budget = std::max(lo, p.base_bytes + (plain - p.base_bytes) / d);
        const Plan ilp = make_plan(p, "ilp", budget);
        std::printf("| %d | %d | 1/%d%s | %s | %.1f | %.3g | %.1f | %s | %s |\n", n - 1, skips, d,
                    budget == lo ? " (smallest)" : "", least, ilp.plan_ms, ilp.gap,
                    ilp.recompute_ms, recompute(p, "greedy", budget).c_str(),
                    recompute(p, "sqrt", budget).c_str());
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
