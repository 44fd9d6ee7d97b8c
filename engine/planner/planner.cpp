// make_plan and smallest_budget over the registry of policies (one file each in this folder),
// running a plan on the executor, and one planned training step.
#include "engine/planner/planner.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "engine/allocator.h"
#include "engine/clock.h"
#include "engine/error.h"
#include "engine/planner/internal.h"

namespace spool {

// Adding a policy: its file in this folder and one entry here (docs/contributing.md).
const std::vector<PolicyEntry>& policy_registry() {
  static const std::vector<PolicyEntry> registry = {
      {"none, every-k (or every-K, K >= 1), sqrt", planning::make_fixed},
      {"greedy", planning::make_greedy},
      {"dp", planning::make_dp},
      {"ilp", planning::make_ilp},
      {"dtr", planning::make_dtr},
  };
  return registry;
}

std::unique_ptr<PlanPolicy> find_policy(const std::string& name) {
  for (const PolicyEntry& e : policy_registry())
    if (auto p = e.make(name)) return p;
  fail("unknown checkpoint policy '", name, "' (known: ", policy_names(), ")");
}

std::string policy_names(bool graphs_only) {
  std::string out;
  for (const PolicyEntry& e : policy_registry()) {
    // A family's policies agree on graphs: its first name stands for them.
    const std::string first(e.names, std::strcspn(e.names, ", "));
    if (graphs_only && !e.make(first)->plans_graphs()) continue;
    if (!out.empty()) out += ", ";
    out += e.names;
  }
  return out;
}

bool known_policy(const std::string& policy) {
  for (const PolicyEntry& e : policy_registry())
    if (e.make(policy)) return true;
  return false;
}

namespace planning {

std::string bytes_str(int64_t b) {
  std::string s = std::to_string(b), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out + " bytes";
}

[[noreturn]] void infeasible(const std::string& policy, int64_t budget, int64_t smallest) {
  fail("memory budget ", bytes_str(budget), " is below the smallest feasible budget for policy '",
       policy, "' on this step: ", bytes_str(smallest));
}

// What replaying each stage costs: its measured forward time.
std::vector<double> stage_costs(const ChainProfile& p) {
  std::vector<double> c;
  for (const auto& s : p.stages) c.push_back(s.forward_ms);
  return c;
}

// Segments of `k` dropped stages over n stages (k >= n: one segment); k == 0: all kept.
std::vector<Segment> fixed_segments(int n, int k) {
  std::vector<Segment> segs;
  for (int a = 0; a < n;) {
    if (k == 0) {
      segs.push_back({a, a + 1, true});
      ++a;
    } else {
      const int b = std::min(n, a + k);
      segs.push_back({a, b, false});
      a = b;
    }
  }
  return segs;
}

bool better(double cost, int64_t peak, double best_cost, int64_t best_peak) {
  // Costs are compared with a relative tolerance, so that equal plans tie on peak.
  const double tol = 1e-9 * std::max(1.0, std::abs(best_cost));
  if (cost < best_cost - tol) return true;
  return cost <= best_cost + tol && peak < best_peak;
}

double plan_cost(const std::vector<Segment>& segs, const std::vector<double>& cost) {
  double c = 0;
  for (const auto& s : segs)
    if (!s.keep)
      for (int k = s.begin; k < s.end; ++k) c += cost[size_t(k)];
  return c;
}

// Policies that plan chains only refuse graphs, naming a stage that makes it one.
void check_chain(const ChainProfile& p, const std::string& policy) {
  for (int i = 0; i < p.size(); ++i) {
    const std::vector<int> in = p.inputs(i);
    if (in.size() == 1 && in[0] == i) continue;
    std::string reads;
    for (int j : in) reads += (reads.empty() ? "x_" : ", x_") + std::to_string(j);
    fail("checkpoint policy '", policy, "' plans chains of stages, and stage ", i, " ('",
         p.stages[size_t(i)].name, "') reads ", reads, ": use a policy that plans graphs (",
         policy_names(true), ")");
  }
}

// The cheapest of `cands` within the budget (min_peak: the one with the lowest peak).
Best best_of(const ChainProfile& p, const std::vector<std::vector<Segment>>& cands, int64_t budget,
             const std::vector<double>& cost, bool min_peak) {
  Best best;
  for (const auto& segs : cands) {
    const int64_t pk = static_peak(p, segs);
    if (pk > budget) continue;
    const double c = plan_cost(segs, cost);
    const bool take =
        !best.found || (min_peak ? pk < best.peak : better(c, pk, best.cost, best.peak));
    if (take) best = {true, segs, c, pk};
  }
  return best;
}

}  // namespace planning

std::string Plan::describe() const {
  if (dynamic) return "dynamic (dtr)";
  std::string out;
  for (const auto& s : segments) {
    if (!out.empty()) out += ' ';
    if (s.keep) {
      out += 'K';
    } else {
      out += 'D';
      out += std::to_string(s.end - s.begin);
    }
  }
  return out;
}

void run_plan(ChainExecutor& exec, const Plan& plan) {
  if (plan.dynamic) {
    // The shadow account decides, exactly as it did when the plan was simulated.
    planning::run_dtr(exec, exec.profile(), plan.budget, true);
    return;
  }
  planning::run_static(exec, plan.segments);
}

int64_t smallest_budget(const ChainProfile& p, const std::string& policy, const PlanOptions& o) {
  const std::unique_ptr<PlanPolicy> pol = find_policy(policy);
  if (!p.is_chain() && !pol->plans_graphs()) planning::check_chain(p, policy);
  return pol->smallest_budget(p, o);
}

Plan make_plan(const ChainProfile& p, const std::string& policy, int64_t budget,
               const PlanOptions& o) {
  const std::unique_ptr<PlanPolicy> pol = find_policy(policy);
  SPOOL_CHECK(budget > 0, "memory budget must be positive, got ", budget);
  SPOOL_CHECK(p.size() >= 1, "planner: the profile has no stages");
  const double t0 = now_ms();
  Plan plan;
  plan.budget = budget;
  if (!p.is_chain() && !pol->plans_graphs()) planning::check_chain(p, policy);
  pol->plan(p, budget, o, plan);
  if (!plan.dynamic) {
    plan = evaluate(p, plan);
    SPOOL_CHECK(plan.predicted_peak <= budget, "planner: internal error: policy '", policy,
                "' planned a peak of ", plan.predicted_peak, " bytes over the budget of ", budget);
  }
  plan.plan_ms = now_ms() - t0;
  return plan;
}

StepResult run_step(Chain& chain, const ChainProfile& profile, const Plan& plan,
                    std::vector<TimelinePoint>* timeline) {
  const Device device = chain.input.device();  // the allocator that counts the step
  reset_peak(device);
  StepResult r;
  int64_t start_live = memory_stats(device).live_bytes;
  {
    ChainExecutor e(profile, &chain);
    const size_t first = timeline ? timeline->size() : 0;
    e.set_timeline(timeline);
    run_plan(e, plan);
    r.loss = e.loss().item();
    e.unhold(e.size());
    r.predicted_peak = e.peak();
    r.mismatch = e.mismatch();
    // With a timeline the allocator's peak was reset before each primitive: the step's is the
    // largest of theirs.
    if (timeline)
      for (size_t k = first; k < timeline->size(); ++k)
        start_live = std::max(start_live, (*timeline)[k].measured_peak);
  }
  r.measured_peak = timeline ? start_live : memory_stats(device).peak_bytes;
  return r;
}

}  // namespace spool
