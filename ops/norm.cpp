// layer_norm: fused kernel forward and backward; mean and 1/std are saved per row.
#include "ops/norm.h"

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/factory.h"
#include "ops/shape.h"

namespace spool {

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
      SPOOL_CHECK(p->shape() == normalized_shape && p->dtype() == x_in.dtype(), "layer_norm: ",
                  p == &weight ? "weight" : "bias", " is ", describe(*p), "; expected ",
                  name(x_in.dtype()), str(normalized_shape));
  const int64_t d = numel(normalized_shape), rows = d == 0 ? 0 : x_in.numel() / d;
  Tensor x = contiguous(x_in);
  Tensor w = weight.defined() ? contiguous(weight) : Tensor();
  Tensor b = bias.defined() ? contiguous(bias) : Tensor();
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  Tensor mu = empty({rows}, x.dtype(), x.device()), rstd = empty({rows}, x.dtype(), x.device());
  backend(x.device()).layer_norm(x, w, b, eps, y, mu, rstd);
  record("layer_norm", {x, w, b}, {y}, {x, w, mu, rstd},
         [normalized_shape](const Tensors& s, const Tensors& g, const Needs& n) {
           const Tensor &x = s[0], &w = s[1];
           Tensor gy = contiguous(g[0]);
           Tensor gx = empty(x.shape(), x.dtype(), x.device());
           Tensor gw = n[1] ? empty(normalized_shape, x.dtype(), x.device()) : Tensor();
           Tensor gb = n[2] ? empty(normalized_shape, x.dtype(), x.device()) : Tensor();
           backend(x.device()).layer_norm_backward(x, w, s[2], s[3], gy, gx, gw, gb);
           return Tensors{gx, gw, gb};
         },
         [normalized_shape, eps](const Tensors& in) {
           return Tensors{layer_norm(in[0], normalized_shape, in[1], in[2], eps)};
         },
         {8.0 * double(x.numel()), 2.0 * double(x.nbytes())});
  return y;
}

}  // namespace spool
