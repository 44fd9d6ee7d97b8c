#include "nn/norm.h"

#include "engine/autograd.h"
#include "engine/factory.h"
#include "ops/elementwise.h"
#include "ops/norm.h"

namespace spool::nn {

BatchNorm::BatchNorm(int64_t dims, int64_t c, double momentum, double eps, bool affine)
    : dims_(dims), momentum_(momentum), eps_(eps) {
  SPOOL_CHECK(c > 0, type_name(), ": channels must be positive, got ", c);
  if (affine) {
    weight = register_parameter("weight", ones({c}));
    bias = register_parameter("bias", zeros({c}));
  }
  running_mean = register_buffer("running_mean", zeros({c}));
  running_var = register_buffer("running_var", ones({c}));
  num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, DType::i64));
}

std::string BatchNorm::type_name() const { return "BatchNorm" + std::to_string(dims_) + "d"; }

Tensor BatchNorm::forward(const Tensor& x) {
  const bool ok = dims_ == 1 ? (x.dim() == 2 || x.dim() == 3) : x.dim() == dims_ + 2;
  SPOOL_CHECK(ok, type_name(), ": input is ", str(x.shape()), "; expected ",
              dims_ == 1 ? "[N, C] or [N, C, L]" : std::to_string(dims_ + 2) + " dims");
  SPOOL_CHECK(x.size(1) == running_mean.size(0), type_name(), ": input has ", x.size(1),
              " channels, the layer has ", running_mean.size(0));
  if (is_training()) {
    NoGrad no_grad;
    add_(num_batches_tracked, ones({}, DType::i64, num_batches_tracked.device()));
  }
  return batch_norm(x, running_mean, running_var, weight, bias, is_training(), momentum_, eps_);
}

LayerNorm::LayerNorm(Shape normalized_shape, double eps, bool affine)
    : shape_(std::move(normalized_shape)), eps_(eps) {
  if (affine) {
    weight = register_parameter("weight", ones(shape_));
    bias = register_parameter("bias", zeros(shape_));
  }
}

Tensor LayerNorm::forward(const Tensor& x) { return layer_norm(x, shape_, weight, bias, eps_); }

}  // namespace spool::nn
