// What the planner's policies share (engine/planner/*.cpp); not part of the API.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/planner/chain.h"
#include "engine/planner/planner.h"
#include "engine/planner/policy.h"

namespace spool::planning {

struct Best {
  bool found = false;
  std::vector<Segment> segs;
  double cost = 0;
  int64_t peak = 0;  // above the base
};

// planner.cpp
std::string bytes_str(int64_t b);
[[noreturn]] void infeasible(const std::string& policy, int64_t budget, int64_t smallest);
// What replaying each stage costs: its measured forward time.
std::vector<double> stage_costs(const ChainProfile& p);
// Segments of `k` dropped stages over n stages (k >= n: one segment); k == 0: all kept.
std::vector<Segment> fixed_segments(int n, int k);
bool better(double cost, int64_t peak, double best_cost, int64_t best_peak);
double plan_cost(const std::vector<Segment>& segs, const std::vector<double>& cost);
// Policies that plan chains only refuse graphs, naming a stage that makes it one.
void check_chain(const ChainProfile& p, const std::string& policy);
// The cheapest of `cands` within the budget (min_peak: the one with the lowest peak).
Best best_of(const ChainProfile& p, const std::vector<std::vector<Segment>>& cands, int64_t budget,
             const std::vector<double>& cost, bool min_peak);

// peak.cpp: a static plan's program on the executor, and its peak (the closed form on chains,
// the program simulated on graphs).
void run_static(ChainExecutor& e, const std::vector<Segment>& segs);
int64_t static_peak(const ChainProfile& p, const std::vector<Segment>& segs);

// fixed.cpp: none, every-K, sqrt.
int every_k(const std::string& policy);
std::vector<Segment> fixed_for(const ChainProfile& p, const std::string& policy);
std::unique_ptr<PlanPolicy> make_fixed(const std::string& name);

// greedy.cpp
std::vector<std::vector<Segment>> greedy_candidates(const ChainProfile& p);
Best greedy_solve(const ChainProfile& p, int64_t budget, const std::vector<double>& cost,
                  bool min_peak);
std::unique_ptr<PlanPolicy> make_greedy(const std::string& name);

// dp.cpp
constexpr int kExactStages = 64;  // longer chains are planned over a grid of boundaries
std::vector<int> dp_grid(const ChainProfile& p, int points);
Best dp_solve(const ChainProfile& p, int64_t avail, const std::vector<double>& cost, bool min_peak,
              int grid_points, bool* thinned_out = nullptr);
std::unique_ptr<PlanPolicy> make_dp(const std::string& name);

// ilp.cpp (its programs: ilp_program.cpp)
std::unique_ptr<PlanPolicy> make_ilp(const std::string& name);

// dtr.cpp
void run_dtr(ChainExecutor& e, const ChainProfile& p, int64_t budget, bool throw_plain);
bool dtr_feasible(const ChainProfile& p, int64_t budget, Plan* out);
std::unique_ptr<PlanPolicy> make_dtr(const std::string& name);

}  // namespace spool::planning
