// Batch norm over the global batch of a data-parallel run, as torch.nn.SyncBatchNorm.
//
// Each rank holds some rows of the batch; the statistics are those of all rows: the per-channel
// sums of x are all-reduced for the mean, then the sums of (x - mean)^2 for the biased variance
// (two passes, as one process computes them). The all-reduces are ops of the autograd: their
// backward all-reduces the incoming gradients, each weighted by its rank's share of the loss and
// divided by this rank's (DataParallel weights this rank's gradients by its share after
// backward), so the gradients are those of the global batch's loss.
#pragma once
#include <functional>

#include "dist/dist.h"
#include "engine/tensor.h"
#include "nn/norm.h"

namespace spool::dist {

// batch_norm(x, ...) in training over every rank's rows. `share` gives this rank's share of the
// global batch's loss at backward time.
Tensor sync_batch_norm(ProcessGroup& group, const std::function<double()>& share, const Tensor& x,
                       const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, double momentum, double eps);

// The sum of x over the ranks, as an op: backward gives sum_k share_k g_k / share_r.
Tensor all_reduce_sum_op(ProcessGroup& group, const std::function<double()>& share,
                         const Tensor& x);

// While alive, BatchNorm layers in training use sync_batch_norm over `group` (nn/norm.h).
class SyncBatchNormScope {
 public:
  SyncBatchNormScope(ProcessGroup& group, std::function<double()> share);
  ~SyncBatchNormScope();
  SyncBatchNormScope(const SyncBatchNormScope&) = delete;
  SyncBatchNormScope& operator=(const SyncBatchNormScope&) = delete;

 private:
  nn::SyncBatchNormFn before_;
};

}  // namespace spool::dist
