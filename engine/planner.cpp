#include "engine/planner.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <random>

#include "engine/allocator.h"
#include "engine/clock.h"
#include "engine/error.h"

namespace spool {

const char* const kPolicies = "none, every-k (or every-K, K >= 1), sqrt, greedy, dp, ilp, dtr";

namespace {

int every_k(const std::string& policy) {
  if (policy == "every-k") return 2;
  if (policy.rfind("every-", 0) != 0) return 0;
  const std::string k = policy.substr(6);
  if (k.empty() || k.size() > 6 || k.find_first_not_of("0123456789") != std::string::npos) return 0;
  return std::stoi(k);
}

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

// A static plan's program. Forward: kept stages record, dropped ones run without graph; the
// executor holds a boundary until its last reader's forward, and longer when a dropped segment
// reads it from outside (its checkpoint) until that segment's replay. Backward, from the last
// stage down: a kept stage backpropagates; a dropped segment [a, b) is replayed with graph from
// its checkpoints when the backward reaches b - 1, its holds are handed to the records, and its
// stages backpropagate. On a chain the checkpoint of [a, b) is x_a alone.
void run_static(ChainExecutor& e, const std::vector<Segment>& segs) {
  const ChainProfile& p = e.profile();
  const int s = e.size();
  // need[j]: the last dropped segment (in backward order) that reads x_j from outside; -1: none.
  std::vector<int> need(size_t(s) + 1, -1), last_read(size_t(s) + 1, -1);
  for (int i = 0; i < s; ++i)
    for (int j : p.inputs(i)) last_read[size_t(j)] = i;
  for (int q = 0; q < int(segs.size()); ++q) {
    if (segs[size_t(q)].keep) continue;
    for (int k = segs[size_t(q)].begin; k < segs[size_t(q)].end; ++k)
      for (int j : p.inputs(k))
        if (j <= segs[size_t(q)].begin && need[size_t(j)] < 0) need[size_t(j)] = q;
  }
  auto forward = [&](int i, bool keep) {
    e.forward(i, keep);
    for (int j : p.inputs(i))
      if (last_read[size_t(j)] == i && need[size_t(j)] < 0) e.unhold(j);
  };
  for (const auto& seg : segs)
    for (int k = seg.begin; k < seg.end; ++k) forward(k, seg.keep);
  forward(s - 1, true);
  e.seed();
  e.backward(s - 1);
  for (int q = int(segs.size()) - 1; q >= 0; --q) {
    const Segment& seg = segs[size_t(q)];
    if (seg.keep) {
      e.backward(seg.begin);
      continue;
    }
    for (int k = seg.begin; k < seg.end; ++k) e.forward(k, true);
    for (int j = seg.begin + 1; j <= seg.end; ++j) e.unhold(j);  // the records keep them
    for (int j = 0; j <= seg.begin; ++j)
      if (need[size_t(j)] == q) e.unhold(j);
    for (int k = seg.end - 1; k >= seg.begin; --k) e.backward(k);
  }
}

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

}  // namespace

bool known_policy(const std::string& policy) {
  return policy == "none" || policy == "sqrt" || policy == "greedy" || policy == "dp" ||
         policy == "ilp" || policy == "dtr" || every_k(policy) > 0;
}

std::string Plan::describe() const {
  if (dynamic) return "dynamic (dtr)";
  std::string out;
  for (const auto& s : segments) {
    if (!out.empty()) out += ' ';
    out += s.keep ? "K" : "D" + std::to_string(s.end - s.begin);
  }
  return out;
}

void run_plan(ChainExecutor& exec, const Plan& plan) {
  if (plan.dynamic) {
    // The shadow account decides, exactly as it did when the plan was simulated.
    run_dtr(exec, exec.profile(), plan.budget, true);
    return;
  }
  run_static(exec, plan.segments);
}

namespace detail {

SegmentModel::SegmentModel(const ChainProfile& prof) : n(prof.size() - 1), p(prof) {
  SPOOL_CHECK(prof.size() >= 1, "planner: the profile has no stages");
  gp.assign(size_t(n) + 1, 0);
  const StageCost& loss = p.stages.back();
  gp[size_t(n)] = p.boundary_bytes(n + 1) + loss.internal_bytes + loss.backward_delta;
  for (int a = n - 1; a >= 0; --a) {
    const StageCost& s = p.stages[size_t(a)];
    gp[size_t(a)] =
        gp[size_t(a) + 1] + s.internal_bytes + s.backward_delta - p.boundary_grad_bytes(a + 1);
  }
}

int64_t SegmentModel::local_keep(int a) const {
  const StageCost& s = p.stages[size_t(a)];
  return std::max(s.keep_peak,
                  p.boundary_bytes(a + 1) + s.internal_bytes + gp[size_t(a) + 1] + s.backward_peak);
}

int64_t SegmentModel::loss_local() const {
  const StageCost& s = p.stages.back();
  const int64_t held = p.boundary_bytes(n + 1) + s.internal_bytes + p.seed_bytes;
  return std::max({s.keep_peak, held, held + s.backward_peak});
}

std::vector<int64_t> dropped_locals(const SegmentModel& m, int a, int last) {
  const ChainProfile& p = m.p;
  std::vector<int64_t> out;
  int64_t f2 = 0, rep = 0, bw = 0, sum = 0;
  bool first = true;
  const int end = last < 0 ? m.n : std::min(last, m.n);
  for (int b = a + 1; b <= end; ++b) {
    const int k = b - 1;
    const StageCost& s = p.stages[size_t(k)];
    const int64_t fwd = (k > a ? p.boundary_bytes(k) : 0) + s.nograd_peak;
    const int64_t r = sum + s.keep_peak;
    sum += s.internal_bytes + p.boundary_bytes(k + 1);
    const int64_t w = m.gp[size_t(k) + 1] + sum + s.backward_peak;
    f2 = first ? fwd : std::max(f2, fwd);
    rep = first ? r : std::max(rep, r);
    bw = first ? w : std::max(bw, w);
    first = false;
    out.push_back(std::max({f2, m.gp[size_t(b)] + rep, bw}));
  }
  return out;
}

int64_t formula_peak(const ChainProfile& p, const std::vector<Segment>& segs) {
  const SegmentModel m(p);
  int64_t h = 0, pk = 0;
  for (const auto& s : segs) {
    if (s.keep) {
      pk = std::max(pk, h + m.local_keep(s.begin));
      h += p.boundary_bytes(s.begin + 1) + p.stages[size_t(s.begin)].internal_bytes;
    } else {
      pk = std::max(pk, h + dropped_locals(m, s.begin, s.end).back());
      h += p.boundary_bytes(s.end);
    }
  }
  pk = std::max(pk, h + m.loss_local());
  return p.base_bytes + pk;
}

ChainProfile synthetic_profile(uint64_t seed, int n, int skips) {
  std::mt19937_64 r(seed);
  auto u = [&](int64_t m) { return int64_t(r() % uint64_t(m)); };
  ChainProfile p;
  p.base_bytes = 1000000;
  p.seed_bytes = 4;
  for (int i = 0; i < n; ++i) {
    StageCost s;
    s.out_bytes = i == n - 1 ? 4 : 1000 + u(50000);
    s.internal_bytes = u(200000);
    s.keep_peak = s.out_bytes + s.internal_bytes + u(30000);
    s.nograd_peak = s.out_bytes + u(30000);
    s.forward_ms = 0.1 + double(u(1000)) / 100;
    s.flops = double(u(1 << 20));
    p.stages.push_back(s);
  }
  // Skip inputs: stage i also reads up to `skips` earlier boundaries.
  for (int i = 1; i < n && skips > 0; ++i) {
    std::vector<int> in{i};
    for (int k = 0; k < skips; ++k)
      if (u(2)) in.push_back(int(u(i)));
    std::sort(in.begin(), in.end());
    in.erase(std::unique(in.begin(), in.end()), in.end());
    if (in.size() > 1) p.stages[size_t(i)].inputs = in;
  }
  // The backward of a boundary's last reader makes its gradient; the others add into it.
  std::vector<int> last_reader(size_t(n) + 1, -1);
  for (int i = 0; i < n; ++i)
    for (int j : p.inputs(i)) last_reader[size_t(j)] = i;
  for (int i = 0; i < n; ++i) {
    StageCost& s = p.stages[size_t(i)];
    s.grad_bytes = i == 0 ? 0 : p.stages[size_t(i) - 1].out_bytes;
  }
  for (int i = 0; i < n; ++i) {
    StageCost& s = p.stages[size_t(i)];
    int64_t made = 0;
    for (int j : p.inputs(i))
      if (j > 0 && last_reader[size_t(j)] == i) made += p.stages[size_t(j)].grad_bytes;
    const int64_t params = u(20000), residual = u(2) ? 0 : u(s.internal_bytes + 1);
    // The backward frees the internals but a residual before its peak, the residual after it.
    const int64_t before_release = made + params - (s.internal_bytes - residual);
    s.backward_delta = before_release - residual;
    s.backward_peak = std::max<int64_t>(0, before_release) + u(40000);
  }
  return p;
}

}  // namespace detail

Plan evaluate(const ChainProfile& p, Plan plan) {
  ChainExecutor e(p, nullptr);
  run_plan(e, plan);
  plan.predicted_peak = e.peak();
  plan.peak_at = e.peak_at();
  plan.recompute_ms = e.recompute_ms();
  plan.recompute_flops = e.recompute_flops();
  return plan;
}

namespace {

struct Best {
  bool found = false;
  std::vector<Segment> segs;
  double cost = 0;
  int64_t peak = 0;  // above the base
};

// Chains up to kExactStages stages are searched over every segmentation (exactly while no front
// passes kFrontLimit states; no standard model's plan notes a trim). Longer ones are searched
// over the segmentations whose dropped segments start and end on a grid of at most kGridPoints
// boundaries (spaced evenly in activation bytes, as Chen's greedy spaces its segments), with
// runs of kept stages between neighbouring grid points and fronts trimmed to kCoarseFront
// states: planning then costs O(kGridPoints^2 x front) instead of O(n^2 x front), and the plan
// may be worse than the unrestricted optimum (docs/memory.md measures by how much).
constexpr int kExactStages = 64;
constexpr int kGridPoints = 48;
// Fronts larger than this (never on the standard models) are trimmed to it (the best state in
// each slice of held bytes); the plan then says it may not be optimal. Long chains trim every
// front to kCoarseFront.
constexpr size_t kFrontLimit = 512;
constexpr size_t kCoarseFront = 64;

// Boundaries the search may start or end a dropped segment on: every stage for short chains.
// `points`: PlanOptions::dp_grid_points.
std::vector<int> dp_grid(const ChainProfile& p, int points) {
  const int n = p.size() - 1;
  std::vector<int> g;
  if (points == 0) points = n <= kExactStages ? n : kGridPoints;
  if (points < 0 || points >= n) {
    for (int a = 0; a <= n; ++a) g.push_back(a);
    return g;
  }
  std::vector<double> cum(size_t(n) + 1, 0);
  for (int i = 0; i < n; ++i)
    cum[size_t(i) + 1] =
        cum[size_t(i)] + double(p.stages[size_t(i)].internal_bytes + p.boundary_bytes(i + 1)) + 1;
  g.push_back(0);
  for (int t = 1; t < points; ++t) {
    const double target = cum[size_t(n)] * t / points;
    int a = int(std::lower_bound(cum.begin(), cum.end(), target) - cum.begin());
    a = std::clamp(a, g.back() + 1, n - (points - t));
    g.push_back(a);
  }
  g.push_back(n);
  return g;
}

// Optimal segmentation under `avail` bytes above the base (restricted to the grid for long
// chains); with min_peak, the least peak.
Best dp_solve(const ChainProfile& p, int64_t avail, const std::vector<double>& cost, bool min_peak,
              int grid_points, bool* thinned_out = nullptr) {
  bool dummy = false;
  bool* thinned = thinned_out ? thinned_out : &dummy;
  const detail::SegmentModel m(p);
  const int n = m.n;
  const std::vector<int> grid = dp_grid(p, grid_points);
  const int g = int(grid.size()) - 1;  // grid intervals
  struct St {
    int64_t h, pk;
    double cost;
    int prev_pos, prev_idx;  // grid index and state it came from
    bool keep;               // a run of kept stages from the previous grid point
  };
  // A run of kept stages over grid interval [grid[i], grid[i+1]): its peak above the held
  // prefix at its start, and what it adds to that prefix.
  std::vector<int64_t> run_peak(size_t(g), 0), run_held(size_t(g), 0);
  for (int i = 0; i < g; ++i) {
    int64_t pre = 0, pk = 0;
    for (int k = grid[size_t(i)]; k < grid[size_t(i) + 1]; ++k) {
      pk = std::max(pk, pre + m.local_keep(k));
      pre += p.boundary_bytes(k + 1) + p.stages[size_t(k)].internal_bytes;
    }
    run_peak[size_t(i)] = pk;
    run_held[size_t(i)] = pre;
  }
  std::vector<std::vector<St>> at(size_t(g) + 1);
  at[0].push_back({0, 0, 0, -1, -1, false});
  // Keeps, of the states whose held bytes fall in each of `buckets` equal slices of their
  // range, the best one (least cost, or least peak with min_peak): a front of at most `buckets`
  // states, each still exact in its bytes, so every plan stays feasible; only optimality can
  // be lost (the ε-trimming of approximation schemes for knapsack-like problems).
  std::vector<int> slot;
  auto trim = [&](std::vector<St>& v, size_t buckets) {
    if (v.size() <= buckets) return false;
    int64_t lo = v[0].h, hi = v[0].h;
    for (const St& s : v) lo = std::min(lo, s.h), hi = std::max(hi, s.h);
    const double width = double(hi - lo) / double(buckets) + 1;
    slot.assign(buckets, -1);
    auto key = [&](const St& s) { return min_peak ? double(s.pk) : s.cost; };
    auto other = [&](const St& s) { return min_peak ? s.cost : double(s.pk); };
    // The state holding the fewest bytes is always kept: later constraints depend only on the
    // held bytes, so while it survives, a feasible plan (if the grid has one) is found.
    int fewest = 0;
    for (int k = 1; k < int(v.size()); ++k)
      if (v[size_t(k)].h < v[size_t(fewest)].h) fewest = k;
    for (int k = 0; k < int(v.size()); ++k) {
      const size_t b = std::min(buckets - 1, size_t(double(v[size_t(k)].h - lo) / width));
      const int cur = slot[b];
      const St& s = v[size_t(k)];
      if (cur < 0 || key(s) < key(v[size_t(cur)]) ||
          (key(s) == key(v[size_t(cur)]) &&
           (other(s) < other(v[size_t(cur)]) ||
            (other(s) == other(v[size_t(cur)]) && s.h < v[size_t(cur)].h))))
        slot[b] = k;
    }
    std::vector<St> out;
    for (int k : slot)
      if (k >= 0 && k != fewest) out.push_back(v[size_t(k)]);
    out.push_back(v[size_t(fewest)]);
    v.swap(out);
    return true;
  };
  const bool coarse = g < n;
  auto prune = [&](std::vector<St>& v) {
    // Long chains: the front is trimmed before the exact pruning below.
    if (coarse) trim(v, kCoarseFront);
    std::sort(v.begin(), v.end(), [&](const St& x, const St& y) {
      const double cx = min_peak ? double(x.pk) : x.cost, cy = min_peak ? double(y.pk) : y.cost;
      if (cx != cy) return cx < cy;
      if (x.h != y.h) return x.h < y.h;
      return (min_peak ? x.cost : double(x.pk)) < (min_peak ? y.cost : double(y.pk));
    });
    // A state is dominated by an earlier one (lower or equal in the sort key) that is no worse
    // in the other two: held bytes h and the remaining key (peak when ordering by cost, cost
    // when ordering by peak). A staircase over h of the least remaining key seen answers that in
    // O(log k), so pruning k candidates is O(k log k) rather than O(k^2).
    std::vector<St> kept;
    std::map<int64_t, double> stairs;  // h -> least remaining key among kept states with h' <= h
    const double slack = min_peak ? 1e-12 : 0.0;
    for (const St& s : v) {
      const double other = min_peak ? s.cost : double(s.pk);
      auto at = stairs.upper_bound(s.h);
      if (at != stairs.begin() && std::prev(at)->second <= other + slack) continue;
      kept.push_back(s);
      // Insert (h, other), dropping steps it makes redundant (h' >= h with a key >= other).
      auto it = stairs.lower_bound(s.h);
      while (it != stairs.end() && it->second >= other) it = stairs.erase(it);
      stairs[s.h] = other;
    }
    if (trim(kept, kFrontLimit)) *thinned = true;
    v.swap(kept);
  };
  std::vector<double> prefix(size_t(n) + 1, 0);
  for (int i = 0; i < n; ++i) prefix[size_t(i) + 1] = prefix[size_t(i)] + cost[size_t(i)];
  for (int i = 0; i < g; ++i) {
    prune(at[size_t(i)]);
    const int a = grid[size_t(i)];
    const std::vector<int64_t> dl = detail::dropped_locals(m, a);
    for (int idx = 0; idx < int(at[size_t(i)].size()); ++idx) {
      const St& st = at[size_t(i)][size_t(idx)];
      if (st.h + run_peak[size_t(i)] <= avail)
        at[size_t(i) + 1].push_back({st.h + run_held[size_t(i)],
                                     std::max(st.pk, st.h + run_peak[size_t(i)]), st.cost, i, idx,
                                     true});
      for (int j = i + 1; j <= g; ++j) {
        const int b = grid[size_t(j)];
        const int64_t t = st.h + dl[size_t(b - a - 1)];
        if (t > avail) continue;
        at[size_t(j)].push_back({st.h + p.boundary_bytes(b), std::max(st.pk, t),
                                 st.cost + prefix[size_t(b)] - prefix[size_t(a)], i, idx, false});
      }
    }
  }
  prune(at[size_t(g)]);
  Best best;
  int best_idx = -1;
  const int64_t ll = m.loss_local();
  for (int idx = 0; idx < int(at[size_t(g)].size()); ++idx) {
    const St& st = at[size_t(g)][size_t(idx)];
    const int64_t t = st.h + ll;
    if (t > avail) continue;
    const int64_t pk = std::max(st.pk, t);
    const bool take =
        best_idx < 0 || (min_peak ? (pk < best.peak || (pk == best.peak && st.cost < best.cost))
                                  : better(st.cost, pk, best.cost, best.peak));
    if (take) best_idx = idx, best.cost = st.cost, best.peak = pk;
  }
  if (best_idx < 0) return best;
  best.found = true;
  for (int pos = g, idx = best_idx; pos > 0;) {
    const St& st = at[size_t(pos)][size_t(idx)];
    const int a = grid[size_t(st.prev_pos)], b = grid[size_t(pos)];
    if (st.keep) {
      for (int k = b - 1; k >= a; --k) best.segs.push_back({k, k + 1, true});
    } else {
      best.segs.push_back({a, b, false});
    }
    pos = st.prev_pos;
    idx = st.prev_idx;
  }
  std::reverse(best.segs.begin(), best.segs.end());
  return best;
}

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

// A static plan's peak: the closed form on chains, the program simulated on graphs.
int64_t static_peak(const ChainProfile& p, const std::vector<Segment>& segs) {
  if (p.is_chain()) return detail::formula_peak(p, segs);
  Plan plan;
  plan.segments = segs;
  return evaluate(p, plan).predicted_peak;
}

// Policies that plan chains only refuse graphs, naming a stage that makes it one.
void check_chain(const ChainProfile& p, const std::string& policy) {
  for (int i = 0; i < p.size(); ++i) {
    const std::vector<int> in = p.inputs(i);
    if (in.size() == 1 && in[0] == i) continue;
    std::string reads;
    for (int j : in) reads += (reads.empty() ? "x_" : ", x_") + std::to_string(j);
    fail("checkpoint policy '", policy, "' plans chains of stages, and stage ", i, " ('",
         p.stages[size_t(i)].name, "') reads ", reads,
         ": use ilp (the optimal segmentation on graphs), dtr, greedy, sqrt, every-k or none");
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

Best greedy_solve(const ChainProfile& p, int64_t budget, const std::vector<double>& cost,
                  bool min_peak) {
  return best_of(p, greedy_candidates(p), budget, cost, min_peak);
}

std::vector<Segment> fixed_for(const ChainProfile& p, const std::string& policy);

// The plans ilp starts from: greedy's candidates and the fixed policies.
std::vector<std::vector<Segment>> heuristic_plans(const ChainProfile& p) {
  std::vector<std::vector<Segment>> out = greedy_candidates(p);
  for (const char* h : {"none", "every-2", "sqrt"}) out.push_back(fixed_for(p, h));
  return out;
}

std::vector<Segment> fixed_for(const ChainProfile& p, const std::string& policy) {
  const int n = p.size() - 1;
  if (policy == "none") return fixed_segments(n, 0);
  if (policy == "sqrt")
    return fixed_segments(n, std::max(1, int(std::ceil(std::sqrt(double(std::max(n, 1)))))));
  return fixed_segments(n, every_k(policy));
}

bool is_fixed(const std::string& policy) {
  return policy == "none" || policy == "sqrt" || every_k(policy) > 0;
}

void check_policy(const std::string& policy) {
  SPOOL_CHECK(known_policy(policy), "unknown checkpoint policy '", policy, "' (known: ", kPolicies,
              ")");
}

}  // namespace

namespace {

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

}  // namespace

int64_t smallest_budget(const ChainProfile& p, const std::string& policy, const PlanOptions& o) {
  check_policy(policy);
  if (is_fixed(policy)) return static_peak(p, fixed_for(p, policy));
  const std::vector<double> cost = stage_costs(p);
  if (policy == "greedy") return greedy_solve(p, kUnlimited, cost, true).peak;
  if (!p.is_chain() && policy != "dtr") {
    if (policy != "ilp") check_chain(p, policy);
    return least_peak_graph(p, cost, o).peak;
  }
  if (policy == "dp" || policy == "ilp")
    return p.base_bytes + dp_solve(p, kUnlimited, cost, true, o.dp_grid_points).peak;
  // dtr: search for the least budget at which it completes.
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

namespace {
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
}  // namespace

Plan make_plan(const ChainProfile& p, const std::string& policy, int64_t budget,
               const PlanOptions& o) {
  check_policy(policy);
  SPOOL_CHECK(budget > 0, "memory budget must be positive, got ", budget);
  SPOOL_CHECK(p.size() >= 1, "planner: the profile has no stages");
  const double t0 = now_ms();
  Plan plan;
  plan.budget = budget;
  const std::vector<double> cost = stage_costs(p);
  const int64_t avail = budget == kUnlimited ? kUnlimited : budget - p.base_bytes;
  if (!p.is_chain() && policy == "dp") check_chain(p, policy);
  if (policy == "dtr") {
    plan.dynamic = true;
    if (!dtr_feasible(p, budget, &plan)) infeasible(policy, budget, smallest_budget(p, policy, o));
    plan.plan_ms = now_ms() - t0;
    return plan;
  }
  if (is_fixed(policy)) {
    plan.segments = fixed_for(p, policy);
  } else if (policy == "greedy") {
    const Best b = greedy_solve(p, budget, cost, false);
    if (!b.found) infeasible(policy, budget, smallest_budget(p, policy, o));
    plan.segments = b.segs;
  } else if (policy == "dp") {
    bool thinned = false;
    const Best b = avail < 0 ? Best{} : dp_solve(p, avail, cost, false, o.dp_grid_points, &thinned);
    if (!b.found) infeasible(policy, budget, smallest_budget(p, policy, o));
    plan.segments = b.segs;
    if (thinned)
      plan.note = "dp: the search kept a bounded front of " + std::to_string(kFrontLimit) +
                  " states per boundary; the plan may not be optimal";
    else if (const int grid = int(dp_grid(p, o.dp_grid_points).size()) - 1; grid < p.size() - 1)
      plan.note = "dp: the " + std::to_string(p.size() - 1) +
                  " plannable stages were planned over " + std::to_string(grid) +
                  " evenly spaced intervals; the plan may not be optimal";
  } else if (!p.is_chain()) {  // ilp on a graph
    const Best warm = best_of(p, heuristic_plans(p), budget, cost, false);
    const detail::IlpResult r =
        detail::solve_ilp_graph(p, budget, cost, warm.found ? &warm.segs : nullptr, o.time_limit_s);
    if (r.solved) {
      take_solution(plan, r, o.time_limit_s);
    } else {
      // No plan from the program: the best heuristic within the budget, or else the least-peak
      // segmentation (the one smallest_budget names) when it fits.
      Best use = warm;
      std::string what = "the best heuristic plan";
      if (!use.found) {
        const Best least = least_peak_graph(p, cost, o);
        if (least.peak > budget) infeasible(policy, budget, least.peak);
        use = least, what = "the least-peak plan";
      }
      plan.segments = use.segs;
      plan.gap = 1;
      plan.note = r.too_large   ? "ilp: the graph has more than 48 plannable stages; using " + what
                  : r.timed_out ? "ilp: no integer solution within the time limit of " +
                                      std::to_string(o.time_limit_s) + " s; using " + what
                                : "ilp: the program found no plan within the budget; using " + what;
    }
  } else {  // ilp
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
      if (!use_dp && !warm.found) infeasible(policy, budget, smallest_budget(p, "dp", o));
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
      infeasible(policy, budget, smallest_budget(p, policy, o));
    }
  }
  plan = evaluate(p, plan);
  if (is_fixed(policy) && plan.predicted_peak > budget)
    infeasible(policy, budget, plan.predicted_peak);
  SPOOL_CHECK(plan.predicted_peak <= budget, "planner: internal error: policy '", policy,
              "' planned a peak of ", plan.predicted_peak, " bytes over the budget of ", budget);
  plan.plan_ms = now_ms() - t0;
  return plan;
}

StepResult run_step(Chain& chain, const ChainProfile& profile, const Plan& plan) {
  const Device device = chain.input.device();  // the allocator that counts the step
  reset_peak(device);
  StepResult r;
  {
    ChainExecutor e(profile, &chain);
    run_plan(e, plan);
    r.loss = e.loss().item();
    e.unhold(e.size());
    r.predicted_peak = e.peak();
    r.mismatch = e.mismatch();
  }
  r.measured_peak = memory_stats(device).peak_bytes;
  return r;
}

}  // namespace spool
