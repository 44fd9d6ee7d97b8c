// Losses, with PyTorch's semantics and defaults.
#pragma once
#include "engine/tensor.h"

namespace spool {

enum class Reduction { none, mean, sum };

struct CrossEntropyOptions {
  int64_t ignore_index = -100;  // targets equal to this contribute nothing
  double label_smoothing = 0;   // in [0, 1]
  Reduction reduction = Reduction::mean;
};

// logits [N, C] (or [N, C, d1, ...]), targets i64 [N] (or [N, d1, ...]) holding class indices.
// The mean is over targets that are not ignored. One fused kernel each way (softmax and the loss
// forward, the logits' gradient backward; it saves the logits and a log-sum-exp per row), which
// the tests hold to detail::cross_entropy_composite (log_softmax, gather and the smoothing term
// composed of ops). Ignored targets have loss 0 and gradient 0, whatever their logits.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets,
                     const CrossEntropyOptions& options = {});
namespace detail {
Tensor cross_entropy_composite(const Tensor& logits, const Tensor& targets,
                               const CrossEntropyOptions& options = {});
}  // namespace detail
// log_probs [N, C]; the negative log-likelihood of the target classes.
Tensor nll_loss(const Tensor& log_probs, const Tensor& targets, int64_t ignore_index = -100,
                Reduction reduction = Reduction::mean);
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean);

}  // namespace spool
