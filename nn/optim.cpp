#include "nn/optim.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/factory.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "ops/shape.h"

namespace spool::nn {

std::vector<ParamGroup> decay_matrices_only(const Module& module, double weight_decay) {
  ParamGroup decay{{}, weight_decay}, none{{}, 0.0};
  for (const auto& [n, p] : module.named_parameters())
    (p.dim() >= 2 ? decay : none).params.push_back(p);
  return {decay, none};
}

Optimizer::Optimizer(std::vector<ParamGroup> groups, double lr, const char* name)
    : groups_(std::move(groups)), lr_(lr), name_(name) {
  SPOOL_CHECK(lr >= 0 && std::isfinite(lr), name, ": lr ", lr, " must be a non-negative number");
  size_t i = 0;
  for (const auto& g : groups_) {
    if (g.weight_decay)
      SPOOL_CHECK(*g.weight_decay >= 0, name, ": weight_decay ", *g.weight_decay, " is negative");
    for (const auto& p : g.params) {
      SPOOL_CHECK(p.defined() && p.is_leaf() && is_float(p.dtype()), name, ": parameter ", i,
                  " is ", describe(p), "; parameters must be float leaf tensors");
      ++i;
    }
  }
}

std::vector<Tensor> Optimizer::params() const {
  Tensors out;
  for (const auto& g : groups_) out.insert(out.end(), g.params.begin(), g.params.end());
  return out;
}

double Optimizer::weight_decay_of(size_t index) const {
  for (const auto& g : groups_) {
    if (index < g.params.size()) return g.weight_decay.value_or(default_decay_);
    index -= g.params.size();
  }
  fail(name_, ": no parameter ", index);
}

void Optimizer::zero_grad() {
  for (const auto& g : groups_)
    for (const auto& p : g.params) p.impl().grad.reset();
}

NamedTensors Optimizer::slots_state(
    const std::vector<std::pair<std::string, Tensors*>>& slots) const {
  NamedTensors out;
  for (const auto& [slot, tensors] : slots)
    for (size_t i = 0; i < tensors->size(); ++i)
      if ((*tensors)[i].defined()) out.emplace_back(std::to_string(i) + "." + slot, (*tensors)[i]);
  out.emplace_back("step", full({}, double(t_), DType::i64));
  return out;
}

void Optimizer::load_slots(const NamedTensors& state,
                           const std::vector<std::pair<std::string, Tensors*>>& slots) {
  const Tensors ps = params();
  std::map<std::string, Tensor> given(state.begin(), state.end());
  auto step = given.find("step");
  SPOOL_CHECK(step != given.end() && step->second.numel() == 1, name_,
              ": optimizer state has no 'step'");
  const double t = step->second.item();
  SPOOL_CHECK(std::isfinite(t) && t >= 0 && t <= 9.0e15 && t == std::floor(t), name_,
              ": optimizer state 'step' is ", t, ", not a non-negative whole number of steps");
  std::vector<std::tuple<Tensors*, size_t, Tensor>> updates;
  for (const auto& [n, t] : state) {
    if (n == "step") continue;
    auto dot = n.find('.');
    SPOOL_CHECK(dot != std::string::npos, name_, ": unexpected optimizer state '", n, "'");
    const std::string digits = n.substr(0, dot);
    SPOOL_CHECK(!digits.empty() && digits.size() <= 9 &&
                    digits.find_first_not_of("0123456789") == std::string::npos,
                name_, ": optimizer state '", n, "' does not start with a parameter index");
    const size_t index = std::stoul(digits);
    std::string slot = n.substr(dot + 1);
    Tensors* target = nullptr;
    for (const auto& [s, ts] : slots)
      if (s == slot) target = ts;
    SPOOL_CHECK(target && index < ps.size(), name_, ": unexpected optimizer state '", n, "'");
    SPOOL_CHECK(t.shape() == ps[index].shape() && t.dtype() == ps[index].dtype(), name_,
                ": state '", n, "' is ", describe(t), " for a parameter that is ",
                describe(ps[index]));
    updates.emplace_back(target, index, t);
  }
  // A parameter has every slot or none (none: it has not been stepped yet); Adam with exp_avg but
  // no exp_avg_sq would fail at its first update, far from the file that lacked it.
  std::map<size_t, std::vector<const Tensors*>> present;
  for (const auto& [target, index, t] : updates) present[index].push_back(target);
  for (const auto& [index, targets] : present)
    for (const auto& [s, ts] : slots)
      SPOOL_CHECK(std::find(targets.begin(), targets.end(), ts) != targets.end(), name_,
                  ": optimizer state for parameter ", index, " has no '", index, ".", s,
                  "' while it has its other slots; the state is incomplete");
  for (const auto& [s, ts] : slots) ts->assign(ps.size(), Tensor());
  for (auto& [target, index, t] : updates) (*target)[index] = clone(t.detach());
  t_ = int64_t(t);
}

SGD::SGD(std::vector<ParamGroup> groups, SGDOptions o)
    : Optimizer(std::move(groups), o.lr, "SGD"), o_(o) {
  SPOOL_CHECK(o.momentum >= 0, "SGD: momentum ", o.momentum, " is negative");
  SPOOL_CHECK(o.weight_decay >= 0, "SGD: weight_decay ", o.weight_decay, " is negative");
  SPOOL_CHECK(!o.nesterov || o.momentum > 0, "SGD: nesterov needs momentum > 0");
  default_decay_ = o.weight_decay;
  velocity_.resize(params().size());
}

void SGD::step() {
  NoGrad no_grad;
  ++t_;
  for_each_param([&](const Tensor& p, Tensor g, size_t i, double wd) {
    if (wd != 0) g = g + p * wd;
    if (o_.momentum != 0) {
      // PyTorch's form: v = momentum * v + g; the step uses v (or g + momentum * v, Nesterov).
      if (!velocity_[i].defined()) {
        velocity_[i] = clone(g);
      } else {
        mul_(velocity_[i], o_.momentum);
        add_(velocity_[i], g);
      }
      g = o_.nesterov ? g + velocity_[i] * o_.momentum : velocity_[i];
    }
    add_(p, g, -lr_);
  });
}

NamedTensors SGD::state() const {
  return slots_state({{"momentum_buffer", const_cast<Tensors*>(&velocity_)}});
}
void SGD::load_state(const NamedTensors& s) { load_slots(s, {{"momentum_buffer", &velocity_}}); }
std::vector<std::string> SGD::slots() const {
  return o_.momentum != 0 ? std::vector<std::string>{"momentum_buffer"}
                          : std::vector<std::string>{};
}
std::unique_ptr<Optimizer> SGD::like(std::vector<ParamGroup> groups) const {
  auto o = std::make_unique<SGD>(std::move(groups), o_);
  o->set_lr(lr_);
  return o;
}
std::unique_ptr<Optimizer> Adam::like(std::vector<ParamGroup> groups) const {
  auto o = std::make_unique<Adam>(std::move(groups), o_);
  o->set_lr(lr_);
  return o;
}

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions o)
    : Optimizer(std::move(groups), o.lr, o.decoupled ? "AdamW" : "Adam"), o_(o) {
  SPOOL_CHECK(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1, name_, ": betas (",
              o.beta1, ", ", o.beta2, ") must lie in [0, 1)");
  SPOOL_CHECK(o.eps > 0, name_, ": eps ", o.eps, " must be positive");
  SPOOL_CHECK(o.weight_decay >= 0, name_, ": weight_decay ", o.weight_decay, " is negative");
  default_decay_ = o.weight_decay;
  m_.resize(params().size());
  v_.resize(params().size());
}

