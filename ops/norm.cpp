// layer_norm: fused kernel forward and backward; mean and 1/std are saved per row.
#include "ops/norm.h"

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/factory.h"
#include "engine/trace.h"
#include "ops/elementwise.h"
#include "ops/shape.h"

namespace spool {

namespace {

// A contiguous tensor viewed as [rows, d], and as [d] (undefined stays undefined).
Tensor as_rows(const Tensor& t, int64_t rows, int64_t d) {
  return Tensor::make(t.storage(), t.offset(), {rows, d}, {d, 1}, t.dtype());
}
Tensor as_row(const Tensor& t, int64_t d) {
  return t.defined() ? Tensor::make(t.storage(), t.offset(), {d}, {1}, t.dtype()) : Tensor();
}

}  // namespace

Tensor layer_norm(const Tensor& x_in, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  const int64_t k = int64_t(normalized_shape.size());
  SPOOL_CHECK(k >= 1 && x_in.dim() >= k &&
                  Shape(x_in.shape().end() - k, x_in.shape().end()) == normalized_shape,
              "layer_norm: input ", str(x_in.shape()), " does not end with normalized_shape ",
              str(normalized_shape));
  SPOOL_CHECK(is_float(x_in.dtype()), "layer_norm: input is ", describe(x_in),
              "; expected f32 or f64");
  for (const Tensor* p : {&weight, &bias})
    if (p->defined())
      SPOOL_CHECK(p->shape() == normalized_shape && p->dtype() == x_in.dtype(),
                  "layer_norm: ", p == &weight ? "weight" : "bias", " is ", describe(*p),
                  "; expected ", name(x_in.dtype()), str(normalized_shape));
  const int64_t d = numel(normalized_shape), rows = d == 0 ? 0 : x_in.numel() / d;
  Tensor x = contiguous(x_in);
  Tensor w = weight.defined() ? contiguous(weight) : Tensor();
  Tensor b = bias.defined() ? contiguous(bias) : Tensor();
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  Tensor mu = empty({rows}, x.dtype(), x.device()), rstd = empty({rows}, x.dtype(), x.device());
  // The kernels see [rows, d] and [d]: normalized_shape may span several trailing dims.
  backend(x.device())
      .layer_norm(as_rows(x, rows, d), as_row(w, d), as_row(b, d), eps, as_rows(y, rows, d), mu,
                  rstd);
  record("layer_norm", {x, w, b}, {y}, {x, w, mu, rstd},
         [normalized_shape, rows, d](const Tensors& s, const Tensors& g, const Needs& n) {
           const Tensor &x = s[0], &w = s[1];
           Tensor gy = contiguous(g[0]);
           Tensor gx = empty(x.shape(), x.dtype(), x.device());
           Tensor gw = n[1] ? empty(normalized_shape, x.dtype(), x.device()) : Tensor();
           Tensor gb = n[2] ? empty(normalized_shape, x.dtype(), x.device()) : Tensor();
           backend(x.device())
               .layer_norm_backward(as_rows(x, rows, d), as_row(w, d), s[2], s[3],
                                    as_rows(gy, rows, d), as_rows(gx, rows, d), as_row(gw, d),
                                    as_row(gb, d));
           return Tensors{gx, gw, gb};
         },
         {8.0 * double(x.numel())});
  return y;
}

namespace {

// batch_norm's backward from its saved {x, mu, invstd, weight} and the output's gradient.
Tensors batch_norm_grads(const Tensors& s, const Tensor& gy_in, const Needs& n, bool training) {
  const Tensor& x = s[0];
  Tensor gy = contiguous(gy_in);
  Tensor gx = n[0] ? empty(x.shape(), x.dtype(), x.device()) : Tensor();
  Tensor gw = n[1] ? empty(s[3].shape(), x.dtype(), x.device()) : Tensor();
  Tensor gb =
      n[2] ? empty(s[3].defined() ? s[3].shape() : s[1].shape(), x.dtype(), x.device()) : Tensor();
  backend(x.device()).batch_norm_backward(x, gy, s[1], s[2], s[3], training, gx, gw, gb);
  return Tensors{gx, gw, gb};
}

// batch_norm(x), plus `residual` when defined, then relu when `relu`: the sum and the relu are
// done in place on the normalised output (the kernels of add and relu, in the same order, so
// the values are those of the unfused ops), and the output is all that is saved besides what
// batch_norm saves.
Tensor batch_norm_epilogue(const char* op, const Tensor& x_in, const Tensor& residual, bool relu,
                           const Tensor& running_mean, const Tensor& running_var,
                           const Tensor& weight, const Tensor& bias, bool training, double momentum,
                           double eps) {
  SPOOL_CHECK(x_in.dim() >= 2, op, ": input is ", str(x_in.shape()), "; expected [N, C, *]");
  SPOOL_CHECK(is_float(x_in.dtype()), op, ": input is ", describe(x_in), "; expected f32 or f64");
  if (residual.defined()) {
    detail::check_same_device(x_in, residual, op);
    SPOOL_CHECK(residual.shape() == x_in.shape() && residual.dtype() == x_in.dtype(), op,
                ": residual is ", describe(residual), " for an input that is ", describe(x_in),
                "; expected the same shape and dtype");
  }
  const int64_t c = x_in.size(1);
  const char* names[] = {"running_mean", "running_var", "weight", "bias"};
  const Tensor* params[] = {&running_mean, &running_var, &weight, &bias};
  for (int i = 0; i < 4; ++i)
    if (params[i]->defined())
      SPOOL_CHECK(params[i]->shape() == Shape{c} && params[i]->dtype() == x_in.dtype(), op, ": ",
                  names[i], " is ", describe(*params[i]), " for an input of ", c,
                  " channels; expected ", name(x_in.dtype()), "[", c, "]");
  SPOOL_CHECK(training || (running_mean.defined() && running_var.defined()), op,
              ": eval mode needs running_mean and running_var");
  const int64_t count = c == 0 ? 0 : x_in.numel() / c;
  if (training)
    SPOOL_CHECK(count > 1, op, ": training needs more than one value per channel, input is ",
                str(x_in.shape()));
  // One span in a trace for the statistics, their running averages and the normalisation.
  trace::OpScope scope("op", op);
  Tensor x = contiguous(x_in);
  Backend& be = backend(x.device());
  Tensor mu, invstd;
  {
    NoGrad no_grad;
    if (training) {
      mu = empty({c}, x.dtype(), x.device());
      Tensor var = empty({c}, x.dtype(), x.device());
      be.batch_norm_stats(x, mu, var);
      invstd = pow(var + eps, -0.5);
      if (running_mean.defined()) {
        mul_(running_mean, 1 - momentum);
        add_(running_mean, mu, momentum);
      }
      if (running_var.defined()) {
        mul_(running_var, 1 - momentum);
        add_(running_var, var, momentum * double(count) / double(count - 1));
      }
    } else {
      mu = clone(running_mean);
      invstd = pow(running_var + eps, -0.5);
    }
  }
  Tensor w = weight.defined() ? contiguous(weight) : Tensor();
  Tensor b = bias.defined() ? contiguous(bias) : Tensor();
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  be.batch_norm_apply(x, mu, invstd, w, b, y);
  Tensor r = residual.defined() ? contiguous(residual) : Tensor();
  if (r.defined()) be.binary(BinaryOp::add, y, r, y);
  if (relu) be.unary(UnaryOp::relu, y, y);
  // With relu, two tape entries over the one buffer, as in-place ops record in PyTorch:
  // batch_norm (+ the sum), whose backward needs x but not its output, and relu, which saves
  // the output for its mask. Separate entries let backward free relu's incoming gradient before
  // batch_norm's backward allocates, as with the unfused ops.
  record(r.defined() ? "batch_norm_add" : "batch_norm", {x, w, b, r}, {y}, {x, mu, invstd, w},
         [training](const Tensors& s, const Tensors& g, const Needs& n) {
           Tensors out = batch_norm_grads(s, g[0], {n[0], n[1], n[2]}, training);
           out.push_back(n[3] ? g[0] : Tensor());  // the sum passes the gradient on unchanged
           return out;
         });
  if (!relu) return y;
  Tensor out = y.detach();  // the same storage, relu's output
  detail::record_relu(y, out);
  return out;
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps) {
  return batch_norm_epilogue("batch_norm", x, Tensor(), false, running_mean, running_var, weight,
                             bias, training, momentum, eps);
}

Tensor batch_norm_relu(const Tensor& x, const Tensor& residual, const Tensor& running_mean,
                       const Tensor& running_var, const Tensor& weight, const Tensor& bias,
                       bool training, double momentum, double eps) {
  return batch_norm_epilogue("batch_norm_relu", x, residual, true, running_mean, running_var,
                             weight, bias, training, momentum, eps);
}

}  // namespace spool
