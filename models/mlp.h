// A multi-layer perceptron: Linear -> ReLU -> ... -> Linear (logits).
#pragma once
#include <memory>
#include <vector>

#include "engine/planner/chain.h"
#include "nn/linear.h"
#include "nn/module.h"

namespace spool::models {

class Mlp : public nn::Module {
 public:
  // Layers are named "layers.0", "layers.1", ...
  Mlp(int64_t in_features, const std::vector<int64_t>& hidden, int64_t classes,
      Generator* gen = nullptr);
  std::string type_name() const override { return "Mlp"; }
  Tensor forward(const Tensor& x) override;  // [N, in] -> [N, classes]
  // The training step as a chain for the memory planner: one stage per hidden layer (Linear,
  // ReLU) and the last Linear with the mean cross-entropy against `labels` [N].
  Chain chain(const Tensor& x, const Tensor& labels);

 private:
  std::vector<std::shared_ptr<nn::Linear>> layers_;
};

}  // namespace spool::models
