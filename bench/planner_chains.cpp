// Planning time and plan quality on long chains (issue 5's "dp plans a 1000-node chain in under
// 1 ms"). Synthetic chain profiles (detail::synthetic_profile: random stage sizes and times, and a
// uniform chain, Chen et al.'s 1000-layer case) at budgets of 1/2 and 1/3 of the activation
// bytes; for each, the median planning time of dp (its default: every stage up to 64 plannable
// stages, 48 grid intervals beyond) and the recompute its plan costs, against dp over every stage
// (fronts trimmed at 512 states, so exact only where they stay smaller; run up to 200 stages,
// where it still finishes in seconds) and sqrt / greedy.
//   build/bench_planner_chains
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/planner_common.h"
#include "engine/clock.h"
#include "engine/error.h"
#include "engine/planner/planner.h"
#include "tests/support/synthetic_profile.h"

using namespace spool;
using spool::bench::recompute;

namespace {

// Every stage but the loss the same; each stage's input gradient is its input's size.
ChainProfile uniform(int n) {
  ChainProfile p = detail::synthetic_profile(1, n);
  const StageCost s = p.stages[1];
  auto with_grad = [](StageCost c, int64_t grad) {
    c.backward_delta += grad - c.grad_bytes;
    c.backward_peak += std::max<int64_t>(0, grad - c.grad_bytes);
    c.grad_bytes = grad;
    return c;
  };
  for (int i = 0; i < n - 1; ++i) p.stages[size_t(i)] = with_grad(s, i == 0 ? 0 : s.out_bytes);
  p.stages[size_t(n) - 1] = with_grad(p.stages[size_t(n) - 1], s.out_bytes);
  return p;
}

// Median planning time over `reps` runs, and the plan.
double timed(const ChainProfile& p, const std::string& policy, int64_t budget, const PlanOptions& o,
             int reps, Plan* out) {
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) {
    const double t0 = now_ms();
    *out = make_plan(p, policy, budget, o);
    ms.push_back(now_ms() - t0);
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main() {
  std::printf(
      "| chain | stages | budget | dp ms | dp recompute ms | every-stage dp ms | every-stage "
      "recompute ms | "
      "sqrt recompute ms | greedy recompute ms |\n|---|---|---|---|---|---|---|---|---|\n");
  for (const char* kind : {"random", "uniform"}) {
    for (int n : {65, 201, 501, 1001}) {
      const ChainProfile p =
          std::string(kind) == "random" ? detail::synthetic_profile(7, n) : uniform(n);
      const int64_t plain = make_plan(p, "none", kUnlimited).predicted_peak;
      for (int d : {2, 3}) {
        const int64_t budget = p.base_bytes + (plain - p.base_bytes) / d;
        Plan dp, fine;
        std::string dp_ms = "-", dp_re = "infeasible", ex_ms = "-", ex_re = "-";
        char buf[64];
        try {
          std::snprintf(buf, sizeof buf, "%.3f", timed(p, "dp", budget, {}, 21, &dp));
          dp_ms = buf;
          std::snprintf(buf, sizeof buf, "%.1f", dp.recompute_ms);
          dp_re = buf;
        } catch (const Error&) {
        }
        if (n <= 201) {
          PlanOptions o;
          o.dp_grid_points = -1;
          try {
            std::snprintf(buf, sizeof buf, "%.1f", timed(p, "dp", budget, o, 1, &fine));
            ex_ms = buf;
            std::snprintf(buf, sizeof buf, "%.1f", fine.recompute_ms);
            ex_re = buf;
          } catch (const Error&) {
            ex_re = "infeasible";
          }
        }
        std::printf("| %s | %d | 1/%d | %s | %s | %s | %s | %s | %s |\n", kind, n - 1, d,
                    dp_ms.c_str(), dp_re.c_str(), ex_ms.c_str(), ex_re.c_str(),
                    recompute(p, "sqrt", budget).c_str(),
                    n <= 201 ? recompute(p, "greedy", budget).c_str() : "-");
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
