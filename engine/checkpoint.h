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

// `generators` lists the generators fn draws from besides the default one.
Tensors checkpoint(const CheckpointFn& fn, const Tensors& inputs,
                   const std::vector<Generator*>& generators = {});
Tensor checkpoint(const std::function<Tensor(const Tensor&)>& fn, const Tensor& input,
                  const std::vector<Generator*>& generators = {});

}  // namespace spool
