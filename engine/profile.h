// One step's graph as the memory planner sees it: every tape entry the forward recorded, with
// its output and saved bytes, the entries whose outputs it reads, when its own outputs are last
// read, its cost record (FLOPs, bytes) and its measured forward time.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "engine/autograd.h"

namespace spool {

struct OpProfile {
  std::string op;
  int64_t output_bytes = 0;
  int64_t saved_bytes = 0;  // held for backward (may include inputs owned by other entries)
  double flops = 0, bytes = 0;
  double forward_ms = 0;       // time from the previous entry to this one
  std::vector<int64_t> reads;  // indices of the entries whose outputs this one takes as inputs
  int64_t last_read = -1;      // index of the last entry reading this one's outputs (-1: none)
};

struct StepProfile {
  std::vector<OpProfile> ops;  // in recording order
  Tensor loss;                 // what forward returned, graph intact (call backward on it)
  int64_t saved_bytes() const;
  double flops() const;
  double forward_ms() const;
  std::string table() const;  // one line per entry
};

// Runs forward (which builds the graph of one step and returns its loss) on a cleared tape and
// profiles every entry it recorded.
StepProfile profile_step(const std::function<Tensor()>& forward);

}  // namespace spool
