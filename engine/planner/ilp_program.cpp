// The ilp policy: the segment model as a mixed-integer program, solved by GLPK.
//
// One binary column per candidate segment: a kept stage [a, a+1) or a dropped run [a, b) whose
// own peak fits the budget. Flow rows make the chosen segments a path from stage 0 to stage n
// (a segmentation). The bytes the kept prefix holds when segment s starts, H(a), is the sum of
// the held bytes of the chosen segments that end at or before a (a continuous column per stage),
// so "H(a) + peak(s) <= budget if s is chosen" is a linear row with a big-M term; the loss stage
// adds one more row. The
// objective is the recomputed cost. This is Checkmate's formulation specialised to the segment
// model the executor runs; its optimum equals the dp policy's.
#include <glpk.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>

#include "engine/clock.h"
#include "engine/error.h"
#include "engine/planner/planner.h"

namespace spool::detail {

namespace {

struct Candidate {
  Segment seg;
  int64_t local = 0;  // peak above the base and the kept prefix
  int64_t held = 0;   // what it adds to the kept prefix
  double cost = 0;
};

struct Callback {
  std::vector<double> warm;  // 1-based column values, empty when none
  bool warm_given = false;
  double gap = 1;
};

void on_event(glp_tree* tree, void* info) {
  auto* cb = static_cast<Callback*>(info);
  switch (glp_ios_reason(tree)) {
    case GLP_IHEUR:
      if (!cb->warm.empty() && !cb->warm_given) {
        glp_ios_heur_sol(tree, cb->warm.data());
        cb->warm_given = true;
      }
      break;
    case GLP_IBINGO:
    case GLP_ISELECT:
      cb->gap = glp_ios_mip_gap(tree);
      break;
    default:
      break;
  }
}

}  // namespace

namespace {

// Solves a loaded program: its LP relaxation first, under the time limit (with GLPK's MIP
// presolve the relaxation ran outside tm_lim: 2 s for a 0.05 s limit on a 120-stage chain),
// then branch and bound from that basis, given cb's warm start. Sets out's solved, optimal, gap
// and timed_out; true when an integer solution is there to read.
bool solve_program(glp_prob* lp, double deadline_ms, Callback& cb, IlpResult& out) {
  auto left_ms = [&] { return int(std::clamp(deadline_ms - now_ms(), 1.0, 2e9)); };
  // GLPK prints its basis construction even with msg_lev off; terminal output is switched off
  // for the solve and put back after.
  struct Quiet {
    int before = glp_term_out(GLP_OFF);
    ~Quiet() { glp_term_out(before); }
  } quiet;
  glp_smcp smcp;
  glp_init_smcp(&smcp);
  smcp.msg_lev = GLP_MSG_OFF;
  smcp.presolve = GLP_ON;
  smcp.tm_lim = left_ms();
  // Return codes, not statuses, tell a time-out: with presolve on, an infeasible relaxation
  // returns GLP_ENOPFS and leaves the status undefined.
  const int rs = glp_simplex(lp, &smcp);
  if (rs != 0 || glp_get_status(lp) != GLP_OPT) {
    out.timed_out = rs == GLP_ETMLIM;
    return false;
  }
  glp_iocp iocp;
  glp_init_iocp(&iocp);
  iocp.msg_lev = GLP_MSG_OFF;
  iocp.tm_lim = left_ms();
  iocp.cb_func = on_event;
  iocp.cb_info = &cb;
  iocp.presolve = GLP_OFF;  // the relaxation above is the starting basis
  const int ri = glp_intopt(lp, &iocp);
  const int status = glp_mip_status(lp);
  out.solved = status == GLP_OPT || status == GLP_FEAS;
  if (!out.solved) out.timed_out = ri == GLP_ETMLIM;
  out.optimal = status == GLP_OPT;
  out.gap = out.optimal ? 0 : cb.gap;
  return out.solved;
}

}  // namespace

namespace {

// Both programs are built through Builder: columns one at a time, and rows as linear expressions
// over them (Lin), each row's terms merged per column.
struct Lin {
  std::vector<std::pair<int, double>> terms;  // 1-based GLPK columns
  double constant = 0;
  Lin& add(const Lin& o, double k = 1) {
    for (const auto& [c, v] : o.terms) terms.emplace_back(c, v * k);
    constant += o.constant * k;
    return *this;
  }
};

class Builder {
 public:
  Builder() : lp_(glp_create_prob()) { glp_set_obj_dir(lp_, GLP_MIN); }
  ~Builder() { glp_delete_prob(lp_); }
  Builder(const Builder&) = delete;
  Builder& operator=(const Builder&) = delete;
  glp_prob* lp() { return lp_; }
  // A column of `kind` (GLP_BV, GLP_CV) in [lo, hi] (hi infinite: lo and above) costing `obj`.
  int column(int kind, double lo, double hi, double obj) {
    const int c = glp_add_cols(lp_, 1);
    glp_set_col_kind(lp_, c, kind);
    if (kind != GLP_BV)
      glp_set_col_bnds(lp_, c, std::isinf(hi) ? GLP_LO : lo == hi ? GLP_FX : GLP_DB, lo, hi);
    glp_set_obj_coef(lp_, c, obj);
    return c;
  }
  // e <= hi (upper) or e >= lo (lower); the constant moves to the right-hand side.
  void at_most(const Lin& e, double hi) { row(e, GLP_UP, 0, hi - e.constant); }
  void at_least(const Lin& e, double lo) { row(e, GLP_LO, lo - e.constant, 0); }
  void equal(const Lin& e, double v) { row(e, GLP_FX, v - e.constant, v - e.constant); }
  void load() { glp_load_matrix(lp_, int(ia_.size()) - 1, ia_.data(), ja_.data(), ar_.data()); }

