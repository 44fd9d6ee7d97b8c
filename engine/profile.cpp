#include "engine/profile.h"

#include <cstdio>
#include <unordered_map>

namespace spool {

int64_t StepProfile::saved_bytes() const {
  int64_t b = 0;
  for (const auto& o : ops) b += o.saved_bytes;
  return b;
}

double StepProfile::flops() const {
  double f = 0;
  for (const auto& o : ops) f += o.flops;
  return f;
}

double StepProfile::forward_ms() const {
  double t = 0;
  for (const auto& o : ops) t += o.forward_ms;
  return t;
}

std::string StepProfile::table() const {
  std::string out =
      "  #  op                    output B     saved B     MFLOP      ms  last read\n";
  char line[160];
  for (size_t i = 0; i < ops.size(); ++i) {
    const OpProfile& o = ops[i];
    std::snprintf(line, sizeof line, "%3zu  %-18s %11lld %11lld %9.2f %7.3f  %lld\n", i,
                  o.op.c_str(), (long long)o.output_bytes, (long long)o.saved_bytes, o.flops / 1e6,
                  o.forward_ms, (long long)o.last_read);
    out += line;
  }
  return out;
}

StepProfile profile_step(const std::function<Tensor()>& forward) {
  Tape& tape = Tape::current();
  tape.clear();
  tape.lap_ms();  // start the clock
  StepProfile p;
  p.loss = forward();
  const auto nodes = tape.entries();
  std::unordered_map<const Node*, int64_t> index;
  for (size_t i = 0; i < nodes.size(); ++i) index[nodes[i].get()] = int64_t(i);
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = *nodes[i];
    OpProfile o;
    o.op = n.op;
    for (const auto& out : n.outputs)  // an output written over an input's buffer is not new
      if (!out.in_place) o.output_bytes += numel(out.shape) * int64_t(itemsize(out.dtype));
    o.saved_bytes = n.saved_bytes();
    o.flops = n.cost.flops;
    o.bytes = n.cost.bytes;
    o.forward_ms = n.forward_ms;
    for (const auto& e : n.next)
      if (e.node && index.count(e.node.get())) o.reads.push_back(index[e.node.get()]);
    p.ops.push_back(o);
  }
  for (size_t i = 0; i < p.ops.size(); ++i)
    for (int64_t r : p.ops[i].reads) p.ops[size_t(r)].last_read = int64_t(i);
  return p;
}

}  // namespace spool
