// A training step as a chain (or graph) of stages, and the executor that runs it under a memory
// plan.
//
// The planner's graph is the model's chain of stages (a GPT's embedding, attention and MLP
// halves of each block, and head; a ResNet's stem, basic blocks and head; an MLP's layers): stage
// i maps x_i to x_{i+1}, and the last stage returns the scalar loss. A stage may instead read
// several earlier boundaries (skip connections, a U-Net's encoder features): the stages then form
// a graph whose nodes are the boundaries, numbered in topological order. Inside a stage the tape
// records as usual; between stages the executor passes tensors and gradients itself, so it
// decides, stage by stage, whether a forward keeps its graph (its internal activations live until
// its backward) or runs without one (and is replayed from its input during backward).
//
// Memory is accounted exactly. profile_chain() runs one plain step and measures, for every
// stage, what each primitive operation does to the allocator's live bytes (its peak above the
// start and its net change). The executor performs primitives only; every primitive updates a
// shadow account built from those measurements, and, when a chain is attached, also does the
// work. A prediction is the executor run without a chain; an execution is the same program with
// one, and its shadow can be compared with the allocator after every primitive.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace spool {

// The boundaries stage i reads, given its `inputs` (empty: x_i alone).
inline std::vector<int> stage_reads(const std::vector<int>& inputs, int i) {
  return inputs.empty() ? std::vector<int>{i} : inputs;
}

struct Stage {
  Stage() = default;
  Stage(std::string n, std::function<Tensor(const Tensor&)> f)
      : name(std::move(n)), fn(std::move(f)) {}
  Stage(std::string n, std::vector<int> in, std::function<Tensor(const Tensors&)> f)
      : name(std::move(n)), inputs(std::move(in)), fn_inputs(std::move(f)) {}
  std::string name;
  std::function<Tensor(const Tensor&)> fn;  // a chain stage: x_i -> x_{i+1}
  // A graph stage reads the boundaries `inputs` (increasing, distinct, each <= i) and returns
  // x_{i+1} from `fn_inputs`; `fn` is then unused. Every boundary x_1 .. x_{S-1} must be read.
  std::vector<int> inputs;
  std::function<Tensor(const Tensors&)> fn_inputs;
};

struct Chain {
  std::vector<Stage> stages;           // the last one returns the scalar loss
  Tensor input;                        // x_0: the batch; it needs no gradient
  std::vector<Generator*> generators;  // drawn from inside stages, besides the default one
  // Tensors the stages update in place (BatchNorm's running statistics): a replay's updates
  // are undone, so they change once per step as in the plain run. Contiguous, on the batch's
  // device (whose allocator counts the step's bytes).
  Tensors state;
};

// One stage's measured behaviour. Bytes are the allocator's; peaks are above the live bytes at
// the primitive's start.
struct StageCost {
  std::string name;
  std::vector<int> inputs;     // the boundaries it reads; empty: x_i alone (a chain stage)
  int64_t out_bytes = 0;       // storage of the output x_{i+1}
  int64_t grad_bytes = 0;      // storage of the gradient of boundary x_i (made by its readers)
  int64_t internal_bytes = 0;  // what a forward with graph keeps besides input and output
  int64_t keep_peak = 0;       // forward with graph
  int64_t nograd_peak = 0;     // forward without graph
  // The backward starts with its record, x_{i+1} and x_{i+1}'s gradient present, and frees
  // the latter two (but the loss) as soon as the last op reading them has run.
  int64_t backward_peak = 0;  // above the live bytes at its start
  // The backward's live change is backward_delta - (gradient of x_{i+1}) (input and parameter
  // gradients made, internals freed), and x_{i+1}'s out_bytes leave when nothing holds x_{i+1}
  // (after the backward; the loss never).
  int64_t backward_delta = 0;
  double forward_ms = 0;
  double flops = 0;  // of the forward, from the tape's cost records
};

struct ChainProfile {
  std::vector<StageCost> stages;
  int64_t base_bytes = 0;  // live at the start of the step (parameters, optimizer state, batch)
  int64_t seed_bytes = 0;  // the loss gradient seed
  int64_t param_grad_bytes = 0;  // parameter gradients the backward made
  int size() const { return int(stages.size()); }
  // Bytes of boundary x_j (x_0, the batch, is part of the base) and of its gradient.
  int64_t boundary_bytes(int j) const { return j == 0 ? 0 : stages[size_t(j - 1)].out_bytes; }
  int64_t boundary_grad_bytes(int j) const {
    return j == size() ? seed_bytes : stages[size_t(j)].grad_bytes;
  }
  // The boundaries stage i reads.
  std::vector<int> inputs(int i) const { return stage_reads(stages[size_t(i)].inputs, i); }
  // True when every stage reads only the boundary before it.
  bool is_chain() const;
  // Throws spool::Error naming the first stage whose inputs are malformed (out of order, from
  // later stages) and the first boundary no stage reads.
  void check_graph() const;
};

