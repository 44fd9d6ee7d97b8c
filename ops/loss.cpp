// Losses: cross_entropy is one fused kernel each way (the backends' cross_entropy); the rest, and
// detail::cross_entropy_composite, are composed from differentiable ops.
#include "ops/loss.h"

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/factory.h"
#include "engine/trace.h"
#include "ops/elementwise.h"
#include "ops/index.h"
#include "ops/reduce.h"
#include "ops/shape.h"
#include "ops/softmax.h"

namespace spool {

namespace {

// Moves the class dim of [N, C, d1, ...] last and flattens to [N*d1*..., C]; targets to [-1].
void flatten_classes(Tensor& x, Tensor& targets, const char* op) {
  SPOOL_CHECK(x.dim() >= 1, op, ": input is a scalar; expected [N, C]");
  if (x.dim() == 1) {  // a single sample [C] with a scalar target
    x = unsqueeze(x, 0);
    targets = reshape(targets, {-1});
  }
  Shape expect = x.shape();
  expect.erase(expect.begin() + 1);
  SPOOL_CHECK(targets.shape() == expect, op, ": input is ", str(x.shape()), ", targets are ",
              str(targets.shape()), "; expected targets of shape ", str(expect));
  if (x.dim() > 2) {
    std::vector<int64_t> order = {0};
    for (int64_t d = 2; d < x.dim(); ++d) order.push_back(d);
    order.push_back(1);
    x = reshape(permute(x, order), {-1, x.size(1)});
  }
  targets = reshape(targets, {-1});
}

void check_targets(const Tensor& targets, int64_t classes, int64_t ignore_index, const char* op) {
  SPOOL_CHECK(targets.dtype() == DType::i64, op, ": targets are ", describe(targets),
              "; expected i64 class indices");
  NoGrad no_grad;
  Tensor bad =
      where(eq(targets, double(ignore_index)), zeros({}, DType::i64, targets.device()), targets);
  if (bad.numel() == 0) return;
  const int64_t lo = int64_t(min(bad).item()), hi = int64_t(max(bad).item());
  SPOOL_CHECK(lo >= 0 && hi < classes, op, ": target ", lo < 0 ? lo : hi, " is out of range for ",
              classes, " classes (and is not ignore_index ", ignore_index, ")");
}

Tensor reduce_loss(const Tensor& per_item, const Tensor& valid, Reduction r) {
  switch (r) {
    case Reduction::none:
      return per_item;
    case Reduction::sum:
      return sum(per_item);
    case Reduction::mean:
      return sum(per_item) / sum(valid);
  }
  return per_item;
}

}  // namespace

Tensor nll_loss(const Tensor& log_probs, const Tensor& targets_in, int64_t ignore_index,
                Reduction reduction) {
  Tensor lp = log_probs, targets = targets_in;
  flatten_classes(lp, targets, "nll_loss");
  check_targets(targets, lp.size(1), ignore_index, "nll_loss");
  Tensor valid_mask = ne(targets, double(ignore_index));
  Tensor safe = where(valid_mask, targets, zeros({}, DType::i64, targets.device()));
  Tensor valid = to(valid_mask, lp.dtype());
  Tensor picked = squeeze(gather(lp, 1, unsqueeze(safe, 1)), 1);
  Tensor loss = neg(picked) * valid;
  if (reduction == Reduction::none && targets_in.shape() != loss.shape())
    loss = reshape(loss, targets_in.shape());
  return reduce_loss(loss, valid, reduction);
}

namespace {

void check_cross_entropy(const Tensor& logits, const CrossEntropyOptions& o) {
  SPOOL_CHECK(o.label_smoothing >= 0 && o.label_smoothing <= 1, "cross_entropy: label_smoothing ",
              o.label_smoothing, " is outside [0, 1]");
  SPOOL_CHECK(is_float(logits.dtype()), "cross_entropy: logits are ", describe(logits),
              "; expected f32 or f64");
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& targets_in, const CrossEntropyOptions& o) {
  trace::OpScope scope("op", "cross_entropy");  // the targets' checks and the loss, one span
  check_cross_entropy(logits, o);
  Tensor x = logits, targets = targets_in;
  flatten_classes(x, targets, "cross_entropy");
  const int64_t classes = x.size(1);
  check_targets(targets, classes, o.ignore_index, "cross_entropy");
  // One kernel each way: the per-row losses and log-sum-exps forward, the logits' gradient
  // backward; it keeps the logits instead of their log-probabilities.
  x = contiguous(x);
  targets = contiguous(targets);
  const int64_t rows = x.size(0);
  Tensor loss = empty({rows}, x.dtype(), x.device());
  Tensor lse = empty({rows}, x.dtype(), x.device());
  backend(x.device()).cross_entropy(x, targets, o.ignore_index, o.label_smoothing, loss, lse);
  const int64_t ignore = o.ignore_index;
  const double smoothing = o.label_smoothing;
  record("cross_entropy", {x}, {loss}, {x, targets, lse},
         [ignore, smoothing](const Tensors& s, const Tensors& g, const Needs&) {
           Tensor gl = contiguous(g[0]);
           Tensor gx = empty(s[0].shape(), s[0].dtype(), s[0].device());
           backend(gx.device()).cross_entropy_backward(s[0], s[1], s[2], gl, ignore, smoothing, gx);
           return Tensors{gx};
         },
         {6.0 * double(x.numel())});
  Tensor valid = to(ne(targets, double(o.ignore_index)), x.dtype());
  if (o.reduction == Reduction::none && targets_in.shape() != loss.shape())
    loss = reshape(loss, targets_in.shape());
  return reduce_loss(loss, valid, o.reduction);
}

namespace detail {

Tensor cross_entropy_composite(const Tensor& logits, const Tensor& targets_in,
                               const CrossEntropyOptions& o) {
  check_cross_entropy(logits, o);
  Tensor x = logits, targets = targets_in;
  flatten_classes(x, targets, "cross_entropy");
  const int64_t classes = x.size(1);
  check_targets(targets, classes, o.ignore_index, "cross_entropy");
  Tensor lp = log_softmax(x, 1);
  Tensor valid_mask = ne(targets, double(o.ignore_index));
  Tensor safe = where(valid_mask, targets, zeros({}, DType::i64, targets.device()));
  Tensor valid = to(valid_mask, lp.dtype());
  Tensor loss = neg(squeeze(gather(lp, 1, unsqueeze(safe, 1)), 1));
  if (o.label_smoothing > 0) {
    // (1 - eps) * nll + eps * mean over classes of -log p, as torch.nn.CrossEntropyLoss.
    Tensor smooth = neg(sum(lp, {1})) / double(classes);
    loss = loss * (1.0 - o.label_smoothing) + smooth * o.label_smoothing;
  }
  loss = loss * valid;
  if (o.reduction == Reduction::none && targets_in.shape() != loss.shape())
    loss = reshape(loss, targets_in.shape());
  return reduce_loss(loss, valid, o.reduction);
}

}  // namespace detail

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  SPOOL_CHECK(input.shape() == target.shape(), "mse_loss: input is ", str(input.shape()),
              ", target is ", str(target.shape()), ": shapes differ");
  Tensor d = input - target;
  Tensor sq = d * d;
  switch (reduction) {
    case Reduction::none:
      return sq;
    case Reduction::sum:
      return sum(sq);
    case Reduction::mean:
      return mean(sq);
  }
  return sq;
}

}  // namespace spool
