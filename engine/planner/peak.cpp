// A static plan's program on the executor, its peak (the closed form of the segment model on
// chains, tested against the simulation), and evaluate(), the simulation every peak is judged by.
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/planner/internal.h"

namespace spool {

namespace planning {

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

// A static plan's peak: the closed form on chains, the program simulated on graphs.
int64_t static_peak(const ChainProfile& p, const std::vector<Segment>& segs) {
  if (p.is_chain()) return detail::formula_peak(p, segs);
  Plan plan;
  plan.segments = segs;
  return evaluate(p, plan).predicted_peak;
}

}  // namespace planning

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

}  // namespace spool
