#include "engine/planner/chain.h"

#include <cstring>
#include <optional>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/checkpoint.h"
#include "engine/clock.h"
#include "engine/error.h"
#include "engine/factory.h"
#include "engine/trace.h"

namespace spool {

namespace {

int64_t live_now(Device d) { return memory_stats(d).live_bytes; }

// Stage i reads `ins[i]` (empty: x_i alone): increasing, distinct boundaries no later than x_i;
// and every boundary x_1 .. x_{S-1} is read by some stage (its gradient is needed by its
// producer's backward).
void check_inputs(const std::vector<std::vector<int>>& ins, const std::vector<std::string>& names) {
  const size_t s = ins.size();
  std::vector<char> read(s + 1, 0);
  for (size_t i = 0; i < s; ++i) {
    if (ins[i].empty()) {
      read[i] = 1;
      continue;
    }
    for (size_t k = 0; k < ins[i].size(); ++k) {
      const int j = ins[i][k];
      SPOOL_CHECK(j >= 0 && j <= int(i), "chain: stage ", i, " ('", names[i], "') reads x_", j,
                  "; a stage may read only x_0 .. x_", i);
      SPOOL_CHECK(k == 0 || j > ins[i][k - 1], "chain: stage ", i, " ('", names[i],
                  "') lists its inputs out of order or twice (x_", j, ")");
      read[size_t(j)] = 1;
    }
  }
  for (size_t j = 1; j < s; ++j)
    SPOOL_CHECK(read[j], "chain: no stage reads x_", j, ", the output of stage ", j - 1, " ('",
                names[j - 1], "')");
}

}  // namespace

bool ChainProfile::is_chain() const {
  for (size_t i = 0; i < stages.size(); ++i)
    if (!stages[i].inputs.empty() && stages[i].inputs != std::vector<int>{int(i)}) return false;
  return true;
}

void ChainProfile::check_graph() const {
  std::vector<std::vector<int>> ins;
  std::vector<std::string> names;
  for (const StageCost& s : stages) ins.push_back(s.inputs), names.push_back(s.name);
  check_inputs(ins, names);
}

// The tensor work behind the executor's primitives.
class RealChain {
 public:
  Device device() const { return c_.input.device(); }  // where its bytes are counted
  explicit RealChain(Chain& c) : c_(c) {
    const size_t s = c.stages.size();
    SPOOL_CHECK(s > 0, "chain: no stages");
    SPOOL_CHECK(c.input.defined(), "chain: the input (x_0) is undefined");
    x_.resize(s + 1);
    g_.resize(s + 1);
    rec_.resize(s);
    rng_.resize(s);
    x_[0] = c.input.detach();
    for (const Stage& st : c.stages)
      SPOOL_CHECK(st.inputs.empty() ? bool(st.fn) : bool(st.fn_inputs), "chain: stage '", st.name,
                  "' has no function");
    std::vector<std::vector<int>> ins;
    std::vector<std::string> names;
    for (const Stage& st : c.stages) ins.push_back(st.inputs), names.push_back(st.name);
    check_inputs(ins, names);
    for (const Tensor& t : c.state)
      SPOOL_CHECK(t.device() == c.input.device() && t.is_contiguous(),
                  "chain: state tensors must "
                  "be contiguous and on the batch's device (",
                  c.input.device().str(), "), got ", describe(t));
  }