class RealChain;

// One primitive of a step as it ran (ChainExecutor::set_timeline): the account's bytes against
// the allocator's, in the allocator's terms (everything live, the step's start included).
struct TimelinePoint {
  std::string primitive;   // "forward (kept) h.0.attn", "replay (dropped) ...", "backward ...", ...
  bool recompute = false;  // a replay of a forward that already ran this step
  int64_t predicted_peak = 0, measured_peak = 0;  // within the primitive
  int64_t predicted_live = 0, measured_live = 0;  // after it
};

// Runs primitives on a chain's stages (or only accounts for them when `chain` is null).
// Handles: x_j is alive while the executor holds it, or a record of its producer (stage j-1) or
// of a stage that reads it holds it.
class ChainExecutor {
 public:
  ChainExecutor(const ChainProfile& profile, Chain* chain);
  ~ChainExecutor();
  ChainExecutor(const ChainExecutor&) = delete;
  ChainExecutor& operator=(const ChainExecutor&) = delete;

  int size() const { return int(held_.size()) - 1; }
  const ChainProfile& profile() const { return p_; }
  // Stage i from its inputs (which must be held; x_{i+1} must not be alive). With keep, the
  // stage's record (inputs, output, graph) stays until backward(i) or evict(i). Holds x_{i+1}.
  void forward(int i, bool keep);
  // Loss gradient seed: needs the last stage's record.
  void seed();
  // Stage i's backward: needs its record and the gradient of x_{i+1}; adds to the gradients of
  // its inputs (but x_0) and frees the record, the gradient of x_{i+1} and x_{i+1} itself (but
  // the loss x_S), ending any hold on it: each is freed as soon as the last op reading it has
  // run. Backwards run from the last stage down, so every reader of x_{i+1} has added its part
  // and needs x_{i+1} no more.
  void backward(int i);
  // Drops stage i's record before its backward (its forward must be replayed).
  void evict(int i);
  void hold(int j);  // x_j must be alive
  void unhold(int j);

  bool recorded(int i) const { return rec_[size_t(i)]; }
  bool held(int j) const { return held_[size_t(j)]; }
  bool alive(int j) const;
  int64_t live() const { return live_; }
  int64_t peak() const { return peak_; }
  // The primitive the peak was reached in ("backward of 'layer1.0'"; "the step's start" before
  // any primitive raised it).
  const std::string& peak_at() const { return peak_at_; }
  double recompute_ms() const { return recompute_ms_; }
  double recompute_flops() const { return recompute_flops_; }
  // The loss (a scalar tensor) when running a chain, while x_S is held.
  Tensor loss() const;
  // With a chain: the first primitive after which the allocator's live bytes differed from the
  // shadow account (empty when none did).
  const std::string& mismatch() const { return mismatch_; }
  // With a chain: each primitive from now on appends its point to `timeline` (the allocator's
  // peak is reset before each primitive to measure it; null: stop).
  void set_timeline(std::vector<TimelinePoint>* timeline) { timeline_ = timeline; }

 private:
  // The timeline's bracket around a primitive: before it, then after it (with its label and the
  // account's peak within it).
  void begin_primitive();
  void end_primitive(std::string label, int64_t predicted_peak, bool recompute = false);
  void settle(int j);  // drops x_j from the account once nothing holds it
  void check(const char* what, int i);
  void note_peak(int64_t bytes, const char* what, int i);
  const ChainProfile& p_;
  std::unique_ptr<RealChain> real_;
  std::vector<std::vector<int>> inputs_, readers_;  // per stage; per boundary
  std::vector<char> held_, rec_, forwarded_;
  int64_t live_ = 0, peak_ = 0, real_offset_ = 0;
  double recompute_ms_ = 0, recompute_flops_ = 0;
  std::string mismatch_, peak_at_;
  std::vector<TimelinePoint>* timeline_ = nullptr;
};

// Runs one plain step of the chain (every stage keeps its graph), measuring every primitive,
// and puts the generators and the chain's state back as they were. Parameter gradients
// accumulate as in any backward; call zero_grad() before (the profile's backward deltas count
// the gradients it makes) and after.
ChainProfile profile_chain(Chain& chain);

}  // namespace spool
