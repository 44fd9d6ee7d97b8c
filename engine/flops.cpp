#include "engine/flops.h"

#include "engine/autograd.h"

namespace spool {

double forward_flops(const std::function<Tensor()>& forward) {
  const uint64_t before = Tape::current().next_seq();
  const Tensor out = forward();  // holds the graph, and so its nodes, while they are summed
  double flops = 0;
  for (const auto& n : Tape::current().entries())
    if (n->seq > before) flops += n->cost.flops;
  return flops;
}

}  // namespace spool
