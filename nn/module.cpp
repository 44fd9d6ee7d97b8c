#include "nn/module.h"

#include <algorithm>
#include <set>

#include "engine/autograd.h"
#include "ops/elementwise.h"

namespace spool::nn {

Tensor Module::forward(const Tensor&) {
  fail(type_name(), ": this module has no single-input forward");
}

Tensor Module::register_parameter(const std::string& name, Tensor value) {
  for (const auto& [n, t] : params_)
    SPOOL_CHECK(n != name, type_name(), ": a parameter named '", name, "' already exists");
  value.requires_grad_(true);
  params_.emplace_back(name, value);
  return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  for (const auto& [n, t] : buffers_)
    SPOOL_CHECK(n != name, type_name(), ": a buffer named '", name, "' already exists");
  buffers_.emplace_back(name, value);
  return value;
}

void Module::collect(const std::string& prefix, Kind kind, NamedTensors& out) const {
  for (const auto& [n, t] : kind == Kind::parameter ? params_ : buffers_)
    out.emplace_back(prefix + n, t);
  for (const auto& [n, m] : children_) m->collect(prefix + n + ".", kind, out);
}

void Module::collect_state(const std::string& prefix, NamedTensors& out) const {
  for (const auto& [n, t] : params_) out.emplace_back(prefix + n, t);
  for (const auto& [n, t] : buffers_) out.emplace_back(prefix + n, t);
  for (const auto& [n, m] : children_) m->collect_state(prefix + n + ".", out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", Kind::parameter, out);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", Kind::buffer, out);
  return out;
}

NamedTensors Module::state_dict() const {
  NamedTensors out;
  collect_state("", out);
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

void Module::load_state_dict(const NamedTensors& state, bool strict) {
  NamedTensors mine = state_dict();
  std::map<std::string, Tensor> given;
  for (const auto& [n, t] : state) {
    SPOOL_CHECK(!given.count(n), "load_state_dict: '", n, "' appears twice");
    given[n] = t;
  }
  std::vector<std::string> problems;
  std::set<std::string> known;
  for (const auto& [n, t] : mine) {
    known.insert(n);
    auto it = given.find(n);
    if (it == given.end()) {
      if (strict) problems.push_back("missing '" + n + "' (" + describe(t) + ")");
      continue;
    }
    const Tensor& v = it->second;
    // bf16 values load into f32 tensors (exactly); any other dtype must match.
    const bool widens = v.dtype() == DType::bf16 && t.dtype() == DType::f32;
    if (v.shape() != t.shape() || (v.dtype() != t.dtype() && !widens))
      problems.push_back("'" + n + "' is " + describe(v) + " in the file, " + describe(t) +
                         " in the " + type_name());
  }
  if (strict)
    for (const auto& [n, t] : given)
      if (!known.count(n)) problems.push_back("unexpected '" + n + "' (" + describe(t) + ")");
  if (!problems.empty()) {
    std::string msg = "load_state_dict: " + std::to_string(problems.size()) + " problem(s) for " +
                      type_name() + ": ";
    for (size_t i = 0; i < problems.size() && i < 8; ++i) msg += (i ? "; " : "") + problems[i];
    if (problems.size() > 8) msg += "; ...";
    throw Error(msg + " (nothing was loaded)");
  }
  NoGrad no_grad;
  for (const auto& [n, t] : mine) {
    auto it = given.find(n);
    if (it != given.end()) copy_(t, it->second);
  }
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, m] : children_) m->train(on);
}

void Module::zero_grad() {
  for (auto& t : parameters()) t.impl().grad.reset();
}

void Module::to(Device device) {
  // Every holder of a parameter or buffer shares its TensorImpl, so moving the impl's storage
  // moves it for all of them (the model's fields, optimizers made later).
  auto move = [&](const Tensor& t) {
    if (t.device() == device) return;
    const Tensor moved = spool::to(t.detach(), device);  // a contiguous copy there
    TensorImpl& impl = t.impl();
    impl.storage = moved.storage();
    impl.offset = 0;
    impl.strides = moved.strides();
    impl.grad.reset();
  };
  for (const auto& [name, t] : named_parameters()) move(t);
  for (const auto& [name, t] : named_buffers()) move(t);
}

}  // namespace spool::nn
