#include "engine/autograd.h"
#include "engine/trace.h"

#include <algorithm>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "engine/backend.h"
#include "engine/factory.h"

namespace spool {

namespace {
thread_local bool t_grad_enabled = true;
}

bool grad_enabled() { return t_grad_enabled; }
NoGrad::NoGrad() : prev_(t_grad_enabled) { t_grad_enabled = false; }
NoGrad::~NoGrad() { t_grad_enabled = prev_; }
EnableGrad::EnableGrad() : prev_(t_grad_enabled) { t_grad_enabled = true; }
EnableGrad::~EnableGrad() { t_grad_enabled = prev_; }

int64_t Node::saved_bytes() const {
  int64_t b = 0;
  for (const auto& s : saved)
    if (s.tensor.defined()) b += int64_t(s.tensor.nbytes());
  return b;
}

bool needs_grad(const Tensors& inputs) {
  if (!t_grad_enabled) return false;
  for (const auto& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

Tape& Tape::current() {
  thread_local Tape tape;
  return tape;
}

void Tape::append(const std::shared_ptr<Node>& node) {
  if (entries_.size() >= compact_at_) {
    std::erase_if(entries_, [](const auto& w) { return w.expired(); });
    compact_at_ = std::max<size_t>(1024, 2 * entries_.size());
  }
  entries_.push_back(node);
}

std::vector<std::shared_ptr<Node>> Tape::entries() const {
  std::vector<std::shared_ptr<Node>> out;
  for (const auto& w : entries_)
    if (auto n = w.lock()) out.push_back(std::move(n));
  return out;
}

void Tape::clear() { entries_.clear(); }

namespace {
void append_node(const char* op, const Tensors& inputs, const Tensors& outputs,
                 const Tensors& saved, BackwardFn backward, Cost cost);
}  // namespace

namespace {
// The op's forward span in a trace (engine/trace.h), recorded or not.
void trace_op(const char* op, const Tensors& inputs, const Tensors& outputs, Cost cost) {
  if (!trace::on()) return;
  if (cost.flops < 0) {
    cost.flops = 0;
    for (const auto& y : outputs) cost.flops += double(y.numel());
  }
  trace::detail::op_recorded(op, inputs, outputs, cost.flops);
}
}  // namespace

void record(const char* op, const Tensors& inputs, const Tensors& outputs, const Tensors& saved,
            BackwardFn backward, Cost cost) {
  trace_op(op, inputs, outputs, cost);
  if (needs_grad(inputs)) append_node(op, inputs, outputs, saved, std::move(backward), cost);
}

void record_always(const char* op, const Tensors& inputs, const Tensors& outputs,
                   const Tensors& saved, BackwardFn backward, Cost cost) {
  trace_op(op, inputs, outputs, cost);
  if (t_grad_enabled) append_node(op, inputs, outputs, saved, std::move(backward), cost);
}

namespace {
void append_node(const char* op, const Tensors& inputs, const Tensors& outputs,
                 const Tensors& saved, BackwardFn backward, Cost cost) {
  auto node = std::make_shared<Node>();
  node->op = op;
  Tape& tape = Tape::current();
  node->seq = tape.next_seq();
  node->next.resize(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!x.defined() || !x.requires_grad()) continue;
    if (x.grad_fn())
      node->next[i] = {x.grad_fn(), x.impl().output_nr, nullptr};
    else
      node->next[i] = {nullptr, 0, x.impl_ptr()};
  }
  for (const auto& s : saved) {
    // Saved tensors carry no history, so an op saving its own output makes no cycle.
    if (s.defined())
      node->saved.push_back({s.detach(), s.storage()->version()});
    else
      node->saved.push_back({});
  }
  node->backward = std::move(backward);
  if (cost.flops < 0) {
    cost.flops = 0;
    for (const auto& y : outputs) cost.flops += double(y.numel());
  }
  node->cost = cost;
  for (size_t k = 0; k < outputs.size(); ++k) {
    const Tensor& y = outputs[k];
    bool in_place = false;
    for (const Tensor& x : inputs)
      in_place = in_place || (x.defined() && x.storage() == y.storage());
    node->outputs.push_back({y.shape(), y.dtype(), y.device(), in_place});
    TensorImpl& impl = y.impl();
    SPOOL_CHECK(impl.grad_fn == nullptr && !impl.requires_grad, op, ": internal error: output ", k,
                " already has autograd history");
    impl.requires_grad = true;
    impl.grad_fn = node;
    impl.output_nr = int(k);
  }
  tape.append(node);
}
}  // namespace

void check_inplace(const Tensor& t, const char* op) {
  SPOOL_CHECK(!(t_grad_enabled && t.requires_grad()), op, ": in-place write to a ", describe(t),
              " tensor that requires grad; do it under NoGrad or on a detached copy");
}

namespace {

thread_local GradReadyHook t_grad_ready;

void accumulate_into_leaf(TensorImpl& leaf, Tensor&& g) {
  if (!leaf.grad) {
    // The first gradient of the step: adopted as it is when nothing else can see it (its own
    // whole, contiguous buffer, referenced only here), as PyTorch's AccumulateGrad steals it;
    // otherwise (it may alias another tensor) copied into a fresh buffer. Adopting saves a copy
    // of every parameter's gradient at the moment it is made, which for large layers is the peak
    // of their backward.
    if (sole_owner(g)) {
      leaf.grad = g.impl_ptr();
      g = Tensor();
      return;
    }
    Tensor copy = empty(g.shape(), g.dtype(), g.device());
    backend(g.device()).copy(g, copy);
    leaf.grad = copy.impl_ptr();
  } else {
    Tensor acc(leaf.grad);
    SPOOL_CHECK(acc.shape() == g.shape(), "backward: gradient of shape ", str(g.shape()),
                " for a leaf of shape ", str(acc.shape()));
    backend(g.device()).binary(BinaryOp::add, acc, g, acc);
    acc.storage()->bump_version();
  }
}

Tensor add_grads(const Tensor& a, const Tensor& b) {
  Tensor out = empty(a.shape(), a.dtype(), a.device());
  backend(a.device()).binary(BinaryOp::add, a, b, out);
  return out;
}

}  // namespace

Tensors grad(Tensors outputs, Tensors grad_outputs, const Tensors& inputs, bool retain_graph) {
  SPOOL_CHECK(outputs.size() == grad_outputs.size(), "grad: ", outputs.size(), " outputs but ",
              grad_outputs.size(), " gradients");
  for (size_t i = 0; i < inputs.size(); ++i)
    SPOOL_CHECK(!inputs[i].defined() || inputs[i].is_leaf(), "grad: input ", i, " (",
                describe(inputs[i]), ") is not a leaf");
  // The inputs' own gradients are set aside, so each input's .grad holds this backward's part
  // alone, and put back after (also when the backward throws).
  struct SetAside {
    const Tensors& inputs;
    std::vector<std::shared_ptr<TensorImpl>> before;
    explicit SetAside(const Tensors& in) : inputs(in) {
      for (const Tensor& x : in) {
        before.push_back(x.defined() ? x.impl().grad : nullptr);
        if (x.defined()) x.impl().grad.reset();
      }
    }
    ~SetAside() {
      for (size_t i = 0; i < inputs.size(); ++i)
        if (inputs[i].defined()) inputs[i].impl().grad = std::move(before[i]);
    }
  } aside(inputs);
  Tensors roots, seeds;
  for (size_t k = 0; k < outputs.size(); ++k)
    if (outputs[k].defined() && outputs[k].requires_grad()) {
      roots.push_back(std::move(outputs[k]));
      seeds.push_back(std::move(grad_outputs[k]));
    }
  outputs.clear();
  grad_outputs.clear();
  if (!roots.empty()) backward(std::move(roots), std::move(seeds), retain_graph);
  Tensors out;
  for (const Tensor& x : inputs) {
    out.push_back(x.defined() && x.requires_grad() ? x.grad() : Tensor());
    if (x.defined()) x.impl().grad.reset();
  }
  return out;
}

bool sole_owner(const Tensor& g) {
  return g.defined() && g.impl_ptr().use_count() == 1 && g.storage().use_count() == 1 &&
         !g.requires_grad() && !g.grad_fn() && g.offset() == 0 && g.is_contiguous() &&
         g.nbytes() == g.storage()->nbytes();
}

GradReadyHook set_grad_ready_hook(GradReadyHook hook) {
  std::swap(hook, t_grad_ready);
  return hook;
}

namespace {
// A trace's "backward" phase (engine/trace.h) around the outermost backward on this thread: the
// seed, every node and the leaves' accumulation, whoever called it.
thread_local int t_backward_depth = 0;
class BackwardPhase {
 public:
  BackwardPhase() {
    if (t_backward_depth++ == 0 && trace::on()) span_.emplace("phase", "backward");
  }
  ~BackwardPhase() { --t_backward_depth; }
  BackwardPhase(const BackwardPhase&) = delete;
  BackwardPhase& operator=(const BackwardPhase&) = delete;

 private:
  std::optional<trace::Span> span_;
};
}  // namespace

void backward(const Tensor& root, const Tensor& grad, bool retain_graph) {
  BackwardPhase phase;
  SPOOL_CHECK(root.requires_grad(), "backward: the ", describe(root),
              " tensor does not require grad (no input of the computation requires grad, or it "
              "ran under NoGrad)");
  Tensor seed = grad;
  if (!seed.defined()) {
    SPOOL_CHECK(root.numel() == 1, "backward: the output is ", describe(root),
                "; a non-scalar output needs an explicit gradient of the same shape");
    seed = full(root.shape(), 1.0, root.dtype(), root.device());
  }
  Tensors seeds;
  seeds.push_back(std::move(seed));
  backward(Tensors{root}, std::move(seeds), retain_graph);
}

void backward(Tensors roots, Tensors grads, bool retain_graph) {
  BackwardPhase phase;
  SPOOL_CHECK(roots.size() == grads.size(), "backward: ", roots.size(), " roots but ", grads.size(),
              " gradients");
  NoGrad no_grad;
  std::unordered_map<Node*, Tensors> pending;
  std::vector<Node*> stack;
  std::unordered_set<Node*> seen;
  std::vector<std::shared_ptr<Node>> root_nodes;  // alive without the roots' handles
  for (size_t r = 0; r < roots.size(); ++r) {     // every root checked before any is seeded
    const Tensor &root = roots[r], &seed = grads[r];
    SPOOL_CHECK(root.requires_grad(), "backward: root ", r, " (", describe(root),
                ") does not require grad");
    SPOOL_CHECK(seed.defined() && seed.shape() == root.shape() && seed.dtype() == root.dtype(),
                "backward: gradient is ", describe(seed), " for an output that is ",
                describe(root));
  }
  for (size_t r = 0; r < roots.size(); ++r) {
    const Tensor& root = roots[r];
    Tensor& seed = grads[r];
    if (root.is_leaf()) {
      accumulate_into_leaf(root.impl(), std::move(seed));
      if (t_grad_ready) t_grad_ready(root.impl());
      continue;
    }
    root_nodes.push_back(root.grad_fn());
    Node* n = root_nodes.back().get();
    Tensors& slot = pending[n];
    slot.resize(n->outputs.size());
    Tensor& acc = slot[size_t(root.impl().output_nr)];
    acc = acc.defined() ? add_grads(acc, seed) : std::move(seed);
    if (seen.insert(n).second) stack.push_back(n);
  }
  // From here the nodes hold what backward needs: a root's storage, and a seed once its node
  // has run, are freed as soon as nothing else holds them.
  roots.clear();
  grads.clear();

  // Every node reachable from the roots, newest first.
  std::vector<Node*> order;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    order.push_back(n);
    for (const auto& e : n->next)
      if (e.node && seen.insert(e.node.get()).second) stack.push_back(e.node.get());
  }
  std::sort(order.begin(), order.end(), [](Node* a, Node* b) { return a->seq > b->seq; });
  // With a grad-ready hook: how many edges of the graph's nodes lead to each leaf.
  // Leaves that received a gradient while edges to them were left (from nodes no gradient
  // reached) are reported when backward ends, so no gradient goes unreported.
  std::unordered_map<TensorImpl*, int64_t> leaf_edges;
  std::vector<TensorImpl*> received;
  if (t_grad_ready)
    for (Node* n : order)
      for (const auto& e : n->next)
        if (e.active() && e.leaf) ++leaf_edges[e.leaf.get()];
  const auto edge_done = [&](TensorImpl& leaf, bool got) {
    if (!t_grad_ready) return;
    if (--leaf_edges[&leaf] == 0)
      t_grad_ready(leaf);
    else if (got)
      received.push_back(&leaf);
  };

  for (Node* n : order) {
    auto it = pending.find(n);
    if (it == pending.end()) continue;  // nothing flows into this node
    SPOOL_CHECK(!n->released, "backward: the tape entry '", n->op,
                "' was freed by an earlier backward; pass retain_graph=true to the first "
                "backward to run backward twice");
    Tensors grads = std::move(it->second);
    pending.erase(it);
    grads.resize(n->outputs.size());
    for (size_t k = 0; k < grads.size(); ++k)
      if (!grads[k].defined()) {
        const auto& o = n->outputs[k];
        grads[k] = zeros(o.shape, o.dtype, o.device);
      }
    Tensors saved;
    saved.reserve(n->saved.size());
    for (size_t k = 0; k < n->saved.size(); ++k) {
      const SavedTensor& s = n->saved[k];
      if (s.tensor.defined())
        SPOOL_CHECK(s.tensor.storage()->version() == s.version, "backward: ", n->op,
                    ": saved tensor ", k, " (", describe(s.tensor),
                    ") was modified in place after it was saved (version ", s.version, " -> ",
                    s.tensor.storage()->version(), "); clone it before the in-place write");
      saved.push_back(s.tensor);
    }
    Needs needs(n->next.size());
    for (size_t i = 0; i < needs.size(); ++i) needs[i] = n->next[i].active();
    Tensors in_grads;
    {
      trace::OpScope span("backward", n->op);
      in_grads = n->backward(saved, grads, needs);
      // Its incoming gradients, what it saved and the gradients it returns.
      span.io(grads, in_grads, saved);
    }
    // The node's own handles go first: a gradient it passed on (or wrote its result over) is
    // then held by in_grads alone, and a leaf can adopt it without a copy.
    grads.clear();
    saved.clear();
    SPOOL_CHECK(in_grads.size() == n->next.size(), "backward: ", n->op, " returned ",
                in_grads.size(), " gradients for ", n->next.size(), " inputs");
    if (!retain_graph) {
      n->released = true;
      n->saved.clear();
      n->backward = nullptr;
    }
    for (size_t i = 0; i < n->next.size(); ++i) {
      const Node::Edge& e = n->next[i];
      const Tensor& g = in_grads[i];
      if (e.active() && e.leaf && !g.defined()) edge_done(*e.leaf, false);
      if (!e.active() || !g.defined()) continue;
      if (e.leaf) {
        SPOOL_CHECK(g.shape() == e.leaf->shape, "backward: ", n->op, " gave a gradient of shape ",
                    str(g.shape()), " for input ", i, " of shape ", str(e.leaf->shape));
        accumulate_into_leaf(*e.leaf, std::move(in_grads[i]));
        edge_done(*e.leaf, true);
        continue;
      }
      const auto& want = e.node->outputs[size_t(e.output_nr)].shape;
      SPOOL_CHECK(g.shape() == want, "backward: ", n->op, " gave a gradient of shape ",
                  str(g.shape()), " for input ", i, " of shape ", str(want));
      Tensors& slot = pending[e.node.get()];
      slot.resize(e.node->outputs.size());
      Tensor& acc = slot[size_t(e.output_nr)];
      acc = acc.defined() ? add_grads(acc, g) : g;
    }
  }
  for (TensorImpl* leaf : received)
    if (leaf_edges[leaf] > 0) {
      leaf_edges[leaf] = 0;  // once
      t_grad_ready(*leaf);
    }
}

}  // namespace spool
