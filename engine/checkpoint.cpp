#include "engine/checkpoint.h"

#include "engine/autograd.h"

namespace spool {

Tensors checkpoint(const CheckpointFn& fn, const Tensors& inputs,
                   const std::vector<Generator*>& generators) {
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
      [fn, before](const Tensors& saved, const Tensors& grads, const Needs& needs) {
        // Replay with the generators as they were at the forward, then put them back.
        const RngSnapshot now(std::vector<Generator*>(before.gens.begin() + 1, before.gens.end()));
        before.restore();
        Tensors xs;
        for (size_t i = 0; i < saved.size(); ++i) {
          Tensor x = saved[i].defined() ? saved[i].detach() : Tensor();
          if (x.defined() && needs[i]) x.requires_grad_(true);
          xs.push_back(x);
        }
        Tensors roots, seeds;
        {
          EnableGrad enable;
          Tensors ys = fn(xs);
          SPOOL_CHECK(ys.size() == grads.size(), "checkpoint: the replay returned ", ys.size(),
                      " outputs, the forward ", grads.size());
          for (size_t k = 0; k < ys.size(); ++k)
            if (ys[k].requires_grad()) {
              roots.push_back(ys[k]);
              seeds.push_back(grads[k]);
            }
        }
        now.restore();
        if (!roots.empty()) backward(roots, seeds);
        Tensors gx;
        for (const Tensor& x : xs)
          gx.push_back(x.defined() && x.requires_grad() ? x.grad() : Tensor());
        return gx;
      },
      [fn](const Tensors& in) { return fn(in); });
  return outs;
}

Tensor checkpoint(const std::function<Tensor(const Tensor&)>& fn, const Tensor& input,
                  const std::vector<Generator*>& generators) {
  return checkpoint([fn](const Tensors& in) { return Tensors{fn(in[0])}; }, Tensors{input},
                    generators)[0];
}

}  // namespace spool
