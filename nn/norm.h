// Normalisation layers: BatchNorm1d/2d/3d (running statistics, momentum, eval mode) and
// LayerNorm, with PyTorch's parameter and buffer names.
#pragma once
#include <functional>
#include "nn/module.h"

namespace spool::nn {

// Batch statistics over every process of a data-parallel run (dist/sync_batch_norm.h): while a
// function is set, BatchNorm layers in training normalise with what it returns, the global
// batch's statistics (as torch.nn.SyncBatchNorm), instead of batch_norm's of this process's rows.
// Its arguments are batch_norm's in training. Returns the function it replaces.
using SyncBatchNormFn =
    std::function<Tensor(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                         const Tensor& weight, const Tensor& bias, double momentum, double eps)>;
SyncBatchNormFn set_sync_batch_norm(SyncBatchNormFn fn);

class BatchNorm : public Module {
 public:
  // dims: 1 for [N, C] or [N, C, L], 2 for [N, C, H, W], 3 for [N, C, D, H, W].
  BatchNorm(int64_t dims, int64_t channels, double momentum = 0.1, double eps = 1e-5,
            bool affine = true);
  std::string type_name() const override;
  Tensor forward(const Tensor& x) override;
  // forward for channels [first, first + count) of the layer alone: x holds those channels, and
  // their statistics and affine parameters are used and updated (views of the layer's). The
  // statistics are per channel, so the values are forward's on the whole input. The call
  // covering channel 0 counts the batch in num_batches_tracked (once, as forward does).
  // With relu: relu of that, as one op (batch_norm_relu).
  Tensor forward_channels(const Tensor& x, int64_t first, int64_t count, bool relu = false);
  // relu(forward(x) + residual) as one op (batch_norm_relu: the sum and relu written over the
  // normalised output); residual, of x's shape, may be undefined.
  Tensor forward_relu(const Tensor& x, const Tensor& residual = {});

  Tensor weight, bias;                                    // [C]
  Tensor running_mean, running_var, num_batches_tracked;  // [C], [C], i64 []

 private:
  Tensor apply(const Tensor& x, int64_t first, int64_t count, bool relu, const Tensor& residual,
               const char* what);
  int64_t dims_;
  double momentum_, eps_;
};

class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(int64_t c, double momentum = 0.1, double eps = 1e-5)
      : BatchNorm(1, c, momentum, eps) {}
};
class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(int64_t c, double momentum = 0.1, double eps = 1e-5)
      : BatchNorm(2, c, momentum, eps) {}
};
class BatchNorm3d : public BatchNorm {
 public:
  explicit BatchNorm3d(int64_t c, double momentum = 0.1, double eps = 1e-5)
      : BatchNorm(3, c, momentum, eps) {}
};

class LayerNorm : public Module {
 public:
  explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool affine = true);
  std::string type_name() const override { return "LayerNorm"; }
  Tensor forward(const Tensor& x) override;

  Tensor weight, bias;

 private:
  Shape shape_;
  double eps_;
};

}  // namespace spool::nn
