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

#include "engine/clock.h"
#include "engine/error.h"
#include "engine/planner.h"

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

  glp_prob* lp = glp_create_prob();
  glp_set_obj_dir(lp, GLP_MIN);
  const int ncols = int(cands.size());
  glp_add_cols(lp, ncols);
  for (int j = 0; j < ncols; ++j) {
    glp_set_col_kind(lp, j + 1, GLP_BV);
    glp_set_obj_coef(lp, j + 1, cands[size_t(j)].cost);
  }
  std::vector<int> ia{0}, ja{0};
  std::vector<double> ar{0};
  int row = 0;
  // Flow: out of stage 0 once, into stage n once, through every other stage (row v + 1).
  glp_add_rows(lp, n + 1);
  for (int v = 0; v <= n; ++v) {
    const double rhs = v == 0 ? -1 : v == n ? 1 : 0;
    glp_set_row_bnds(lp, v + 1, GLP_FX, rhs, rhs);
  }
  for (int j = 0; j < ncols; ++j) {
    const Segment& s = cands[size_t(j)].seg;
    ia.push_back(s.end + 1), ja.push_back(j + 1), ar.push_back(1);
    ia.push_back(s.begin + 1), ja.push_back(j + 1), ar.push_back(-1);
  }
  row = n + 1;
  // Held bytes: a continuous column H_v per stage v = 1..n (H_0 = 0) with H_v = H_{v-1} + the
  // held bytes of the chosen segments ending at v, so H_a is what the kept prefix holds when a
  // segment starting at a runs. Memory: for every candidate, H_a + its own peak <= avail when
  // it is chosen (big-M otherwise); and H_n + the loss stage's peak <= avail. The H columns keep
  // the matrix at O(candidates) nonzeros; summing the prefix into every memory row instead made
  // it O(candidates^2), and GLPK's simplex then overran the time limit (1 s for 0.05 s on 120
  // stages).
  const int hcol0 = ncols;  // H_v is column hcol0 + v
  glp_add_cols(lp, n);
  for (int v = 1; v <= n; ++v) glp_set_col_bnds(lp, hcol0 + v, GLP_LO, 0, 0);
  glp_add_rows(lp, n);
  const int hrow0 = row;  // the row defining H_v is hrow0 + v
  for (int v = 1; v <= n; ++v) {
    glp_set_row_bnds(lp, hrow0 + v, GLP_FX, 0, 0);
    ia.push_back(hrow0 + v), ja.push_back(hcol0 + v), ar.push_back(1);
    if (v > 1) ia.push_back(hrow0 + v), ja.push_back(hcol0 + v - 1), ar.push_back(-1);
  }
  for (int j = 0; j < ncols; ++j)
    if (cands[size_t(j)].held != 0)
      ia.push_back(hrow0 + cands[size_t(j)].seg.end), ja.push_back(j + 1),
          ar.push_back(-double(cands[size_t(j)].held) / unit);
  row = hrow0 + n;
  glp_add_rows(lp, ncols + 1);
  for (int j = 0; j < ncols; ++j) {
    ++row;
    const Candidate& c = cands[size_t(j)];
    glp_set_row_bnds(lp, row, GLP_UP, 0, avail + big_m);
    ia.push_back(row), ja.push_back(j + 1), ar.push_back(double(c.local) / unit + big_m);
    if (c.seg.begin > 0) ia.push_back(row), ja.push_back(hcol0 + c.seg.begin), ar.push_back(1);
  }
  ++row;
  glp_set_row_bnds(lp, row, GLP_UP, 0, avail - double(loss_local) / unit);
  if (n > 0) ia.push_back(row), ja.push_back(hcol0 + n), ar.push_back(1);
  glp_load_matrix(lp, int(ia.size()) - 1, ia.data(), ja.data(), ar.data());

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
  // The LP relaxation is solved first, under the time limit: with GLPK's MIP presolve the
  // relaxation ran outside tm_lim (2 s for a 0.05 s limit on a 120-stage chain).
  const double deadline = t0 + time_limit_s * 1000;
  auto left_ms = [&] { return int(std::max(1.0, deadline - now_ms())); };
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
  if (glp_simplex(lp, &smcp) != 0 || glp_get_status(lp) != GLP_OPT) {
    out.timed_out = glp_get_status(lp) != GLP_NOFEAS;
    glp_delete_prob(lp);
    out.seconds = (now_ms() - t0) * 1e-3;
    return out;
  }
  glp_iocp iocp;
  glp_init_iocp(&iocp);
  iocp.msg_lev = GLP_MSG_OFF;
  iocp.tm_lim = left_ms();
  iocp.cb_func = on_event;
  iocp.cb_info = &cb;
  iocp.presolve = GLP_OFF;  // the relaxation above is the starting basis
  glp_intopt(lp, &iocp);
  const int status = glp_mip_status(lp);
  if (status == GLP_OPT || status == GLP_FEAS) {
    out.solved = true;
    out.optimal = status == GLP_OPT;
    out.gap = out.optimal ? 0 : cb.gap;
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
  glp_delete_prob(lp);
  out.seconds = (now_ms() - t0) * 1e-3;
  return out;
}
}  // namespace

IlpResult solve_ilp(const ChainProfile& p, int64_t budget, const std::vector<double>& cost,
                    const std::vector<Segment>* warm_start, double time_limit_s) {
  // GLPK accepts rows violated within its feasibility tolerance; a plan over the budget by such
  // a sliver is solved again with the rows tightened.
  IlpResult r;
  double spent = 0;
  for (int64_t margin : {int64_t(0), int64_t(64), int64_t(4096), int64_t(1) << 20}) {
    r = solve_once(p, budget, cost, warm_start, std::max(0.001, time_limit_s - spent), margin);
    spent += r.seconds;
    if (r.too_large || r.timed_out || !r.solved || formula_peak(p, r.segments) <= budget) break;
    r.solved = false;
  }
  r.seconds = spent;
  return r;
}

}  // namespace spool::detail
