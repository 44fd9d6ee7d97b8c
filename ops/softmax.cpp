// softmax / log_softmax: a fused kernel each way; backward needs only the forward's output.
#include "ops/softmax.h"

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/factory.h"
#include "ops/shape.h"

namespace spool {

namespace {

Tensor softmax_impl(const Tensor& x_in, int64_t dim, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  SPOOL_CHECK(is_float(x_in.dtype()), name, ": x is ", describe(x_in), "; expected f32 or f64");
  dim = wrap_dim(dim, x_in.dim(), name);
  Tensor x = contiguous(x_in);
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  if (x.dim() == 0) {
    NoGrad no_grad;  // softmax of a single value
    backend(x.device()).fill(y, log ? 0 : 1);
  } else {
    backend(x.device()).softmax(x, dim, log, y);
  }
  record(name, {x}, {y}, {y},
         [dim, log](const Tensors& s, const Tensors& g, const Needs&) {
           Tensor gy = contiguous(g[0]);
           Tensor gx = empty(gy.shape(), gy.dtype(), gy.device());
           // A single value's softmax (1) and log_softmax (0) are constants.
           if (gy.dim() == 0)
             backend(gy.device()).fill(gx, 0);
           else
             backend(gy.device()).softmax_backward(s[0], gy, dim, log, gx);
           return Tensors{gx};
         },
         {5.0 * double(x.numel())});
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true); }

}  // namespace spool
