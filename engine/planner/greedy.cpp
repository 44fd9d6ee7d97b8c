// The greedy policy: Chen et al.'s budgeted greedy, the best threshold for the budget. It plans
// graphs too.
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/planner/internal.h"

namespace spool::planning {

// Chen et al.'s greedy: walk the stages adding each one's memory; past the threshold, the
// segment ends there. Every threshold that changes the result is tried, and "none" as well.
constexpr size_t kGreedyThresholds = 4096;
std::vector<std::vector<Segment>> greedy_candidates(const ChainProfile& p) {
  const int n = p.size() - 1;
  std::vector<int64_t> size(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i)
    size[size_t(i)] = p.stages[size_t(i)].internal_bytes + p.boundary_bytes(i + 1);
  std::vector<int64_t> thresholds;
  for (int a = 0; a < n; ++a) {
    int64_t acc = 0;
    for (int b = a; b < n; ++b) thresholds.push_back(acc += size[size_t(b)]);
  }
  std::sort(thresholds.begin(), thresholds.end());
  thresholds.erase(std::unique(thresholds.begin(), thresholds.end()), thresholds.end());
  // Long chains have O(n^2) distinct thresholds; beyond kGreedyThresholds (more than any chain
  // of up to 64 stages has) an evenly spaced subset of them is tried.
  if (thresholds.size() > kGreedyThresholds) {
    std::vector<int64_t> some;
    for (size_t k = 0; k < kGreedyThresholds; ++k)
      some.push_back(thresholds[k * thresholds.size() / kGreedyThresholds]);
    some.push_back(thresholds.back());
    thresholds.swap(some);
  }
  std::vector<std::vector<Segment>> out{fixed_segments(n, 0)};
  for (int64_t t : thresholds) {
    std::vector<Segment> segs;
    int start = 0;
    int64_t acc = 0;
    for (int i = 0; i < n; ++i) {
      acc += size[size_t(i)];
      if (acc > t) {
        segs.push_back({start, i + 1, false});
        start = i + 1;
        acc = 0;
      }
    }
    if (start < n) segs.push_back({start, n, false});
    if (segs != out.back()) out.push_back(segs);
  }
  return out;
}

Best greedy_solve(const ChainProfile& p, int64_t budget, const std::vector<double>& cost,
                  bool min_peak) {
  return best_of(p, greedy_candidates(p), budget, cost, min_peak);
}

namespace {

class GreedyPolicy final : public PlanPolicy {
 public:
  using PlanPolicy::PlanPolicy;
  bool plans_graphs() const override { return true; }
  void plan(const ChainProfile& p, int64_t budget, const PlanOptions& o, Plan& out) const override {
    const Best b = greedy_solve(p, budget, stage_costs(p), false);
    if (!b.found) infeasible(name(), budget, smallest_budget(p, o));
    out.segments = b.segs;
  }
  int64_t smallest_budget(const ChainProfile& p, const PlanOptions&) const override {
    return greedy_solve(p, kUnlimited, stage_costs(p), true).peak;
  }
};

}  // namespace

std::unique_ptr<PlanPolicy> make_greedy(const std::string& name) {
  return name == "greedy" ? std::make_unique<GreedyPolicy>(name) : nullptr;
}

}  // namespace spool::planning
