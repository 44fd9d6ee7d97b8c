// nn::Module: owns named parameters and submodules; names compose with dots
// ("layers.0.weight") as in PyTorch, so state moves between spool and other tools by name.
#pragma once
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

  NamedTensors named_parameters() const;
  Tensors parameters() const;
  int64_t num_parameters() const;

  // Training mode (dropout active, batch statistics); eval() turns it off. Recursive.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Drops every parameter's gradient.
  void zero_grad();

 protected:
  // Registers a tensor as a trainable parameter (it is made to require grad) and returns it.
  Tensor register_parameter(const std::string& name, Tensor value);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    children_.emplace_back(name, module);
    return module;
  }

 private:
  void collect(const std::string& prefix, NamedTensors& out) const;
  NamedTensors params_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace spool::nn
