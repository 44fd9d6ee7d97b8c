#include "dist/sync_batch_norm.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/factory.h"
#include "nn/norm.h"
#include "ops/ops.h"

namespace spool::dist {

Tensor all_reduce_sum_op(ProcessGroup& group, const std::function<double()>& share,
                         const Tensor& x) {
  Tensor y;
  {
    NoGrad no_grad;
    y = clone(x);  // its own storage: the all-reduce writes it in place
  }
  group.all_reduce_sum(y);
  if (needs_grad({x}))
    record("all_reduce_sum", {x}, {y}, {},
           [&group, share](const Tensors&, const Tensors& grads, const Needs&) {
             const double s = share();
             SPOOL_CHECK(s > 0, "all_reduce_sum backward: this rank's share of the loss is ", s);
             Tensor g = mul(contiguous(grads[0]), s);
             group.all_reduce_sum(g);
             return Tensors{mul(g, 1 / s)};
           });
  return y;
}

Tensor sync_batch_norm(ProcessGroup& group, const std::function<double()>& share, const Tensor& x,
                       const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, double momentum, double eps) {
  SPOOL_CHECK(x.dim() >= 2, "sync_batch_norm: input is ", describe(x), "; expected [N, C, *]");
  const int64_t c = x.size(1);
  std::vector<int64_t> dims{0};
  Shape per_channel(size_t(x.dim()), 1);
  per_channel[1] = c;
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  // The global batch's count of values per channel.
  Tensor count = full({1}, double(x.numel() / c), DType::f64);
  group.all_reduce_sum(count);
  const double n = count.item();
  SPOOL_CHECK(n > 1, "sync_batch_norm: the global batch holds ", n,
              " value(s) per channel; batch statistics need more than 1");
  Tensor mean = all_reduce_sum_op(group, share, sum(x, dims)) * (1 / n);
  Tensor centred = x - reshape(mean, per_channel);
  Tensor var = all_reduce_sum_op(group, share, sum(centred * centred, dims)) * (1 / n);
  Tensor y = centred * reshape(pow(var + eps, -0.5), per_channel);
  if (weight.defined()) y = y * reshape(weight, per_channel);
  if (bias.defined()) y = y + reshape(bias, per_channel);
  NoGrad no_grad;
  if (running_mean.defined()) {
    copy_(running_mean, running_mean * (1 - momentum) + mean.detach() * momentum);
  }
  if (running_var.defined()) {
    copy_(running_var, running_var * (1 - momentum) + var.detach() * (momentum * n / (n - 1)));
  }
  return y;
}

SyncBatchNormScope::SyncBatchNormScope(ProcessGroup& group, std::function<double()> share) {
  before_ = nn::set_sync_batch_norm([&group, share](const Tensor& x, const Tensor& rm,
                                                    const Tensor& rv, const Tensor& w,
                                                    const Tensor& b, double momentum, double eps) {
    return sync_batch_norm(group, share, x, rm, rv, w, b, momentum, eps);
  });
}

SyncBatchNormScope::~SyncBatchNormScope() { nn::set_sync_batch_norm(std::move(before_)); }

}  // namespace spool::dist
