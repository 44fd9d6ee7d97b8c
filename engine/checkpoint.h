// Activation checkpointing by hand: checkpoint(fn, inputs) runs fn without recording, so none of
// its intermediates outlive the forward, and records a single tape entry whose backward replays
// fn with recording on and backpropagates through the replay. The random generators' states are
// restored for the replay, so dropout inside fn draws the same masks (gradients equal those of
// the plain run). Checkpoints nest.
//
// fn is kept until backward and called again there: capture by value, never references to
// locals of the caller.
#pragma once
#include <functional>
#include <optional>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace spool {

// A forward run again as it first ran, for every replay (checkpoint, checkpoint_in_parts, the
// planner's chain executor): the generators put back to `first` (as the first forward found
// them; null: left alone) and, when the scope ends, back where the step has them; the tensors
// the forward updates in place (`state`: BatchNorm's running statistics) put back as they were,
// so a replay changes nothing the step sees, also when it throws. The state's copies are host
// memory outside every allocator's account (device state goes through a CPU tensor, which the
// device's allocator does not count), so a replay's bytes are the forward's alone. `state` must
// outlive the scope.
class ReplayScope {
 public:
  ReplayScope(const RngSnapshot* first, const Tensors& state);
  ~ReplayScope();
  ReplayScope(const ReplayScope&) = delete;
  ReplayScope& operator=(const ReplayScope&) = delete;

 private:
  std::optional<RngSnapshot> now_;
  const Tensors& state_;
  std::vector<std::vector<char>> saved_;
};

using CheckpointFn = std::function<Tensors(const Tensors&)>;

// `generators` lists the generators fn draws from besides the default one. `state` lists
// tensors fn updates in place (BatchNorm's running statistics): the replay's updates are
// undone, so they change once, as in the plain run.
Tensors checkpoint(const CheckpointFn& fn, const Tensors& inputs,
                   const std::vector<Generator*>& generators = {}, const Tensors& state = {});
Tensor checkpoint(const std::function<Tensor(const Tensor&)>& fn, const Tensor& input,
                  const std::vector<Generator*>& generators = {}, const Tensors& state = {});

// A checkpoint whose backward replays its output in slices. The forward runs `whole` on input
// without recording (at whole's speed); the backward replays parts[k](input), which must equal
// slice k of whole(input) along dim `dim` (the slices in order, covering it), one part at a
// time, and backpropagates each from the matching slice of the output's gradient. So the
// backward holds one part's intermediates at once: for a computation whose output channels are
// independent (a convolution, per-channel BatchNorm, relu, pooling), parts over channel groups
// bound the backward's memory by a group's. fn must not draw random numbers. `state` as for
// checkpoint: every part's updates are undone.
Tensor checkpoint_in_parts(const std::function<Tensor(const Tensor&)>& whole,
                           const std::vector<std::function<Tensor(const Tensor&)>>& parts,
                           int64_t dim, const Tensor& input, const Tensors& state = {});

}  // namespace spool
