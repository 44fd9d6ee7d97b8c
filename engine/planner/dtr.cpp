// The dtr policy: no plan ahead. The step keeps everything and, when the next primitive would
// pass the budget, evicts the record or loose boundary with the smallest cost / (bytes x
// staleness), rematerialising it when backward needs it. It plans graphs too.
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/planner/internal.h"

namespace spool::planning {

struct DtrFailed {};

// DTR at stage granularity, on chains and graphs: everything keeps; before a primitive that
// would pass the budget, something is evicted in order of cost / (bytes x staleness): a stage's
// record (its boundaries are then held until its replay), or a loose boundary (one no record
// holds), whose cost is the forward time of its producer and of every producer behind it that is
// not alive. A boundary evicted that a forward needs again is rematerialised recursively over
// its producer's inputs, as DTR does. Whatever the next primitive reads is pinned while room is
// made for it. (A separate walk for chains, replaying from the nearest live boundary, made the
// same decisions in every documented study row checked and in 358 of 360 synthetic cases; it is
// gone: docs/memory.md.)
void run_dtr(ChainExecutor& e, const ChainProfile& p, int64_t budget, bool throw_plain) {
  const int s = e.size();
  std::vector<std::vector<int>> inputs(static_cast<size_t>(s)), readers(size_t(s) + 1);
  for (int i = 0; i < s; ++i) {
    inputs[size_t(i)] = p.inputs(i);
    for (int j : inputs[size_t(i)]) readers[size_t(j)].push_back(i);
  }
  std::vector<int64_t> rec_use(size_t(s), 0), use(size_t(s) + 1, 0);
  std::vector<int> pins(size_t(s) + 1, 0);
  // An evicted record's boundaries stay held until its replay: kept_for[j] counts the evicted
  // records holding x_j (released at their replay, or when x_j itself is evicted).
  std::vector<int> kept_for(size_t(s) + 1, 0);
  std::vector<std::vector<int>> evict_holds(static_cast<size_t>(s));
  int64_t clock = 0;
  int limit = 0;  // records of stages below it may be evicted
  auto loose = [&](int j) {
    if (j == 0 || j >= s || !e.alive(j) || e.recorded(j - 1)) return false;
    for (int c : readers[size_t(j)])
      if (e.recorded(c)) return false;
    return true;
  };
  auto replay_ms = [&](int j) {
    double ms = 0;
    std::vector<char> seen(size_t(s) + 1, 0);
    std::vector<int> todo{j};
    while (!todo.empty()) {
      const int k = todo.back();
      todo.pop_back();
      if (seen[size_t(k)]) continue;
      seen[size_t(k)] = 1;
      ms += p.stages[size_t(k) - 1].forward_ms;
      for (int i : inputs[size_t(k) - 1])
        if (i > 0 && !e.alive(i)) todo.push_back(i);
    }
    return std::max(ms, 1e-6);
  };
  auto make_room = [&](int64_t need) {
    while (e.live() + need > budget) {
      int victim = -1;
      bool boundary = false;
      double best = 0;
      for (int k = 0; k < limit; ++k) {
        const int64_t bytes = p.stages[size_t(k)].internal_bytes;
        if (!e.recorded(k) || bytes <= 0) continue;
        const double h = std::max(p.stages[size_t(k)].forward_ms, 1e-6) /
                         (double(bytes) * double(clock - rec_use[size_t(k)] + 1));
        if (victim < 0 || h < best) victim = k, best = h, boundary = false;
      }
      for (int j = 1; j < s; ++j) {
        const int64_t bytes = p.boundary_bytes(j);
        if (pins[size_t(j)] || !loose(j) || bytes <= 0) continue;
        const double h = replay_ms(j) / (double(bytes) * double(clock - use[size_t(j)] + 1));
        if (victim < 0 || h < best) victim = j, best = h, boundary = true;
      }
      if (victim < 0) {
        if (throw_plain) fail("dtr: nothing left to evict");
        throw DtrFailed{};
      }
      if (boundary) {
        e.unhold(victim);
        kept_for[size_t(victim)] = 0;
      } else {
        std::vector<int>& held = evict_holds[size_t(victim)];
        held = inputs[size_t(victim)];
        held.push_back(victim + 1);
        for (int j : held) e.hold(j), ++kept_for[size_t(j)];
        e.evict(victim);
      }
    }
  };
  // Holds x_j, recomputing it (without graph) from its producer's inputs when it is not alive;
  // returns whether it was held before.
  std::function<bool(int)> materialise = [&](int j) {
    if (e.held(j)) return true;
    if (!e.alive(j)) {
      const int k = j - 1;
      std::vector<int> got;
      for (int i : inputs[size_t(k)]) {
        ++pins[size_t(i)];
        if (!materialise(i)) got.push_back(i);
      }
      make_room(p.stages[size_t(k)].nograd_peak);
      e.forward(k, false);
      use[size_t(j)] = ++clock;
      for (int i : inputs[size_t(k)]) --pins[size_t(i)];
      for (int i : got)
        if (kept_for[size_t(i)] == 0) e.unhold(i);
      return false;
    }
    e.hold(j);
    return false;
  };
  // Stage i with graph from its inputs, materialised and pinned.
  auto run_forward = [&](int i) {
    for (int j : inputs[size_t(i)]) {
      ++pins[size_t(j)];
      materialise(j);
      use[size_t(j)] = clock + 1;
    }
    make_room(p.stages[size_t(i)].keep_peak);
    e.forward(i, true);
    rec_use[size_t(i)] = use[size_t(i) + 1] = ++clock;
    for (int j : inputs[size_t(i)]) --pins[size_t(j)];
    for (int j : inputs[size_t(i)])
      if (kept_for[size_t(j)] == 0) e.unhold(j);  // the record holds them
  };
  for (int i = 0; i < s; ++i) {
    limit = i;
    run_forward(i);
  }
  limit = s - 1;
  make_room(p.seed_bytes);
  e.seed();
  for (int i = s - 1; i >= 0; --i) {
    limit = i;
    if (!e.recorded(i)) {
      for (int j : evict_holds[size_t(i)])  // its replay takes over these holds
        kept_for[size_t(j)] = std::max(0, kept_for[size_t(j)] - 1);
      evict_holds[size_t(i)].clear();
      e.unhold(i + 1);  // every reader of x_{i+1} is done: the replay makes it again
      kept_for[size_t(i) + 1] = 0;
      run_forward(i);
    }
    make_room(p.stages[size_t(i)].backward_peak);
    e.backward(i);
    rec_use[size_t(i)] = ++clock;
    if (i + 1 < s) e.unhold(i + 1), kept_for[size_t(i) + 1] = 0;
  }
}

// Simulates DTR at `budget`; false when it cannot keep to it.
bool dtr_feasible(const ChainProfile& p, int64_t budget, Plan* out) {
  ChainExecutor e(p, nullptr);
  try {
    run_dtr(e, p, budget, false);
  } catch (const DtrFailed&) {
    return false;
  }
  if (e.peak() > budget) return false;
  if (out) {
    out->predicted_peak = e.peak();
    out->peak_at = e.peak_at();
    out->recompute_ms = e.recompute_ms();
    out->recompute_flops = e.recompute_flops();
  }
  return true;
}

namespace {

class DtrPolicy final : public PlanPolicy {
 public:
  using PlanPolicy::PlanPolicy;
  bool plans_graphs() const override { return true; }
  void plan(const ChainProfile& p, int64_t budget, const PlanOptions& o, Plan& out) const override {
    out.dynamic = true;
    if (!dtr_feasible(p, budget, &out)) infeasible(name(), budget, smallest_budget(p, o));
  }
  // The least budget at which it completes, by bisection.
  int64_t smallest_budget(const ChainProfile& p, const PlanOptions&) const override {
    int64_t lo = p.base_bytes, hi = static_peak(p, fixed_for(p, "none"));
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (dtr_feasible(p, mid, nullptr))
        hi = mid;
      else
        lo = mid + 1;
    }
    return hi;
  }
};

}  // namespace

std::unique_ptr<PlanPolicy> make_dtr(const std::string& name) {
  return name == "dtr" ? std::make_unique<DtrPolicy>(name) : nullptr;
}

}  // namespace spool::planning
