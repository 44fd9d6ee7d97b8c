#include "nn/optim.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/factory.h"
#include "ops/elementwise.h"

namespace spool::nn {

Optimizer::Optimizer(Tensors params) : params_(std::move(params)) {
  for (size_t i = 0; i < params_.size(); ++i)
    SPOOL_CHECK(params_[i].defined() && params_[i].is_leaf() && is_float(params_[i].dtype()),
                "optimizer: parameter ", i, " is ", describe(params_[i]),
                "; parameters must be float leaf tensors");
}

void Optimizer::zero_grad() {
  for (auto& p : params_) p.impl().grad.reset();
}

SGD::SGD(Tensors params, SGDOptions o) : Optimizer(std::move(params)), o_(o) {
  SPOOL_CHECK(o.lr >= 0, "SGD: lr ", o.lr, " is negative");
  SPOOL_CHECK(o.momentum >= 0, "SGD: momentum ", o.momentum, " is negative");
  SPOOL_CHECK(!o.nesterov || o.momentum > 0, "SGD: nesterov needs momentum > 0");
  lr_ = o.lr;
  velocity_.resize(params_.size());
}

void SGD::step() {
  NoGrad no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (o_.weight_decay != 0) g = g + p * o_.weight_decay;
    if (o_.momentum != 0) {
      // PyTorch's form: v = momentum * v + g; the step uses v (or g + momentum * v, Nesterov).
      if (!velocity_[i].defined()) velocity_[i] = clone(g);
      else {
        mul_(velocity_[i], o_.momentum);
        add_(velocity_[i], g);
      }
      g = o_.nesterov ? g + velocity_[i] * o_.momentum : velocity_[i];
    }
    add_(p, g, -lr_);
  }
}

AdamW::AdamW(Tensors params, AdamWOptions o) : Optimizer(std::move(params)), o_(o) {
  SPOOL_CHECK(o.lr >= 0, "AdamW: lr ", o.lr, " is negative");
  SPOOL_CHECK(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1, "AdamW: betas (",
              o.beta1, ", ", o.beta2, ") must lie in [0, 1)");
  SPOOL_CHECK(o.eps > 0, "AdamW: eps ", o.eps, " must be positive");
  lr_ = o.lr;
  m_.resize(params_.size());
  v_.resize(params_.size());
}

void AdamW::step() {
  NoGrad no_grad;
  ++t_;
  const double c1 = 1 - std::pow(o_.beta1, double(t_)), c2 = 1 - std::pow(o_.beta2, double(t_));
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (!m_[i].defined()) {
      m_[i] = zeros_like(p);
      v_[i] = zeros_like(p);
    }
    mul_(m_[i], o_.beta1);
    add_(m_[i], g, 1 - o_.beta1);
    mul_(v_[i], o_.beta2);
    add_(v_[i], g * g, 1 - o_.beta2);
    if (o_.weight_decay != 0) mul_(p, 1 - lr_ * o_.weight_decay);
    // p -= lr * (m / c1) / (sqrt(v / c2) + eps)
    Tensor update = (m_[i] / c1) / (sqrt(v_[i] / c2) + o_.eps);
    add_(p, update, -lr_);
  }
}

}  // namespace spool::nn
