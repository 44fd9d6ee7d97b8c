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
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace spool {

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