  void forward(int i, bool keep) {
    const Stage& st = c_.stages[size_t(i)];
    const std::vector<int> ins = inputs_of(i);
    // A replay draws what the first forward drew and leaves the state as the step has it.
    std::optional<ReplayScope> replay;
    if (rng_[size_t(i)])
      replay.emplace(&*rng_[size_t(i)], c_.state);
    else
      rng_[size_t(i)].emplace(c_.generators);
    Tensors xs;
    for (int j : ins) {
      Tensor x = x_[size_t(j)];
      if (keep) {
        x = x.detach();
        if (j > 0 && is_float(x.dtype())) x.requires_grad_(true);
      }
      xs.push_back(x);
    }
    auto call = [&] { return st.inputs.empty() ? st.fn(xs[0]) : st.fn_inputs(xs); };
    Tensor y;
    if (keep) {
      {
        EnableGrad enable;
        y = call();
      }
      SPOOL_CHECK(y.defined(), "chain: stage '", st.name, "' returned an undefined tensor");
      rec_[size_t(i)] = {xs, y, y.detach()};
    } else {
      NoGrad no_grad;
      y = call();
      SPOOL_CHECK(y.defined(), "chain: stage '", st.name, "' returned an undefined tensor");
    }
    for (const Tensor& x : xs)
      SPOOL_CHECK(y.storage() != x.storage(), "chain: stage '", st.name,
                  "' returned a view of its input; merge it into a neighbouring stage");
    replay.reset();
    x_[size_t(i) + 1] = y.detach();
  }

  void seed() {
    const Tensor& loss = rec_.back().y;
    SPOOL_CHECK(loss.numel() == 1, "chain: the last stage ('", c_.stages.back().name,
                "') must return a scalar loss; it returned ", describe(loss));
    g_.back() = ones_like(loss.detach());
  }

  // Stage i's backward, and the release of everything it no longer needs: its record, the
  // gradient of x_{i+1}, and x_{i+1} itself (every reader of it has run its backward; the loss
  // x_S stays, to be read). The output and its gradient are handed to the autograd, which frees
  // each once the last node reading it has run, so the stage's peak does not carry them to its
  // end.
  void backward_call(int i) {
    Rec& r = rec_[size_t(i)];
    const size_t out = size_t(i) + 1;
    Tensor y = std::move(r.y), seed = std::move(g_[out]);
    if (out < x_.size() - 1) {
      r.y_data = Tensor();
      x_[out] = Tensor();
    }
    // Not Tensors{...}: an initializer list would keep its own copies until backward returns.
    Tensors roots, seeds;
    roots.push_back(std::move(y));
    seeds.push_back(std::move(seed));
    Tensors gxs = grad(std::move(roots), std::move(seeds), r.xa);
    const std::vector<int> ins = inputs_of(i);
    for (size_t k = 0; k < ins.size(); ++k) {
      const size_t j = size_t(ins[k]);
      if (j == 0 || !r.xa[k].requires_grad()) continue;
      Tensor gx = std::move(gxs[k]);  // the boundary's gradient owns it now
      const Tensor& xa = r.xa[k];
      if (!g_[j].defined()) {
        g_[j] = gx.defined() ? gx : zeros_like(xa);
      } else if (gx.defined()) {
        // An earlier reader's part (readers run from the last down), added in place: g_[j] is
        // ours alone (a leaf's gradient is its own buffer: the autograd copies one that another
        // tensor could see, as when a stage adds two of its inputs and hands both one tensor).
        backend(gx.device()).binary(BinaryOp::add, g_[j], gx, g_[j]);
      }
    }
    rec_[size_t(i)] = Rec();
  }
  void drop_grad(int j) { g_[size_t(j)] = Tensor(); }
  void drop_record(int i) { rec_[size_t(i)] = Rec(); }
  // The bytes of x_j's gradient storage (the profile's StageCost::grad_bytes).
  int64_t grad_storage_bytes(int j) const {
    return g_[size_t(j)].defined() ? int64_t(g_[size_t(j)].storage()->nbytes()) : 0;
  }
  void hold(int j) {
    if (x_[size_t(j)].defined()) return;
    if (j > 0 && rec_[size_t(j) - 1].y_data.defined()) {
      x_[size_t(j)] = rec_[size_t(j) - 1].y_data;
      return;
    }
    for (size_t i = 0; i < rec_.size(); ++i) {
      const std::vector<int> ins = inputs_of(int(i));
      for (size_t k = 0; k < ins.size() && k < rec_[i].xa.size(); ++k)
        if (ins[k] == j) {
          x_[size_t(j)] = rec_[i].xa[k].detach();
          return;
        }
    }
  }
  void unhold(int j) { x_[size_t(j)] = Tensor(); }
  const Tensor& x(int j) const { return x_[size_t(j)]; }

