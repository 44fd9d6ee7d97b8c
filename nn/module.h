// nn::Module: owns named parameters, buffers and submodules; names compose with dots
// ("layer1.0.conv1.weight") exactly as in PyTorch, so state_dicts move between spool and other
// tools by name.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace spool::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  virtual ~Module() = default;
  // The layer's kind, for error messages ("Conv2d", "BatchNorm2d", ...).
  virtual std::string type_name() const { return "Module"; }
  // Single-input forward, used by Sequential; modules with other signatures leave it.
  virtual Tensor forward(const Tensor& x);

  NamedTensors named_parameters() const;
  NamedTensors named_buffers() const;
  Tensors parameters() const;
  int64_t num_parameters() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const {
    return children_;
  }

  // Parameters then buffers of each module, then its children's, as PyTorch orders them.
  NamedTensors state_dict() const;
  // Copies values in by name. Every name, shape and dtype is checked before anything is
  // written, so a failed load leaves the module exactly as it was. strict: the names must
  // match exactly; otherwise unknown names are ignored and missing ones keep their values.
  void load_state_dict(const NamedTensors& state, bool strict = true);

  // Training mode (dropout active, batch statistics in BatchNorm); recursive.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();
  // Moves parameters and buffers to `device` (a contiguous copy there); every holder of one
  // (the model's fields, optimizers made later) sees it moved. Their gradients are dropped.
  void to(Device device);

 protected:
  // Registers a trainable parameter (made to require grad) and returns it.
  Tensor register_parameter(const std::string& name, Tensor value);
  // Registers state that is saved but not trained (running statistics, counters).
  Tensor register_buffer(const std::string& name, Tensor value);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    for (const auto& [n, m] : children_)
      SPOOL_CHECK(n != name, type_name(), ": a submodule named '", name, "' already exists");
    children_.emplace_back(name, module);
    return module;
  }

 private:
  enum class Kind { parameter, buffer };
  void collect(const std::string& prefix, Kind kind, NamedTensors& out) const;
  void collect_state(const std::string& prefix, NamedTensors& out) const;
  NamedTensors params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace spool::nn
