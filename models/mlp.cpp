#include "models/mlp.h"

#include "ops/elementwise.h"
#include "ops/loss.h"

namespace spool::models {

Mlp::Mlp(int64_t in_features, const std::vector<int64_t>& hidden, int64_t classes, Generator* gen) {
  int64_t width = in_features;
  std::vector<int64_t> sizes = hidden;
  sizes.push_back(classes);
  for (size_t i = 0; i < sizes.size(); ++i) {
    layers_.push_back(register_module("layers." + std::to_string(i),
                                      std::make_shared<nn::Linear>(width, sizes[i], true, gen)));
    width = sizes[i];
  }
}

Tensor Mlp::forward(const Tensor& x) {
  Tensor h = x;
  for (size_t i = 0; i < layers_.size(); ++i) {
    h = layers_[i]->forward(h);
    if (i + 1 < layers_.size()) h = relu(h);
  }
  return h;
}

Chain Mlp::chain(const Tensor& x, const Tensor& labels) {
  Chain c;
  c.input = x;
  for (size_t i = 0; i + 1 < layers_.size(); ++i) {
    auto layer = layers_[i];
    c.stages.push_back({"layers." + std::to_string(i),
                        [layer](const Tensor& h) { return relu(layer->forward(h)); }});
  }
  auto last = layers_.back();
  c.stages.push_back(
      {"layers." + std::to_string(layers_.size() - 1) + "+loss",
       [last, labels](const Tensor& h) { return cross_entropy(last->forward(h), labels); }});
  return c;
}

}  // namespace spool::models