 private:
  struct Rec {
    Tensors xa;        // input aliases (they collect the inputs' gradients)
    Tensor y, y_data;  // output with graph, and its data
  };
  std::vector<int> inputs_of(int i) const { return stage_reads(c_.stages[size_t(i)].inputs, i); }
  Chain& c_;
  std::vector<Tensor> x_, g_;
  std::vector<Rec> rec_;
  std::vector<std::optional<RngSnapshot>> rng_;  // each stage's generators at its first forward
};

ChainExecutor::ChainExecutor(const ChainProfile& profile, Chain* chain) : p_(profile) {
  const int s = profile.size();
  if (chain) {
    SPOOL_CHECK(int(chain->stages.size()) == s, "chain executor: the chain has ",
                chain->stages.size(), " stages, its profile ", s);
    for (int i = 0; i < s; ++i) {
      SPOOL_CHECK(stage_reads(chain->stages[size_t(i)].inputs, i) == profile.inputs(i),
                  "chain executor: stage ", i, " ('", chain->stages[size_t(i)].name,
                  "') reads other boundaries than its profile says; profile the chain again");
    }
    real_ = std::make_unique<RealChain>(*chain);
  }
  profile.check_graph();
  readers_.resize(size_t(s) + 1);
  for (int i = 0; i < s; ++i) {
    inputs_.push_back(profile.inputs(i));
    for (int j : inputs_.back()) readers_[size_t(j)].push_back(i);
  }
  held_.assign(size_t(s) + 1, 0);
  rec_.assign(size_t(s), 0);
  forwarded_.assign(size_t(s), 0);
  held_[0] = 1;  // the batch
  live_ = peak_ = profile.base_bytes;
  peak_at_ = "the step's start";
  if (real_) real_offset_ = live_now(real_->device()) - live_;
}

ChainExecutor::~ChainExecutor() = default;

bool ChainExecutor::alive(int j) const {
  if (held_[size_t(j)]) return true;
  if (j > 0 && rec_[size_t(j) - 1]) return true;
  for (int i : readers_[size_t(j)])
    if (rec_[size_t(i)]) return true;
  return false;
}

// Every caller has just removed a holder of x_j, which was alive before: when that was the last
// one, x_j's bytes leave the account.
void ChainExecutor::settle(int j) {
  if (j == 0 || alive(j)) return;
  live_ -= p_.boundary_bytes(j);
}

void ChainExecutor::check(const char* what, int i) {
  // A trace's "planned live bytes" track: the account after each primitive, in the allocator's
  // terms (engine/trace.h), to lie on its live bytes.
  if (real_ && trace::on()) trace::counter("planned live bytes", double(live_ + real_offset_));
  if (!real_ || !mismatch_.empty()) return;
  const int64_t actual = live_now(real_->device()) - real_offset_;
  if (actual != live_)
    mismatch_ = std::string(what) + "(" + std::to_string(i) + "): allocator " +
                std::to_string(actual) + " bytes, account " + std::to_string(live_);
}

void ChainExecutor::begin_primitive() {
  if (timeline_ && real_) reset_peak(real_->device());
}

void ChainExecutor::end_primitive(std::string label, int64_t predicted_peak, bool recompute) {
  if (!timeline_ || !real_) return;
  const MemoryStats m = memory_stats(real_->device());
  TimelinePoint t;
  t.primitive = std::move(label);
  t.recompute = recompute;
  t.predicted_live = live_ + real_offset_;
  t.measured_live = m.live_bytes;
  t.predicted_peak = std::max(predicted_peak + real_offset_, t.predicted_live);
  t.measured_peak = m.peak_bytes;
  timeline_->push_back(std::move(t));
}

void ChainExecutor::note_peak(int64_t bytes, const char* what, int i) {
  if (bytes <= peak_) return;
  peak_ = bytes;
  peak_at_ = std::string(what) + (i < 0 ? "" : " '" + p_.stages[size_t(i)].name + "'");
}

void ChainExecutor::forward(int i, bool keep) {
  SPOOL_CHECK(i >= 0 && i < size(), "chain executor: no stage ", i);
  for (int j : inputs_[size_t(i)])
    SPOOL_CHECK(held_[size_t(j)], "chain executor: forward(", i, ") needs x_", j, " held");
  SPOOL_CHECK(!alive(i + 1), "chain executor: forward(", i, ") while x_", i + 1, " is still alive");
  SPOOL_CHECK(!rec_[size_t(i)], "chain executor: stage ", i, " already has a record");
  const StageCost& s = p_.stages[size_t(i)];
  const int64_t before = live_, within = live_ + (keep ? s.keep_peak : s.nograd_peak);
  const bool replay = forwarded_[size_t(i)];
  note_peak(within, keep ? "forward (keeping its graph) of" : "forward (without graph) of", i);
  begin_primitive();
  if (real_) {
    // A span per primitive in a trace: its kind, its stage, and whether it recomputes.
    std::optional<trace::Span> span;
    if (trace::on())
      span.emplace("planner", std::string(forwarded_[size_t(i)] ? "replay" : "forward") +
                                  (keep ? " (kept) " : " (dropped) ") + s.name);
    real_->forward(i, keep);
  }
  live_ += s.out_bytes + (keep ? s.internal_bytes : 0);
  held_[size_t(i) + 1] = 1;
  if (keep) rec_[size_t(i)] = 1;
  if (forwarded_[size_t(i)]) {
    recompute_ms_ += s.forward_ms;
    recompute_flops_ += s.flops;
  }
  forwarded_[size_t(i)] = 1;
  check("forward", i);
  if (timeline_)
    end_primitive(
        std::string(replay ? "replay" : "forward") + (keep ? " (kept) " : " (dropped) ") + s.name,
        std::max(within, before), replay);
}

void ChainExecutor::seed() {
  SPOOL_CHECK(rec_.back(), "chain executor: seed() needs the loss stage's record");
  begin_primitive();
  if (real_) real_->seed();
  live_ += p_.seed_bytes;
  note_peak(live_, "the loss gradient's seed", -1);
  check("seed", size() - 1);
  if (timeline_) end_primitive("seed", live_);
}

void ChainExecutor::backward(int i) {
  SPOOL_CHECK(i >= 0 && i < size() && rec_[size_t(i)], "chain executor: backward(", i,
              ") needs stage ", i, "'s record");
  for (int r : readers_[size_t(i) + 1])
    SPOOL_CHECK(r == i || !rec_[size_t(r)], "chain executor: backward(", i, ") before stage ", r,
                "'s, which reads x_", i + 1);
  const StageCost& s = p_.stages[size_t(i)];
  const int64_t within = std::max(live_ + s.backward_peak, live_);
  note_peak(live_ + s.backward_peak, "backward of", i);
  begin_primitive();
  // The real backward also frees the record, the gradient of x_{i+1} and x_{i+1} (but the
  // loss), as soon as nothing reads them: the account takes the same steps at once.
  if (real_) {
    std::optional<trace::Span> span;
    if (trace::on()) span.emplace("planner", "backward " + s.name);
    real_->backward_call(i);
  }
  live_ += s.backward_delta - p_.boundary_grad_bytes(i + 1);
  rec_[size_t(i)] = 0;
  if (i + 1 < size()) held_[size_t(i) + 1] = 0;  // no stage reads x_{i+1} again
  for (int j : inputs_[size_t(i)]) settle(j);
  settle(i + 1);
  check("backward", i);
  if (timeline_) end_primitive("backward " + s.name, within);
}

void ChainExecutor::evict(int i) {
  SPOOL_CHECK(i >= 0 && i < size() && rec_[size_t(i)], "chain executor: evict(", i,
              ") needs stage ", i, "'s record");
  const int64_t before = live_;
  begin_primitive();
  if (real_) {
    std::optional<trace::Span> span;
    if (trace::on()) span.emplace("planner", "evict " + p_.stages[size_t(i)].name);
    real_->drop_record(i);
  }
  live_ -= p_.stages[size_t(i)].internal_bytes;
  rec_[size_t(i)] = 0;
  for (int j : inputs_[size_t(i)]) settle(j);
  settle(i + 1);
  check("evict", i);
  if (timeline_) end_primitive("evict " + p_.stages[size_t(i)].name, before);
}

void ChainExecutor::hold(int j) {
  SPOOL_CHECK(alive(j), "chain executor: hold(", j, ") of a boundary that is not alive");
  if (real_) real_->hold(j);
  held_[size_t(j)] = 1;
}

void ChainExecutor::unhold(int j) {
  if (j == 0 || !held_[size_t(j)]) return;
  const int64_t before = live_;
  begin_primitive();
  if (real_) real_->unhold(j);
  held_[size_t(j)] = 0;
  settle(j);
  check("unhold", j);
  if (timeline_) end_primitive("release x_" + std::to_string(j), before);
}

Tensor ChainExecutor::loss() const { return real_ ? real_->x(size()) : Tensor(); }

ChainProfile profile_chain(Chain& chain) {
  const Device device = chain.input.device();  // the allocator that counts the step
  RealChain r(chain);
  // The profile is a real step: put the generators and the state back as they were, so the
  // step that follows draws and updates what a plain step would.
  const RngSnapshot rng(chain.generators);
  const ReplayScope untouched(&rng, chain.state);
  const int s = int(chain.stages.size());
  ChainProfile p;
  p.stages.resize(size_t(s));
  p.base_bytes = live_now(device);
  Tape& tape = Tape::current();
  for (int i = 0; i < s; ++i) {
    StageCost& c = p.stages[size_t(i)];
    c.name = chain.stages[size_t(i)].name;
    if (chain.stages[size_t(i)].inputs != std::vector<int>{i})
      c.inputs = chain.stages[size_t(i)].inputs;
    const std::vector<int> ins = p.inputs(i);
    for (int j : ins) r.hold(j);  // from the records that keep them
    int64_t m0 = live_now(device);
    reset_peak(device);
    r.forward(i, false);
    c.nograd_peak = memory_stats(device).peak_bytes - m0;
    c.out_bytes = live_now(device) - m0;
    r.unhold(i + 1);
    SPOOL_CHECK(live_now(device) == m0, "profile: stage '", c.name,
                "' keeps memory after a forward without graph (", live_now(device) - m0, " bytes)");
    m0 = live_now(device);
    reset_peak(device);
    tape.clear();
    const double t0 = now_ms();
    r.forward(i, true);
    c.forward_ms = now_ms() - t0;
    for (const auto& n : tape.entries()) c.flops += n->cost.flops;
    c.keep_peak = memory_stats(device).peak_bytes - m0;
    c.internal_bytes = live_now(device) - m0 - c.out_bytes;
    for (int j : ins)
      if (j > 0) r.unhold(j);  // the records keep them
  }
  tape.clear();
  int64_t m0 = live_now(device);
  r.seed();
  p.seed_bytes = live_now(device) - m0;
  for (int i = s - 1; i >= 0; --i) {
    StageCost& c = p.stages[size_t(i)];
    // backward_call frees the gradient of x_{i+1} and x_{i+1} itself (but the loss) inside;
    // the account keeps the planner's split: backward_delta - grad_bytes(i + 1) is the stage's
    // whole change, x_{i+1}'s bytes (dropped by the executor after the backward) aside.
    const int64_t grad = i + 1 < s ? r.grad_storage_bytes(i + 1) : p.seed_bytes;
    if (i + 1 < s) p.stages[size_t(i) + 1].grad_bytes = grad;
    m0 = live_now(device);
    reset_peak(device);
    r.backward_call(i);
    c.backward_peak = memory_stats(device).peak_bytes - m0;
    c.backward_delta = live_now(device) - m0 + grad + (i + 1 < s ? c.out_bytes : 0);
  }
  r.drop_grad(0);
  r.unhold(s);
  // What remains beyond the base is the parameter gradients.
  p.param_grad_bytes = live_now(device) - p.base_bytes;
  // `untouched` puts the generators and the state back as the profile found them.
  return p;
}

}  // namespace spool
