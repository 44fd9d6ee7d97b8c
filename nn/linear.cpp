#include "nn/linear.h"

#include <cmath>

#include "engine/factory.h"
#include "ops/matmul.h"

namespace spool::nn {

Linear::Linear(int64_t in_features, int64_t out_features, bool with_bias, Generator* gen) {
  SPOOL_CHECK(in_features > 0 && out_features > 0, "Linear: features must be positive, got in ",
              in_features, ", out ", out_features);
  const double bound = 1.0 / std::sqrt(double(in_features));
  weight = register_parameter("weight",
                              rand({out_features, in_features}, DType::f32, gen, -bound, bound));
  if (with_bias)
    bias = register_parameter("bias", rand({out_features}, DType::f32, gen, -bound, bound));
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }

}  // namespace spool::nn
