// The memory planner: given a chain's profile, a policy and a byte budget, it returns a plan
// (which stages keep their activations, which are replayed from which kept boundary), the peak
// it will reach and the recomputation it costs. Budgets are for the whole step as the allocator
// counts it: parameters, optimizer state, the batch, gradients and activations.
//
// A static plan splits the stages before the loss stage into segments. A kept segment is one
// stage whose forward keeps its graph. A dropped segment [a, b) runs its forward without graph,
// holds only the boundaries it reads from outside (on a chain its input x_a alone), and in
// backward is replayed (with graph) from them and then backpropagated, as Chen et al.'s
// checkpointed segments are. The loss stage always keeps.
//
// Policies: none; every-K (dropped segments of K stages; "every-k" means K = 2); sqrt
// (segments of ceil(sqrt(n)) stages); greedy (Chen et al.'s budgeted greedy, the best threshold
// for the budget); dp (chains only: optimal over all segmentations, by dynamic programming over
// the memory the kept prefix holds; chains longer than 64 stages over a grid of boundaries); ilp
// (the same optimum as a mixed-integer program solved by GLPK, warm-started from the best
// heuristic, with a time limit; on graphs a Checkmate-style program over the step's moments);
// dtr (no plan ahead: the step keeps everything and, when the next primitive would pass the
// budget, evicts the record or loose boundary with the smallest cost / (bytes x staleness),
// rematerialising it when backward needs it). Every policy but dp plans graphs of stages.
// Each policy is one file of engine/planner/ registered in policy_registry() (policy.h).
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "engine/planner/chain.h"

namespace spool {

constexpr int64_t kUnlimited = std::numeric_limits<int64_t>::max();

struct Segment {
  int begin = 0, end = 0;  // stages [begin, end)
  bool keep = false;       // kept segments have one stage
  bool operator==(const Segment&) const = default;
};

struct Plan {
  std::vector<Segment> segments;  // cover stages [0, S - 1) in order
  bool dynamic = false;           // dtr: decided while the step runs
  int64_t budget = kUnlimited;
  int64_t predicted_peak = 0;
  std::string peak_at;  // the primitive the predicted peak is reached in ("backward of 'stem'")
  double recompute_ms = 0, recompute_flops = 0;  // of the replays, from the profile
  double plan_ms = 0;                            // time taken to plan
  double gap = 0;                // ilp: relative optimality gap reached (0: proven optimal)
  std::string note;              // what the planner wants the user to know (a solver time-out, say)
  std::string describe() const;  // "K K D3 K ..." (kept stage, dropped segment of 3)
};

struct PlanOptions {
  double time_limit_s = 10;  // ilp
  // dp: the boundaries a dropped segment may start or end on. 0: every stage for chains of up
  // to 64 plannable stages (exact while no front passes 512 states), 48 intervals evenly spaced
  // in activation bytes beyond (fast, may miss the optimum); N > 0: N intervals; -1: every stage
  // (slow on long chains).
  int dp_grid_points = 0;
};

// The registered policies for messages: "none, every-k (or every-K, K >= 1), sqrt, greedy, ...";
// with graphs_only, those that plan graphs of stages (PlanPolicy::plans_graphs).
std::string policy_names(bool graphs_only = false);
bool known_policy(const std::string& policy);

// Throws spool::Error naming the smallest feasible budget when the policy cannot meet `budget`,
// and for unknown policies.
Plan make_plan(const ChainProfile& profile, const std::string& policy, int64_t budget,
               const PlanOptions& options = {});
// The least budget the policy can meet on this profile.
int64_t smallest_budget(const ChainProfile& profile, const std::string& policy,
                        const PlanOptions& options = {});

// Runs the plan's forward and backward on the executor: a prediction when it has no chain, the
// step itself when it has one. Leaves the loss (x_S) held.
void run_plan(ChainExecutor& exec, const Plan& plan);

struct StepResult {
  double loss = 0;
  int64_t predicted_peak = 0;  // the executor's account of the step
  int64_t measured_peak = 0;   // the allocator's
  std::string mismatch;        // the first primitive after which the two differed, if any
};
// One forward and backward of the chain under the plan; parameter gradients accumulate (zero
// them before, as for the profile). The allocator's peak is reset at the start. With `timeline`,
// each primitive's point is appended to it (ChainExecutor::set_timeline).
StepResult run_step(Chain& chain, const ChainProfile& profile, const Plan& plan,
                    std::vector<TimelinePoint>* timeline = nullptr);

// The peak and recompute a static plan reaches (simulated on the profile).
Plan evaluate(const ChainProfile& profile, Plan plan);

namespace detail {
// The dp policy's closed-form peak of a static plan; tests compare it with the simulation.
int64_t formula_peak(const ChainProfile& profile, const std::vector<Segment>& segments);
// The ILP of the segment model (engine/planner/ilp_program.cpp).
struct IlpResult {
  bool solved = false;  // a feasible integer solution was found
  bool optimal = false;
  bool too_large = false;  // the program was too large to build (columns: its candidates)
  bool timed_out = false;  // the time limit ran out before an integer solution was found
  int64_t columns = 0;
  std::vector<Segment> segments;
  double gap = 0, seconds = 0;
};
IlpResult solve_ilp(const ChainProfile& profile, int64_t budget, const std::vector<double>& cost,
                    const std::vector<Segment>* warm_start, double time_limit_s);
// The ilp policy on graphs (stages that read several boundaries), or on chains when asked:
// the segmentation run_static runs, with the peak written moment by moment (Checkmate-style).
// min_peak: minimise the peak instead of the recompute (the budget is then ignored).
IlpResult solve_ilp_graph(const ChainProfile& profile, int64_t budget,
                          const std::vector<double>& cost, const std::vector<Segment>* warm_start,
                          double time_limit_s, bool min_peak = false);
// Per-segment quantities shared by dp and ilp (bytes above the base).
struct SegmentModel {
  explicit SegmentModel(const ChainProfile& p);
  int n = 0;                // plannable stages (all but the loss stage)
  std::vector<int64_t> gp;  // gp[j]: held after the backward of stages >= j (incl. grad of x_j)
  int64_t local_keep(int a) const;
  int64_t loss_local() const;
  const ChainProfile& p;
};
// Peaks (above the base and the kept prefix) of the dropped segments [a, b), b = a+1 .. last
// (n when last < 0).
std::vector<int64_t> dropped_locals(const SegmentModel& m, int a, int last = -1);
}  // namespace detail

}  // namespace spool
