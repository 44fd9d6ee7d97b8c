// The ilp policy: the optimal segmentation as a mixed-integer program solved by GLPK
// (ilp_program.cpp builds and solves the programs), warm-started from the best heuristic, with a
// time limit; on graphs a Checkmate-style program over the step's moments.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/planner/internal.h"

namespace spool::planning {

namespace {

// The plans ilp starts from: greedy's candidates and the fixed policies.
std::vector<std::vector<Segment>> heuristic_plans(const ChainProfile& p) {
  std::vector<std::vector<Segment>> out = greedy_candidates(p);
  for (const char* h : {"none", "every-2", "sqrt"}) out.push_back(fixed_for(p, h));
  return out;
}

// The least-peak segmentation of a graph, as a program (its peak column minimised); if the
// solver stops early, the better of its plan and the heuristics'.
// The least-peak segmentation of a graph, as a program (its peak column minimised); if the
// solver stops early, the better of its plan and the heuristics'.
Best least_peak_graph(const ChainProfile& p, const std::vector<double>& cost,
                      const PlanOptions& o) {
  Best h = best_of(p, heuristic_plans(p), kUnlimited, cost, true);
  const detail::IlpResult r =
      detail::solve_ilp_graph(p, kUnlimited, cost, &h.segs, o.time_limit_s, true);
  if (r.solved) {
    const int64_t pk = static_peak(p, r.segments);
    if (pk < h.peak) h = {true, r.segments, plan_cost(r.segments, cost), pk};
  }
  return h;
}

// A solved program's plan, and the note a time-out leaves (its gap).
// A solved program's plan, and the note a time-out leaves (its gap).
void take_solution(Plan& plan, const detail::IlpResult& r, double time_limit_s) {
  plan.segments = r.segments;
  plan.gap = r.gap;
  if (r.optimal) return;
  char buf[160];
  std::snprintf(buf, sizeof buf,
                "ilp: time limit of %g s reached; best plan found, optimality gap %.3g",
                time_limit_s, r.gap);
  plan.note = buf;
}

class IlpPolicy final : public PlanPolicy {
 public:
  using PlanPolicy::PlanPolicy;
  bool plans_graphs() const override { return true; }
  void plan(const ChainProfile& p, int64_t budget, const PlanOptions& o, Plan& out) const override {
    if (p.is_chain())
      plan_chain(p, budget, o, out);
    else
      plan_graph(p, budget, o, out);
  }
  int64_t smallest_budget(const ChainProfile& p, const PlanOptions& o) const override {
    // On a chain the optimum is dp's: the least budget is the same.
    if (p.is_chain()) return spool::smallest_budget(p, "dp", o);
    return least_peak_graph(p, stage_costs(p), o).peak;
  }

 private:
  void plan_graph(const ChainProfile& p, int64_t budget, const PlanOptions& o, Plan& plan) const {
    const std::vector<double> cost = stage_costs(p);
    const Best warm = best_of(p, heuristic_plans(p), budget, cost, false);
    const detail::IlpResult r =
        detail::solve_ilp_graph(p, budget, cost, warm.found ? &warm.segs : nullptr, o.time_limit_s);
    if (r.solved) {
      take_solution(plan, r, o.time_limit_s);
      return;
    }
    // No plan from the program: the best heuristic within the budget, or else the least-peak
    // segmentation (the one smallest_budget names) when it fits.
    Best use = warm;
    std::string what = "the best heuristic plan";
    if (!use.found) {
      const Best least = least_peak_graph(p, cost, o);
      if (least.peak > budget) infeasible(name(), budget, least.peak);
      use = least, what = "the least-peak plan";
    }
    plan.segments = use.segs;
    plan.gap = 1;
    plan.note = r.too_large   ? "ilp: the graph has more than 48 plannable stages; using " + what
                : r.timed_out ? "ilp: no integer solution within the time limit of " +
                                    std::to_string(o.time_limit_s) + " s; using " + what
                              : "ilp: the program found no plan within the budget; using " + what;
  }

  void plan_chain(const ChainProfile& p, int64_t budget, const PlanOptions& o, Plan& plan) const {
    const std::vector<double> cost = stage_costs(p);
    const int64_t avail = budget == kUnlimited ? kUnlimited : budget - p.base_bytes;
    // Warm start: the best heuristic plan that meets the budget.
    Best warm = best_of(p, heuristic_plans(p), budget, cost, false);
    // Past kExactStages dp's plan is a heuristic too (its grid); the better one starts the search.
    if (p.size() - 1 > kExactStages && avail >= 0) {
      const Best d = dp_solve(p, avail, cost, false, o.dp_grid_points);
      if (d.found && (!warm.found || d.cost < warm.cost)) warm = d;
    }
    const detail::IlpResult r =
        detail::solve_ilp(p, budget, cost, warm.found ? &warm.segs : nullptr, o.time_limit_s);
    if (r.too_large) {
      // The cheaper of dp's plan and the warm start.
      bool thinned = false;
      const Best b =
          avail < 0 ? Best{} : dp_solve(p, avail, cost, false, o.dp_grid_points, &thinned);
      const bool use_dp = b.found && (!warm.found || b.cost <= warm.cost);
      if (!use_dp && !warm.found) infeasible(name(), budget, spool::smallest_budget(p, "dp", o));
      plan.segments = use_dp ? b.segs : warm.segs;
      plan.gap = 1;
      plan.note = "ilp: the program (" + std::to_string(r.columns) +
                  " segment columns) is too large to build for this chain; using " +
                  (use_dp ? "dp's plan" : "the best heuristic plan");
    } else if (r.solved) {
      take_solution(plan, r, o.time_limit_s);
    } else if (warm.found) {
      plan.segments = warm.segs;
      plan.gap = 1;
      plan.note = r.timed_out
                      ? "ilp: no integer solution within the time limit of " +
                            std::to_string(o.time_limit_s) + " s; using the best heuristic plan"
                      : "ilp: the program found no plan within the budget; using the best "
                        "heuristic plan";
    } else {
      infeasible(name(), budget, smallest_budget(p, o));
    }
  }
};

}  // namespace

std::unique_ptr<PlanPolicy> make_ilp(const std::string& name) {
  return name == "ilp" ? std::make_unique<IlpPolicy>(name) : nullptr;
}

}  // namespace spool::planning