void Adam::step() {
  NoGrad no_grad;
  ++t_;
  AdamParams a{lr_,
               o_.beta1,
               o_.beta2,
               o_.eps,
               0,
               o_.decoupled,
               1 - std::pow(o_.beta1, double(t_)),
               1 - std::pow(o_.beta2, double(t_))};
  for_each_param([&](const Tensor& p, Tensor g, size_t i, double wd) {
    SPOOL_CHECK(p.is_contiguous(), name_, ": parameter ", i, " (", describe(p),
                ") is a non-contiguous view; parameters must own contiguous storage");
    SPOOL_CHECK(g.shape() == p.shape() && g.dtype() == p.dtype(), name_, ": gradient ", describe(g),
                " for parameter ", i, " ", describe(p));
    if (!m_[i].defined()) {
      m_[i] = zeros_like(p);
      v_[i] = zeros_like(p);
    }
    if (m_[i].device() != p.device()) {  // state loaded on the cpu for a moved model
      m_[i] = to(m_[i], p.device());
      v_[i] = to(v_[i], p.device());
    }
    a.weight_decay = wd;
    // One fused pass: m, v and p updated in place.
    backend(p.device()).adam_step(p, contiguous(g), m_[i], v_[i], a);
    for (const Tensor& t : {p, m_[i], v_[i]}) t.storage()->bump_version();
  });
}

