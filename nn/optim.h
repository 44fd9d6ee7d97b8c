// Optimizers. Each holds parameter groups and per-parameter state; step() updates parameters in
// place from their .grad (parameters without a gradient are skipped), zero_grad() drops the
// gradients. A group may override the weight decay, so norms and biases can skip it.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "nn/module.h"

namespace spool::nn {

struct ParamGroup {
  Tensors params;
  std::optional<double> weight_decay;  // unset: the optimizer's
};

// Two groups: tensors with 2 or more dims (matrices, convolution kernels) get weight_decay; the
// rest (biases, norm scales) get none.
std::vector<ParamGroup> decay_matrices_only(const Module& module, double weight_decay);

class Optimizer {
 public:
  Optimizer(std::vector<ParamGroup> groups, double lr, const char* name);
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  void zero_grad();
  double lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }
  std::vector<Tensor> params() const;

  // Per-parameter state, named "<index>.<slot>" (e.g. "3.exp_avg"), plus the step count; for
  // checkpoints. load_state checks every name and shape before changing anything.
  virtual NamedTensors state() const = 0;
  virtual void load_state(const NamedTensors& state) = 0;
  // The per-parameter slots state() names ("exp_avg", ...); none for a stateless optimizer.
  virtual std::vector<std::string> slots() const = 0;
  // An optimizer of this kind and these hyperparameters over other parameters (ZeRO-1's shard
  // optimizer, dist/ddp.h, steps views of this rank's chunks with it). Its state starts empty.
  virtual std::unique_ptr<Optimizer> like(std::vector<ParamGroup> groups) const = 0;
  int64_t steps() const { return t_; }
  void set_steps(int64_t t) { t_ = t; }
  // The weight decay parameter `index` (in params() order) gets.
  double weight_decay_of(size_t index) const;

 protected:
  // Calls f(param, grad, index, weight_decay) for each parameter that has a gradient.
  template <class F>
  void for_each_param(F&& f) {
    size_t index = 0;
    for (const auto& g : groups_)
      for (const auto& p : g.params) {
        Tensor grad = p.grad();
        if (grad.defined()) f(p, grad, index, g.weight_decay.value_or(default_decay_));
        ++index;
      }
  }
  NamedTensors slots_state(const std::vector<std::pair<std::string, Tensors*>>& slots) const;
  void load_slots(const NamedTensors& state,
                  const std::vector<std::pair<std::string, Tensors*>>& slots);

  std::vector<ParamGroup> groups_;
  double lr_;
  double default_decay_ = 0;
  int64_t t_ = 0;
  std::string name_;
};

struct SGDOptions {
  double lr = 0.01;
  double momentum = 0;
  double weight_decay = 0;  // L2, added to the gradient
  bool nesterov = false;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<ParamGroup> groups, SGDOptions options);
  SGD(Tensors params, SGDOptions options) : SGD({ParamGroup{std::move(params), {}}}, options) {}
  void step() override;
  NamedTensors state() const override;
  void load_state(const NamedTensors& state) override;
  std::vector<std::string> slots() const override;
  std::unique_ptr<Optimizer> like(std::vector<ParamGroup> groups) const override;

 private:
  SGDOptions o_;
  Tensors velocity_;
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  // false: Adam's L2 (decay added to the gradient); true: AdamW's decoupled decay
  // (p -= lr * weight_decay * p before the Adam update).
  bool decoupled = false;
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<ParamGroup> groups, AdamOptions options);
  Adam(Tensors params, AdamOptions options) : Adam({ParamGroup{std::move(params), {}}}, options) {}
  void step() override;
  NamedTensors state() const override;
  void load_state(const NamedTensors& state) override;
  std::vector<std::string> slots() const override { return {"exp_avg", "exp_avg_sq"}; }
  std::unique_ptr<Optimizer> like(std::vector<ParamGroup> groups) const override;

 private:
  AdamOptions o_;
  Tensors m_, v_;
};

// AdamW: Adam with decoupled weight decay (default 0.01, as torch.optim.AdamW).
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
};

class AdamW : public Adam {
 public:
  AdamW(std::vector<ParamGroup> groups, AdamWOptions o)
      : Adam(std::move(groups), {o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, true}) {}
  AdamW(Tensors params, AdamWOptions o) : AdamW({ParamGroup{std::move(params), {}}}, o) {}
};

// The sum of squares of f32 values, held exactly: each square m^2 2^(2e - 48) (m the 24-bit
// significand) is added to the integer of its exponent, so the sum does not depend on the order
// or the grouping of the values. A norm over gradients split into any pieces (data parallel's
// shards, ZeRO's chunks, on any number of processes) is then the same number as over the whole
// parameters, bit for bit. Limbs (exact small integers in f64) carry it between processes.
class SquareSum {
 public:
  void add(const float* x, int64_t n);
  void add(const SquareSum& other);
  double value() const;  // rounded once per exponent, in a fixed order
  // frexp's float exponents -148 .. 128, then the count of infinities and of NaNs (the sum is
  // +inf or NaN as a float sum would be)
  static constexpr int kBins = 279;
  static constexpr int kLimbs = 4;               // 20 bits each
  std::vector<double> limbs() const;             // kBins * kLimbs
  static SquareSum from_limbs(const double* l);  // after an all-reduce sum of limbs()

 private:
  unsigned __int128 bins_[kBins] = {};
};

// Scales all gradients so their global L2 norm is at most max_norm; returns the norm before. The
// f32 gradients on the cpu are summed exactly (SquareSum); others through sum(g * g) in order.
double clip_grad_norm(const Tensors& params, double max_norm);
// The scale clip_grad_norm applies for a norm: max_norm / (norm + 1e-6) above max_norm, else 1.
double clip_scale(double norm, double max_norm);

// Learning-rate schedules: lr at step t (0-based).
struct CosineSchedule {
  double base_lr;
  int64_t warmup_steps;  // linear from base_lr / warmup_steps up to base_lr
  int64_t total_steps;   // then cosine down to min_lr at total_steps
  double min_lr = 0;
  double at(int64_t t) const;
  // For runs bounded by time: the linear warm-up over the first warmup_steps steps, times the
  // cosine from base_lr to min_lr over `progress` in [0, 1] (clamped), the share of the run done.
  double at_progress(int64_t t, double progress) const;
  // For runs bounded by time whose whole schedule, warm-up included, follows the share of the
  // run done (`share` of the time, or t / total_steps when that is further on): at() at the step
  // that share corresponds to. A run with total_steps far beyond what its time allows still
  // leaves its warm-up after warmup_steps / total_steps of the time.
  double at_share(int64_t t, double share) const;
};

struct StepSchedule {
  double base_lr;
  int64_t step_size;  // multiply by gamma every step_size steps
  double gamma = 0.1;
  double at(int64_t t) const;
};

}  // namespace spool::nn
