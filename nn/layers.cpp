#include "nn/layers.h"

#include "engine/factory.h"
#include "ops/index.h"
#include "ops/shape.h"

namespace spool::nn {

Tensor Flatten::forward(const Tensor& x) { return flatten(x, start_, end_); }

Dropout::Dropout(double prob, Generator* gen) : p(prob), gen_(gen) {
  SPOOL_CHECK(prob >= 0 && prob <= 1, "Dropout: probability ", prob, " is outside [0, 1]");
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p, is_training(), gen_); }

Tensor MaxPool::forward(const Tensor& x) {
  SPOOL_CHECK(x.dim() == dims_ + 2, type_name(), ": input is ", str(x.shape()), "; expected ",
              dims_ + 2, " dims");
  return max_pool(x, o_);
}

Tensor AvgPool::forward(const Tensor& x) {
  SPOOL_CHECK(x.dim() == dims_ + 2, type_name(), ": input is ", str(x.shape()), "; expected ",
              dims_ + 2, " dims");
  return avg_pool(x, o_);
}

Embedding::Embedding(int64_t num, int64_t dim, Generator* gen) {
  SPOOL_CHECK(num > 0 && dim > 0, "Embedding: sizes must be positive, got ", num, " x ", dim);
  weight = register_parameter("weight", randn({num, dim}, DType::f32, gen));
}

Tensor Embedding::forward(const Tensor& index) { return embedding(weight, index); }

}  // namespace spool::nn
