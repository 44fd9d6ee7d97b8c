// The dp policy (chains only): the optimal segmentation by dynamic programming over the memory
// the kept prefix holds; chains longer than kExactStages plannable stages over a grid of
// boundaries.
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/planner/internal.h"

namespace spool::planning {

// Chains up to kExactStages stages are searched over every segmentation (exactly while no front
// passes kFrontLimit states; no standard model's plan notes a trim). Longer ones are searched
// over the segmentations whose dropped segments start and end on a grid of at most kGridPoints
// boundaries (spaced evenly in activation bytes, as Chen's greedy spaces its segments), with
// runs of kept stages between neighbouring grid points and fronts trimmed to kCoarseFront
// states: planning then costs O(kGridPoints^2 x front) instead of O(n^2 x front), and the plan
// may be worse than the unrestricted optimum (docs/memory.md measures by how much).
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
              int grid_points, bool* thinned_out) {
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

namespace {

class DpPolicy final : public PlanPolicy {
 public:
  using PlanPolicy::PlanPolicy;
  bool plans_graphs() const override { return false; }
  void plan(const ChainProfile& p, int64_t budget, const PlanOptions& o, Plan& out) const override {
    const int64_t avail = budget == kUnlimited ? kUnlimited : budget - p.base_bytes;
    bool thinned = false;
    const Best b =
        avail < 0 ? Best{} : dp_solve(p, avail, stage_costs(p), false, o.dp_grid_points, &thinned);
    if (!b.found) infeasible(name(), budget, smallest_budget(p, o));
    out.segments = b.segs;
    if (thinned)
      out.note = "dp: the search kept a bounded front of " + std::to_string(kFrontLimit) +
                 " states per boundary; the plan may not be optimal";
    else if (const int grid = int(dp_grid(p, o.dp_grid_points).size()) - 1; grid < p.size() - 1)
      out.note = "dp: the " + std::to_string(p.size() - 1) +
                 " plannable stages were planned over " + std::to_string(grid) +
                 " evenly spaced intervals; the plan may not be optimal";
  }
  int64_t smallest_budget(const ChainProfile& p, const PlanOptions& o) const override {
    return p.base_bytes + dp_solve(p, kUnlimited, stage_costs(p), true, o.dp_grid_points).peak;
  }
};

}  // namespace

std::unique_ptr<PlanPolicy> make_dp(const std::string& name) {
  return name == "dp" ? std::make_unique<DpPolicy>(name) : nullptr;
}

}  // namespace spool::planning
