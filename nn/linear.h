// Linear layer: y = x @ weight^T + bias, weight [out, in], as torch.nn.Linear (and its default
// initialisation: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias).
#pragma once
#include "engine/rng.h"
#include "nn/module.h"

namespace spool::nn {

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator* gen = nullptr);
  std::string type_name() const override { return "Linear"; }
  Tensor forward(const Tensor& x) override;

  Tensor weight;  // [out, in]
  Tensor bias;    // [out] or undefined
};

}  // namespace spool::nn
