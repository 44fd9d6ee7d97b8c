#include "nn/module.h"

namespace spool::nn {

Tensor Module::register_parameter(const std::string& name, Tensor value) {
  for (const auto& [n, t] : params_)
    SPOOL_CHECK(n != name, "register_parameter: a parameter named '", name, "' already exists");
  value.requires_grad_(true);
  params_.emplace_back(name, value);
  return value;
}

void Module::collect(const std::string& prefix, NamedTensors& out) const {
  for (const auto& [n, t] : params_) out.emplace_back(prefix + n, t);
  for (const auto& [n, m] : children_) m->collect(prefix + n + ".", out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", out);
  return out;
}

Tensors Module::parameters() const {
  Tensors out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& t : parameters()) n += t.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, m] : children_) m->train(on);
}

void Module::zero_grad() {
  for (auto& t : parameters()) t.impl().grad.reset();
}

}  // namespace spool::nn