 private:
  void row(const Lin& e, int type, double lo, double hi) {
    const int r = glp_add_rows(lp_, 1);
    glp_set_row_bnds(lp_, r, type, lo, hi);
    std::map<int, double> merged;  // GLPK refuses a column twice in a row
    for (const auto& [c, v] : e.terms) merged[c] += v;
    for (const auto& [c, v] : merged)
      if (v != 0) ia_.push_back(r), ja_.push_back(c), ar_.push_back(v);
  }
  glp_prob* lp_;
  std::vector<int> ia_{0}, ja_{0};
  std::vector<double> ar_{0};
};

// GLPK accepts rows violated within its feasibility tolerance; a plan over the budget by such a
// sliver is solved again with the rows tightened by a margin, and without the warm start (GLPK
// takes a heuristic solution without checking it, and it may break the tightened rows). `once`
// builds and solves the program for (warm start, seconds left, margin); `fits` says whether a
// solution keeps to the budget.
template <class Once, class Fits>
IlpResult solve_with_margins(const std::vector<Segment>* warm_start, double time_limit_s,
                             const Once& once, const Fits& fits) {
  IlpResult r;
  double spent = 0;
  for (int64_t margin : {int64_t(0), int64_t(64), int64_t(4096), int64_t(1) << 20}) {
    r = once(margin == 0 ? warm_start : nullptr, std::max(0.001, time_limit_s - spent), margin);
    spent += r.seconds;
    if (r.too_large || r.timed_out || !r.solved || fits(r)) break;
    r.solved = false;
  }
  r.seconds = spent;
  return r;
}

constexpr size_t kMaxColumns = 100000;

IlpResult solve_once(const ChainProfile& p, int64_t budget, const std::vector<double>& cost,
                     const std::vector<Segment>* warm_start, double time_limit_s, int64_t margin) {
  const double t0 = now_ms();
  IlpResult out;
  const SegmentModel m(p);
  const int n = m.n;
  const int64_t avail_bytes = budget == kUnlimited ? int64_t(1) << 52 : budget - p.base_bytes;
  if (avail_bytes < 0) return out;
  std::vector<Candidate> cands;
  for (int a = 0; a < n; ++a) {
    const int64_t lk = m.local_keep(a);
    if (lk <= avail_bytes)
      cands.push_back(
          {{a, a + 1, true}, lk, p.boundary_bytes(a + 1) + p.stages[size_t(a)].internal_bytes, 0});
    const std::vector<int64_t> dl = dropped_locals(m, a);
    double c = 0;
    for (int b = a + 1; b <= n; ++b) {
      c += cost[size_t(b - 1)];
      const int64_t local = dl[size_t(b - a - 1)];
      if (local <= avail_bytes) cands.push_back({{a, b, false}, local, p.boundary_bytes(b), c});
    }
  }
  const int64_t loss_local = m.loss_local();
  if (cands.empty() || loss_local > avail_bytes) return out;
  // Past kMaxColumns candidate segments (a 1000-stage chain has up to ~500,000) the program is
  // not built.
  if (cands.size() > kMaxColumns) {
    out.too_large = true;
    out.columns = int64_t(cands.size());
    return out;
  }
  // Bytes enter the program in units of the largest peak, so its coefficients are O(1) to
  // O(stages) (raw bytes next to binaries made GLPK's search fail numerically); the budget is
  // capped at what any plan could need, which changes no decision.
  double most = double(loss_local), total_held = 0;
  for (const auto& c : cands) most = std::max(most, double(c.local)), total_held += double(c.held);
  const double unit = std::max(1.0, most);
  const double big_m = (total_held + most) / unit + 1;
  const double avail =
      (std::min(double(avail_bytes), total_held + 2 * most) - double(margin)) / unit;

  Builder b;
  glp_prob* lp = b.lp();
  const int ncols = int(cands.size());
  // Columns: one binary per candidate segment (column j + 1), then H_v for v = 1..n (column
  // ncols + v): the held bytes below.
  for (int j = 0; j < ncols; ++j) b.column(GLP_BV, 0, 1, cands[size_t(j)].cost);
  const int hcol0 = ncols;  // H_v is column hcol0 + v
  for (int v = 1; v <= n; ++v) b.column(GLP_CV, 0, std::numeric_limits<double>::infinity(), 0);
  // Flow: out of stage 0 once, into stage n once, through every other stage.
  std::vector<Lin> flow(size_t(n) + 1);
  for (int j = 0; j < ncols; ++j) {
    const Segment& g = cands[size_t(j)].seg;
    flow[size_t(g.end)].terms.emplace_back(j + 1, 1);
    flow[size_t(g.begin)].terms.emplace_back(j + 1, -1);
  }
  for (int v = 0; v <= n; ++v) b.equal(flow[size_t(v)], v == 0 ? -1 : v == n ? 1 : 0);
  // Held bytes: H_v = H_{v-1} + the held bytes of the chosen segments ending at v (H_0 = 0), so
  // H_a is what the kept prefix holds when a segment starting at a runs. Memory: for every
  // candidate, H_a + its own peak <= avail when it is chosen (big-M otherwise); and H_n + the
  // loss stage's peak <= avail. The H columns keep the matrix at O(candidates) nonzeros; summing
  // the prefix into every memory row instead made it O(candidates^2), and GLPK's simplex then
  // overran the time limit (1 s for 0.05 s on 120 stages).
  std::vector<Lin> held(size_t(n) + 1);
  for (int v = 1; v <= n; ++v) {
    held[size_t(v)].terms.emplace_back(hcol0 + v, 1);
    if (v > 1) held[size_t(v)].terms.emplace_back(hcol0 + v - 1, -1);
  }
  for (int j = 0; j < ncols; ++j)
    if (cands[size_t(j)].held != 0)
      held[size_t(cands[size_t(j)].seg.end)].terms.emplace_back(
          j + 1, -double(cands[size_t(j)].held) / unit);
  for (int v = 1; v <= n; ++v) b.equal(held[size_t(v)], 0);
  for (int j = 0; j < ncols; ++j) {
    const Candidate& c = cands[size_t(j)];
    Lin mem;
    mem.terms.emplace_back(j + 1, double(c.local) / unit + big_m);
    if (c.seg.begin > 0) mem.terms.emplace_back(hcol0 + c.seg.begin, 1);
    b.at_most(mem, avail + big_m);
  }
  Lin last;
  if (n > 0) last.terms.emplace_back(hcol0 + n, 1);
  b.at_most(last, avail - double(loss_local) / unit);
  b.load();

  Callback cb;
  if (warm_start) {
    cb.warm.assign(size_t(ncols + n) + 1, 0.0);
    size_t matched = 0;
    std::vector<double> ends(size_t(n) + 1, 0);  // held bytes of the chosen segments ending at v
    for (const Segment& s : *warm_start)
      for (int j = 0; j < ncols; ++j)
        if (cands[size_t(j)].seg == s) {
          cb.warm[size_t(j) + 1] = 1, ++matched;
          ends[size_t(s.end)] += double(cands[size_t(j)].held) / unit;
        }
    double h = 0;
    for (int v = 1; v <= n; ++v) cb.warm[size_t(hcol0 + v)] = h += ends[size_t(v)];
    if (matched != warm_start->size()) cb.warm.clear();
  }
  if (solve_program(lp, t0 + time_limit_s * 1000, cb, out)) {
    // Follow the flow from stage 0.
    for (int v = 0; v < n;) {
      int next = -1;
      for (int j = 0; j < ncols && next < 0; ++j)
        if (cands[size_t(j)].seg.begin == v && glp_mip_col_val(lp, j + 1) > 0.5) {
          out.segments.push_back(cands[size_t(j)].seg);
          next = cands[size_t(j)].seg.end;
        }
      SPOOL_CHECK(next > v, "ilp: internal error: the solution is not a segmentation");
      v = next;
    }
  }
  out.seconds = (now_ms() - t0) * 1e-3;
  return out;
}
}  // namespace

IlpResult solve_ilp(const ChainProfile& p, int64_t budget, const std::vector<double>& cost,
                    const std::vector<Segment>* warm_start, double time_limit_s) {
  return solve_with_margins(
      warm_start, time_limit_s,
      [&](const std::vector<Segment>* warm, double seconds, int64_t margin) {
        return solve_once(p, budget, cost, warm, seconds, margin);
      },
      [&](const IlpResult& r) { return formula_peak(p, r.segments) <= budget; });
}

// ---------------------------------------------------------------------------------------------
// Graphs: the same segmentations, run by run_static's program for stages that read several
// boundaries. A dropped segment now holds every boundary it reads from outside (not only its
// first), and boundaries stay alive while any record that reads them exists, so the peak is no
// longer a sum over segments. The program follows Checkmate: the step is cut into moments (each
// forward, each replayed forward, each backward: the only places the executor's peak can rise),
// the live bytes at every moment are written as a linear function of the segment columns, with
// a continuous column A(j, m) in [0, 1] for "boundary x_j is alive at moment m" bounded below by
// each reason it can be alive (a record that holds it, a checkpoint not yet replayed), and every
// moment's live bytes plus its transient stay within the budget. A(j, m) appears only in
// memory rows, which it can only tighten, so at any optimum it is exactly the OR of its reasons.
namespace {

constexpr int kGraphMaxStages = 48;

IlpResult solve_graph_once(const ChainProfile& p, int64_t budget, const std::vector<double>& cost,
                           const std::vector<Segment>* warm_start, double time_limit_s,
                           int64_t margin, bool min_peak) {
  const double t0 = now_ms();
  IlpResult out;
  const int S = p.size(), n = S - 1;
  const int64_t avail_bytes = budget == kUnlimited ? int64_t(1) << 52 : budget - p.base_bytes;
  if (avail_bytes < 0) return out;
  if (n > kGraphMaxStages) {
    out.too_large = true;
    out.columns = int64_t(n) * (n + 3) / 2;
    return out;
  }
  // Readers of every boundary, and the last one.
  std::vector<std::vector<int>> readers(size_t(S) + 1);
  std::vector<int> last_read(size_t(S) + 1, -1);
  for (int i = 0; i < S; ++i)
    for (int j : p.inputs(i)) readers[size_t(j)].push_back(i), last_read[size_t(j)] = i;
  // GR[t]: bytes other than boundaries and records (gradients, the seed) entering backward(t).
  std::vector<double> gr(size_t(S), 0);
  gr[size_t(n)] = double(p.seed_bytes);
  for (int t = n - 1; t >= 0; --t) {
    const StageCost& s = p.stages[size_t(t) + 1];
    gr[size_t(t)] = gr[size_t(t) + 1] +
                    double(s.internal_bytes + s.backward_delta - p.boundary_grad_bytes(t + 2));
  }
  // Units: bytes enter in units of the largest quantity, so coefficients are O(1).
  double unit = 1, total = 0;
  for (int i = 0; i < S; ++i) {
    const StageCost& s = p.stages[size_t(i)];
    for (int64_t v : {s.keep_peak, s.nograd_peak, s.backward_peak, s.out_bytes, s.internal_bytes})
      unit = std::max(unit, double(v));
    total += double(s.out_bytes + s.internal_bytes + std::max<int64_t>(0, s.backward_peak) +
                    s.keep_peak + s.nograd_peak);
  }
  for (double g : gr) unit = std::max(unit, std::abs(g)), total += std::abs(g);
  const double big_m = 2 * total / unit + 1;
  const double avail = (std::min(double(avail_bytes), 2 * total) - double(margin)) / unit;

  Builder b;
  // Segment columns: kept stage a, dropped run [a, b).
  std::vector<Segment> segs;
  std::vector<int> seg_col, keep_col(size_t(n), 0);
  for (int a = 0; a < n; ++a) {
    segs.push_back({a, a + 1, true});
    seg_col.push_back(b.column(GLP_BV, 0, 1, 0));
    keep_col[size_t(a)] = seg_col.back();
    double c = 0;
    int64_t replayed = 0, replay_peak = 0;  // the replay of [a, e) alone
    for (int e = a + 1; e <= n; ++e) {
      c += cost[size_t(e - 1)];
      const StageCost& last = p.stages[size_t(e) - 1];
      replay_peak = std::max(replay_peak, replayed + last.keep_peak);
      replayed += last.internal_bytes + last.out_bytes;
      // A dropped run whose replay alone (with the gradients then live and the loss) passes the
      // budget is never feasible: no column (a lower bound on a moment the run would have).
      if (!min_peak && double(replay_peak + p.boundary_bytes(S)) + gr[size_t(e) - 1] >
                           double(avail_bytes - margin))
        continue;
      segs.push_back({a, e, false});
      seg_col.push_back(b.column(GLP_BV, 0, 1, min_peak ? 0 : c));
    }
  }
  const int peak_col = min_peak ? b.column(GLP_CV, 0, big_m, 1) : 0;
  // Flow: the chosen segments are a path from stage 0 to stage n.
  for (int v = 0; v <= n; ++v) {
    Lin e;
    for (size_t q = 0; q < segs.size(); ++q) {
      if (segs[q].end == v) e.terms.emplace_back(seg_col[q], 1);
      if (segs[q].begin == v) e.terms.emplace_back(seg_col[q], -1);
    }
    b.equal(e, v == 0 ? -1 : v == n ? 1 : 0);
  }
  auto kept = [&](int k) {
    Lin e;
    e.terms.emplace_back(keep_col[size_t(k)], 1);
    return e;
  };
  // Columns defined from others: by an equality (`defined`) or as the OR of 0/1 reasons (a
  // continuous column bounded below by each); kept in creation order for the warm start.
  struct Derived {
    int col;
    bool is_or;
    std::vector<Lin> parts;  // the definition, or the reasons
  };
  std::vector<Derived> derived;
  auto defined = [&](const Lin& e, double hi) {
    const int c = b.column(GLP_CV, -hi, hi, 0);
    Lin d = e;
    d.terms.emplace_back(c, -1);
    b.equal(d, 0);
    derived.push_back({c, false, {e}});
    Lin out;
    out.terms.emplace_back(c, 1);
    return out;
  };
  // A column for the OR of reasons (an empty Lin when there are none).
  auto either = [&](const std::vector<Lin>& reasons) {
    std::vector<Lin> live;
    for (const Lin& r : reasons)
      if (!r.terms.empty() || r.constant > 0) live.push_back(r);
    Lin out;
    if (live.empty()) return out;
    if (live.size() == 1 && live[0].terms.size() == 1 && live[0].terms[0].second == 1 &&
        live[0].constant == 0)
      return live[0];  // already a 0/1 column
    const int c = b.column(GLP_CV, 0, 1, 0);
    for (const Lin& r : live) {
      Lin d;
      d.terms.emplace_back(c, 1);
      d.add(r, -1);
      b.at_least(d, 0);
    }
    derived.push_back({c, true, live});
    out.terms.emplace_back(c, 1);
    return out;
  };
  // P_m counts the m' <= m where stages m'-1 and m' are not in one dropped segment; stages
  // k < t are in one dropped segment exactly when k is dropped and P_t = P_k, so
  // same(k, t) = 1 - kept(k) - (P_t - P_k) is that indicator at 0/1 points and at most it
  // elsewhere: a reason, never a memory term.
  std::vector<Lin> prefix(size_t(n) + 1);
  for (int m = 1; m < n; ++m) {
    Lin cont;
    for (size_t q = 0; q < segs.size(); ++q)
      if (!segs[q].keep && segs[q].begin <= m - 1 && m < segs[q].end)
        cont.terms.emplace_back(seg_col[q], 1);
    Lin e = prefix[size_t(m) - 1];
    e.constant += 1;
    e.add(cont, -1);
    prefix[size_t(m)] = defined(e, n + 1);
  }
  auto same = [&](int k, int t) {
    Lin out;
    if (t >= n) return out;  // the loss stage is never dropped
    out.constant = 1;
    out.add(kept(k), -1);
    out.add(prefix[size_t(t)], -1);
    out.add(prefix[size_t(k)]);
    return out;
  };
  // Stage k's record at a moment when stages up to t have not run their backward: kept, or
  // replayed in t's dropped segment.
  std::map<std::pair<int, int>, Lin> records;
  auto record = [&](int k, int t) {
    auto it = records.find({k, t});
    if (it == records.end())
      it = records.emplace(std::pair{k, t}, either({kept(k), same(k, t)})).first;
    return it->second;
  };
  // Checkpoint holds: held_by_begin[j][k]: x_j is held for a chosen dropped segment that begins
  // at or before k (it has not been replayed, or is being replayed); held_by_end[j][t]: for one
  // that ends at or before t.
  std::vector<std::vector<Lin>> held_by_begin(size_t(S) + 1), held_by_end(size_t(S) + 1);
  for (int j = 1; j <= n; ++j) {
    std::vector<std::vector<Lin>> at_begin(size_t(n) + 1), at_end(size_t(n) + 1);
    for (size_t q = 0; q < segs.size(); ++q) {
      if (segs[q].keep || segs[q].begin < j) continue;
      bool reads = false;
      for (int k = segs[q].begin; k < segs[q].end && !reads; ++k)
        for (int i : p.inputs(k)) reads = reads || i == j;
      if (!reads) continue;
      Lin e;
      e.terms.emplace_back(seg_col[q], 1);
      at_begin[size_t(segs[q].begin)].push_back(e);
      at_end[size_t(segs[q].end)].push_back(e);
    }
    held_by_begin[size_t(j)].resize(size_t(n) + 1);
    held_by_end[size_t(j)].resize(size_t(n) + 1);
    for (int k = 0; k <= n; ++k) {
      std::vector<Lin> rb = at_begin[size_t(k)], re = at_end[size_t(k)];
      if (k > 0) {
        rb.push_back(held_by_begin[size_t(j)][size_t(k) - 1]);
        re.push_back(held_by_end[size_t(j)][size_t(k) - 1]);
      }
      held_by_begin[size_t(j)][size_t(k)] = either(rb);
      held_by_end[size_t(j)][size_t(k)] = either(re);
    }
  }
  // Boundary x_j's bytes at a moment: a constant when it is surely alive, else an OR column of
  // the reasons it may be.
  std::vector<std::pair<Lin, int>> moments;
  auto node = [&](int j, bool surely, const std::vector<Lin>& reasons) {
    Lin e;
    const double bytes = double(p.boundary_bytes(j)) / unit;
    if (bytes == 0) return e;
    if (surely) {
      e.constant = bytes;
      return e;
    }
    e.add(either(reasons), bytes);
    return e;
  };
  // A moment's row: live + transient <= avail (or <= the peak column); relaxed when the moment
  // happens only if stage `only_if_dropped` is dropped.
  auto moment = [&](Lin live, int only_if_dropped) {
    moments.emplace_back(live, only_if_dropped);
    if (only_if_dropped >= 0) live.add(kept(only_if_dropped), -big_m);
    if (min_peak) {
      live.terms.emplace_back(peak_col, -1);
      b.at_most(live, 0);
    } else {
      b.at_most(live, avail);
    }
  };
  auto bytes = [&](int64_t v) { return double(v) / unit; };

  // Forward of stage i.
  for (int i = 0; i <= n; ++i) {
    const StageCost& s = p.stages[size_t(i)];
    Lin live;
    for (int j = 1; j <= i; ++j) {
      std::vector<Lin> why{kept(j - 1)};
      for (int c : readers[size_t(j)])
        if (c < i) why.push_back(kept(c));
      why.push_back(held_by_end[size_t(j)][size_t(n)]);
      live.add(node(j, last_read[size_t(j)] >= i, why));
    }
    for (int k = 0; k < i; ++k) live.add(kept(k), bytes(p.stages[size_t(k)].internal_bytes));
    if (i == n) {
      live.constant += bytes(s.keep_peak);
    } else {
      live.add(kept(i), bytes(s.keep_peak) - bytes(s.nograd_peak));
      live.constant += bytes(s.nograd_peak);
    }
    moment(live, -1);
  }
  // Backward of stage t, after any replay for it.
  for (int t = n; t >= 0; --t) {
    const StageCost& s = p.stages[size_t(t)];
    Lin live;
    live.constant += gr[size_t(t)] / unit + bytes(p.boundary_bytes(S)) + bytes(s.internal_bytes) +
                     bytes(s.backward_peak);
    if (t < n) live.constant += bytes(p.boundary_bytes(t + 1));
    for (int j = 1; j <= t; ++j) {
      bool surely = false;
      std::vector<Lin> why{kept(j - 1), same(j - 1, t)};
      for (int c : readers[size_t(j)]) {
        if (c == t) surely = true;
        if (c < t) why.push_back(kept(c)), why.push_back(same(c, t));
      }
      why.push_back(held_by_end[size_t(j)][size_t(t)]);
      live.add(node(j, surely, why));
    }
    // Record columns are ORs, exact only where they can but tighten a row: a record that would
    // lower the live bytes (negative internal bytes, which no standard model has) counts 0.
    for (int k = 0; k < t; ++k)
      live.add(record(k, t), bytes(std::max<int64_t>(0, p.stages[size_t(k)].internal_bytes)));
    moment(live, -1);
  }
  // Replayed forward of dropped stage k (in the backward of its segment's last stage).
  for (int k = 0; k < n; ++k) {
    const StageCost& s = p.stages[size_t(k)];
    Lin live;
    for (size_t q = 0; q < segs.size(); ++q)
      if (!segs[q].keep && segs[q].begin <= k && k < segs[q].end) {
        Lin e;
        e.terms.emplace_back(seg_col[q], gr[size_t(segs[q].end - 1)] / unit);
        live.add(e);
      }
    live.constant += bytes(p.boundary_bytes(S)) + bytes(s.keep_peak);
    for (int j = 1; j <= k; ++j) {
      std::vector<Lin> why{kept(j - 1), same(j - 1, k)};
      for (int c : readers[size_t(j)])
        if (c < k) why.push_back(kept(c)), why.push_back(same(c, k));
      why.push_back(held_by_begin[size_t(j)][size_t(k)]);
      live.add(node(j, false, why));
    }
    for (int m = 0; m < k; ++m)
      live.add(record(m, k), bytes(std::max<int64_t>(0, p.stages[size_t(m)].internal_bytes)));
    moment(live, k);
  }
  b.load();
  glp_prob* lp = b.lp();
  out.columns = glp_get_num_cols(lp);
  Callback cb;
  if (warm_start) {
    // The warm start's segment columns, its A columns (the OR of their reasons) and its peak.
    std::vector<double>& w = cb.warm;
    w.assign(size_t(glp_get_num_cols(lp)) + 1, 0.0);
    size_t matched = 0;
    for (const Segment& g : *warm_start)
      for (size_t q = 0; q < segs.size(); ++q)
        if (segs[q] == g) w[size_t(seg_col[q])] = 1, ++matched;
    auto eval = [&](const Lin& e) {
      double v = e.constant;
      for (const auto& [c, k] : e.terms) v += k * w[size_t(c)];
      return v;
    };
    for (const Derived& d : derived) {
      double v = d.is_or ? 0 : eval(d.parts[0]);
      if (d.is_or)
        for (const Lin& r : d.parts) v = std::max(v, eval(r));
      w[size_t(d.col)] = d.is_or ? std::min(1.0, v) : v;
    }
    if (min_peak) {
      double pk = 0;
      for (const auto& [e, k] : moments)
        if (k < 0 || w[size_t(keep_col[size_t(k)])] < 0.5) pk = std::max(pk, eval(e));
      w[size_t(peak_col)] = std::min(big_m, pk);
    }
    if (matched != warm_start->size()) w.clear();
  }
  if (solve_program(lp, t0 + time_limit_s * 1000, cb, out)) {
    for (size_t q = 0; q < segs.size(); ++q)
      if (glp_mip_col_val(lp, seg_col[q]) > 0.5) out.segments.push_back(segs[q]);
    std::sort(out.segments.begin(), out.segments.end(),
              [](const Segment& x, const Segment& y) { return x.begin < y.begin; });
    int v = 0;
    for (const Segment& g : out.segments) {
      SPOOL_CHECK(g.begin == v, "ilp: internal error: the solution is not a segmentation");
      v = g.end;
    }
    SPOOL_CHECK(v == n, "ilp: internal error: the solution is not a segmentation");
  }
  out.seconds = (now_ms() - t0) * 1e-3;
  return out;
}

}  // namespace

IlpResult solve_ilp_graph(const ChainProfile& p, int64_t budget, const std::vector<double>& cost,
                          const std::vector<Segment>* warm_start, double time_limit_s,
                          bool min_peak) {
  return solve_with_margins(
      warm_start, time_limit_s,
      [&](const std::vector<Segment>* warm, double seconds, int64_t margin) {
        return solve_graph_once(p, budget, cost, warm, seconds, margin, min_peak);
      },
      [&](const IlpResult& r) {
        if (min_peak) return true;  // the budget is not a constraint then
        Plan plan;
        plan.segments = r.segments;
        return evaluate(p, plan).predicted_peak <= budget;
      });
}

}  // namespace spool::detail
