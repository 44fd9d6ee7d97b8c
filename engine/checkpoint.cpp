#include "engine/checkpoint.h"

#include <cstring>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/factory.h"

namespace spool {

ReplayScope::ReplayScope(const RngSnapshot* first, const Tensors& state) : state_(state) {
  for (const Tensor& t : state) {
    Tensor host = t;
    if (t.device() != Device::cpu()) {
      host = empty(t.shape(), t.dtype(), Device::cpu());
      copy_across(t, host);
    }
    const char* p = static_cast<const char*>(host.raw());
    saved_.emplace_back(p, p + host.nbytes());
  }
  if (first) {
    // RngSnapshot lists the default generator first and adds it itself.
    now_.emplace(std::vector<Generator*>(first->gens.begin() + 1, first->gens.end()));
    first->restore();
  }
}

ReplayScope::~ReplayScope() {
  if (now_) now_->restore();
  for (size_t k = 0; k < saved_.size(); ++k) {
    const Tensor& t = state_[k];
    if (t.device() == Device::cpu()) {
      std::memcpy(t.raw(), saved_[k].data(), saved_[k].size());
      continue;
    }
    Tensor host = empty(t.shape(), t.dtype(), Device::cpu());
    std::memcpy(host.raw(), saved_[k].data(), saved_[k].size());
    copy_across(host, t);
  }
}

namespace {

// Slice [start, start + len) of t along dim, as a view.
Tensor slice_view(const Tensor& t, int64_t dim, int64_t start, int64_t len) {
  Shape shape = t.shape();
  shape[size_t(dim)] = len;
  return Tensor::make(t.storage(), t.offset() + start * t.strides()[size_t(dim)], shape,
                      t.strides(), t.dtype());
}

}  // namespace

Tensors checkpoint(const CheckpointFn& fn, const Tensors& inputs,
                   const std::vector<Generator*>& generators, const Tensors& state) {
  if (!grad_enabled()) return fn(inputs);  // inside NoGrad or another checkpoint's forward
  const RngSnapshot before(generators);
  Tensors outs;
  {
    NoGrad no_grad;
    outs = fn(inputs);
  }
  for (auto& y : outs) y = y.detach();  // fresh handles, even if fn returned an input
  // Recorded even when no input requires grad: fn's parameters may.
  record_always(
      "checkpoint", inputs, outs, inputs,
      [fn, before, state](const Tensors& saved, const Tensors& grads, const Needs& needs) {
        Tensors xs;
        for (size_t i = 0; i < saved.size(); ++i) {
          Tensor x = saved[i].defined() ? saved[i].detach() : Tensor();
          if (x.defined() && needs[i]) x.requires_grad_(true);
          xs.push_back(x);
        }
        // The replay draws what the forward drew and leaves the state as the step has it.
        Tensors ys;
        {
          ReplayScope replay(&before, state);
          EnableGrad enable;
          ys = fn(xs);
        }
        SPOOL_CHECK(ys.size() == grads.size(), "checkpoint: the replay returned ", ys.size(),
                    " outputs, the forward ", grads.size());
        return grad(std::move(ys), grads, xs);
      });
  return outs;
}

Tensor checkpoint(const std::function<Tensor(const Tensor&)>& fn, const Tensor& input,
                  const std::vector<Generator*>& generators, const Tensors& state) {
  return checkpoint([fn](const Tensors& in) { return Tensors{fn(in[0])}; }, Tensors{input},
                    generators, state)[0];
}

Tensor checkpoint_in_parts(const std::function<Tensor(const Tensor&)>& whole,
                           const std::vector<std::function<Tensor(const Tensor&)>>& parts,
                           int64_t dim, const Tensor& input, const Tensors& state) {
  SPOOL_CHECK(!parts.empty(), "checkpoint_in_parts: no parts");
  Tensor y;
  {
    NoGrad no_grad;
    y = whole(input);
  }
  SPOOL_CHECK(y.defined() && dim >= 0 && dim < y.dim(), "checkpoint_in_parts: dim ", dim,
              " is not a dim of the output ", y.defined() ? describe(y) : std::string("(none)"));
  if (!grad_enabled()) return y;
  y = y.detach();
  record_always(
      "checkpoint_in_parts", {input}, {y}, {input},
      [parts, dim, state](const Tensors& saved, const Tensors& grads, const Needs& needs) {
        Tensor x = saved[0].defined() ? saved[0].detach() : Tensor();
        if (x.defined() && needs[0]) x.requires_grad_(true);
        const Tensor& g = grads[0];
        Tensor gx;
        int64_t start = 0;
        for (size_t k = 0; k < parts.size(); ++k) {
          Tensor yk;
          {
            ReplayScope replay(nullptr, state);
            EnableGrad enable;
            yk = parts[k](x);
          }
          // The part must be slice k of the output: g's shape but along dim, where it must fit.
          bool fits = yk.defined() && yk.dim() == g.dim() && yk.dtype() == g.dtype() &&
                      yk.device() == g.device() && start + yk.size(dim) <= g.size(dim);
          for (int64_t d = 0; fits && d < g.dim(); ++d) fits = d == dim || yk.size(d) == g.size(d);
          SPOOL_CHECK(fits, "checkpoint_in_parts: part ", k, " is ",
                      yk.defined() ? describe(yk) : std::string("undefined"),
                      "; expected a slice from ", start, " along dim ", dim, " of the output ",
                      describe(g));
          Tensor seed = empty(yk.shape(), g.dtype(), g.device());
          backend(g.device()).copy(slice_view(g, dim, start, yk.size(dim)), seed);
          start += yk.size(dim);
          if (!yk.requires_grad()) continue;
          Tensors roots, seeds;
          roots.push_back(std::move(yk));
          seeds.push_back(std::move(seed));
          Tensor gk = std::move(grad(std::move(roots), std::move(seeds), {x})[0]);
          // The parts' gradients summed: the first taken as it is, the others added in place.
          if (!gx.defined())
            gx = std::move(gk);
          else if (gk.defined())
            backend(gx.device()).binary(BinaryOp::add, gx, gk, gx);
        }
        SPOOL_CHECK(start == g.size(dim), "checkpoint_in_parts: the parts cover ", start, " of ",
                    g.size(dim), " along dim ", dim);
        return Tensors{gx};
      });
  return y;
}

}  // namespace spool
