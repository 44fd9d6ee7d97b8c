#include "nn/norm.h"

#include "engine/autograd.h"
#include "engine/factory.h"
#include "ops/elementwise.h"
#include "ops/norm.h"
#include "ops/shape.h"

namespace spool::nn {

namespace {
SyncBatchNormFn& sync_fn() {
  static SyncBatchNormFn fn;
  return fn;
}
}  // namespace

SyncBatchNormFn set_sync_batch_norm(SyncBatchNormFn fn) {
  std::swap(fn, sync_fn());
  return fn;
}

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
  return apply(x, 0, running_mean.size(0), false, Tensor(), "");
}

Tensor BatchNorm::forward_relu(const Tensor& x, const Tensor& residual) {
  return apply(x, 0, running_mean.size(0), true, residual, "::forward_relu");
}

Tensor BatchNorm::forward_channels(const Tensor& x, int64_t first, int64_t count, bool relu) {
  const int64_t c = running_mean.size(0);
  SPOOL_CHECK(first >= 0 && count > 0 && first + count <= c, type_name(),
              "::forward_channels: channels [", first, ", ", first + count,
              ") are not within the layer's ", c);
  return apply(x, first, count, relu, Tensor(), "::forward_channels");
}

Tensor BatchNorm::apply(const Tensor& x, int64_t first, int64_t count, bool relu,
                        const Tensor& residual, const char* what) {
  const bool ok = dims_ == 1 ? (x.dim() == 2 || x.dim() == 3) : x.dim() == dims_ + 2;
  SPOOL_CHECK(ok, type_name(), what, ": input is ", str(x.shape()), "; expected ",
              dims_ == 1 ? "[N, C] or [N, C, L]" : std::to_string(dims_ + 2) + " dims");
  SPOOL_CHECK(x.size(1) == count, type_name(), what, ": input has ", x.size(1), " channels, ",
              count == running_mean.size(0) ? "the layer has " : "the channel range has ", count);
  // The call covering channel 0 counts the batch (once per forward, as torch does).
  if (is_training() && first == 0) {
    NoGrad no_grad;
    add_(num_batches_tracked, ones({}, DType::i64, num_batches_tracked.device()));
  }
  const bool all = first == 0 && count == running_mean.size(0);
  auto part = [&](const Tensor& t) { return !t.defined() || all ? t : narrow(t, 0, first, count); };
  if (is_training() && sync_fn()) {
    Tensor y = sync_fn()(x, part(running_mean), part(running_var), part(weight), part(bias),
                         momentum_, eps_);
    return relu ? spool::relu(residual.defined() ? y + residual : y) : y;
  }
  if (relu)
    return batch_norm_relu(x, residual, part(running_mean), part(running_var), part(weight),
                           part(bias), is_training(), momentum_, eps_);
  return batch_norm(x, part(running_mean), part(running_var), part(weight), part(bias),
                    is_training(), momentum_, eps_);
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