NamedTensors Adam::state() const {
  return slots_state(
      {{"exp_avg", const_cast<Tensors*>(&m_)}, {"exp_avg_sq", const_cast<Tensors*>(&v_)}});
}
void Adam::load_state(const NamedTensors& s) {
  load_slots(s, {{"exp_avg", &m_}, {"exp_avg_sq", &v_}});
}

void SquareSum::add(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (x[i] == 0.0f) continue;
    if (!std::isfinite(x[i])) {
      ++bins_[std::isnan(x[i]) ? kBins - 1 : kBins - 2];
      continue;
    }
    int e = 0;
    const float f = std::frexp(std::fabs(x[i]), &e);  // x = f 2^e, f in [0.5, 1)
    const auto m = (unsigned __int128)(uint64_t)std::ldexp(double(f), 24);  // exact: 24 bits
    bins_[e + 148] += m * m;
  }
}

void SquareSum::add(const SquareSum& other) {
  for (int b = 0; b < kBins; ++b) bins_[b] += other.bins_[b];
}

double SquareSum::value() const {
  if (bins_[kBins - 1] != 0) return NAN;
  if (bins_[kBins - 2] != 0) return INFINITY;
  double total = 0;
  for (int b = 0; b < kBins - 2; ++b)  // smallest first
    if (bins_[b] != 0) total += std::ldexp(double(bins_[b]), 2 * (b - 148) - 48);
  return total;
}

std::vector<double> SquareSum::limbs() const {
  std::vector<double> out(size_t(kBins * kLimbs));
  for (int b = 0; b < kBins; ++b)
    for (int l = 0; l < kLimbs; ++l)
      out[size_t(b * kLimbs + l)] = double(uint64_t(bins_[b] >> (20 * l)) & 0xfffff);
  return out;
}

SquareSum SquareSum::from_limbs(const double* l) {
  SquareSum s;
  for (int b = 0; b < kBins; ++b)
    for (int k = 0; k < kLimbs; ++k)
      s.bins_[b] += (unsigned __int128)(uint64_t)l[b * kLimbs + k] << (20 * k);
  return s;
}

double clip_scale(double norm, double max_norm) {
  return norm > max_norm ? max_norm / (norm + 1e-6) : 1.0;
}

double clip_grad_norm(const Tensors& params, double max_norm) {
  SPOOL_CHECK(max_norm > 0, "clip_grad_norm: max_norm ", max_norm, " must be positive");
  NoGrad no_grad;
  SquareSum exact;
  double other = 0;
  for (const auto& p : params)
    if (p.grad().defined()) {
      Tensor g = p.grad();
      if (g.dtype() == DType::f32 && g.device().type == DeviceType::cpu) {
        const Tensor c = contiguous(g);
        exact.add(c.data<float>(), c.numel());
      } else {
        other += sum(g * g).item();
      }
    }
  const double norm = std::sqrt(exact.value() + other);
  if (norm > max_norm) {
    const double scale = clip_scale(norm, max_norm);
    for (const auto& p : params)
      if (p.grad().defined()) mul_(p.grad(), scale);
  }
  return norm;
}

double CosineSchedule::at(int64_t t) const {
  if (t < warmup_steps) return base_lr * double(t + 1) / double(warmup_steps);
  if (t >= total_steps) return min_lr;
  const double progress =
      double(t - warmup_steps) / double(std::max<int64_t>(1, total_steps - warmup_steps));
  return min_lr + 0.5 * (base_lr - min_lr) * (1 + std::cos(M_PI * progress));
}

double CosineSchedule::at_progress(int64_t t, double progress) const {
  const double warm = std::min(1.0, double(t + 1) / double(std::max<int64_t>(1, warmup_steps)));
  const double f = std::clamp(progress, 0.0, 1.0);
  return warm * (min_lr + 0.5 * (base_lr - min_lr) * (1 + std::cos(M_PI * f)));
}

double CosineSchedule::at_share(int64_t t, double share) const {
  const double step = std::clamp(share, 0.0, 1.0) * double(total_steps);
  return at(std::min(std::max(t, int64_t(step)), std::max<int64_t>(0, total_steps - 1)));
}

double StepSchedule::at(int64_t t) const {
  SPOOL_CHECK(step_size > 0, "StepSchedule: step_size ", step_size, " must be positive");
  return base_lr * std::pow(gamma, double(t / step_size));
}

}  // namespace spool::nn
