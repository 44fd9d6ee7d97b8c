// Tape-based autograd.
//
// Every differentiable op records one Node (a tape entry): its name, edges to where its inputs'
// gradients go, the tensors it saved for backward, a backward function and a cost.
// Output tensors own their node; a node owns the nodes of its inputs, so a graph lives exactly as
// long as something can still call backward on it. The thread-local Tape keeps the order in which
// nodes were recorded; backward() runs the reachable nodes in reverse of that order.
//
// Rule: backward functions return one gradient per input (an undefined Tensor where the input
// needs none) with exactly the input's shape; they run with recording off.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace spool {

// What an op's forward costs, for the planner's profiles (StageCost::flops). A negative value
// asks record() to estimate: one flop per output element.
struct Cost {
  double flops = -1;  // floating-point operations of the forward
};

// A tensor saved for backward, with the storage version it had when saved.
struct SavedTensor {
  Tensor tensor;
  uint64_t version = 0;
};

// Which inputs need a gradient; a backward function may skip work for the others.
using Needs = std::vector<bool>;
using BackwardFn =
    std::function<Tensors(const Tensors& saved, const Tensors& grad_outputs, const Needs& needs)>;

struct Node {
  struct Edge {
    std::shared_ptr<Node> node;  // the input was made by this node's output `output_nr`
    int output_nr = 0;
    std::shared_ptr<TensorImpl> leaf;  // or the input is a leaf that requires grad
    bool active() const { return node || leaf; }
  };
  struct OutputInfo {
    Shape shape;
    DType dtype;
    Device device;
    bool in_place = false;  // written over an input's buffer (allocates nothing)
  };

  std::string op;
  uint64_t seq = 0;        // recording order
  std::vector<Edge> next;  // one per input
  std::vector<OutputInfo> outputs;
  std::vector<SavedTensor> saved;
  BackwardFn backward;
  Cost cost;
  bool released = false;  // backward ran and freed the saved tensors

  int64_t saved_bytes() const;
};

// Recording on/off for this thread. NoGrad turns it off for its scope.
bool grad_enabled();
class NoGrad {
 public:
  NoGrad();
  ~NoGrad();
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;

 private:
  bool prev_;
};

// Turns recording back on for its scope (checkpoint replays run inside a backward).
class EnableGrad {
 public:
  EnableGrad();
  ~EnableGrad();
  EnableGrad(const EnableGrad&) = delete;
  EnableGrad& operator=(const EnableGrad&) = delete;

 private:
  bool prev_;
};

// True when recording is on and some input requires grad: the op must call record().
bool needs_grad(const Tensors& inputs);

// Appends a tape entry for an op that made `outputs` from `inputs`, saving `saved`. Does nothing
// unless needs_grad(inputs). Marks the outputs as requiring grad.
void record(const char* op, const Tensors& inputs, const Tensors& outputs, const Tensors& saved,
            BackwardFn backward, Cost cost = {});

// As record(), but whenever recording is on, even if no input requires grad: for checkpoint(),
// whose function may use parameters that are not among its inputs.
void record_always(const char* op, const Tensors& inputs, const Tensors& outputs,
                   const Tensors& saved, BackwardFn backward, Cost cost = {});

// Called by backward() on the thread that runs it, for each leaf (a parameter) once the running
// backward has passed it the last gradient it will: every node of the backward's graph that has
// an edge to the leaf has run. Its .grad is then final unless another backward (a checkpointed
// region's replay, a second loss) adds to it. A leaf some of whose edges are from nodes that no
// gradient reached is reported when backward ends, if it received a gradient; a leaf that received
// none is not reported. A root that is itself a leaf is reported at once. Data parallel training
// (dist/ddp.h) starts reducing a bucket of gradients as soon as every parameter in it is reported,
// while backward goes on. Thread-local; an empty function removes it. Returns the hook it replaces.
using GradReadyHook = std::function<void(TensorImpl& leaf)>;
GradReadyHook set_grad_ready_hook(GradReadyHook hook);

// Accumulates d(root)/d(leaf) into every leaf's grad. A non-scalar root needs `grad`. Unless
// retain_graph, the saved tensors are freed as backward passes them.
void backward(const Tensor& root, const Tensor& grad = {}, bool retain_graph = false);
// Several roots at once, each with its gradient (all required, same shapes as the roots).
// The roots and gradients are the backward's own (pass them with std::move to let it free each
// gradient, and each root's storage, as soon as the last node reading it has run).
void backward(Tensors roots, Tensors grads, bool retain_graph = false);

// The gradients of `outputs` (each seeded with its entry of grad_outputs) with respect to
// `inputs`, returned instead of accumulated into the inputs' .grad: the sub-backward of every
// replay (checkpoint, checkpoint_in_parts, the planner's chain executor). `inputs` must be leaves;
// one that is undefined, does not require grad or is not reached gets an undefined gradient, and
// whatever .grad an input held before is put back. Every other leaf the outputs reach (a
// module's parameters) accumulates into its .grad as in backward(). Outputs that do not require
// grad are skipped. Outputs and seeds are the backward's own, as for backward().
Tensors grad(Tensors outputs, Tensors grad_outputs, const Tensors& inputs,
             bool retain_graph = false);

// True when g's handle is the only one reaching its buffer (one contiguous tensor owning its
// whole storage, no autograd history). backward() hands each node the gradients flowing into
// it, and when a gradient was made for that node alone nothing else holds it: the node's
// backward may then write its input's gradient over it instead of allocating.
bool sole_owner(const Tensor& g);

// Refuses an in-place write to `t` while recording would be needed (the op names itself).
void check_inplace(const Tensor& t, const char* op);

// The thread's record of tape entries in order, for profiling and planning.
class Tape {
 public:
  static Tape& current();
  // Live entries recorded since the last clear(), oldest first.
  std::vector<std::shared_ptr<Node>> entries() const;
  void clear();
  void append(const std::shared_ptr<Node>& node);
  uint64_t next_seq() { return seq_++; }

 private:
  std::vector<std::weak_ptr<Node>> entries_;
  uint64_t seq_ = 0;
  size_t compact_at_ = 1024;
};

}  // namespace spool
