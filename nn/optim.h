// Optimizers. Each holds its parameters and per-parameter state; step() updates the parameters
// in place from their .grad (parameters without a gradient are skipped), zero_grad() drops the
// gradients.
#pragma once
#include <vector>

#include "engine/tensor.h"

namespace spool::nn {

class Optimizer {
 public:
  explicit Optimizer(Tensors params);
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  void zero_grad();
  double lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }
  const Tensors& params() const { return params_; }

 protected:
  Tensors params_;
  double lr_ = 1e-3;
};

struct SGDOptions {
  double lr = 0.01;
  double momentum = 0;
  double weight_decay = 0;
  bool nesterov = false;
};

class SGD : public Optimizer {
 public:
  SGD(Tensors params, SGDOptions options);
  void step() override;

 private:
  SGDOptions o_;
  Tensors velocity_;
};

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;  // decoupled: p -= lr * weight_decay * p
};

class AdamW : public Optimizer {
 public:
  AdamW(Tensors params, AdamWOptions options);
  void step() override;
  int64_t steps() const { return t_; }

 private:
  AdamWOptions o_;
  Tensors m_, v_;
  int64_t t_ = 0;
};

}  // namespace spool::nn
