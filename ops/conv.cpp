// conv: one kernel call each way; the bias is a broadcast add, so its gradient is a sum.
#include "ops/conv.h"

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/factory.h"
#include "ops/autocast.h"
#include "ops/elementwise.h"
#include "ops/shape.h"

namespace spool {

namespace detail {
std::vector<int64_t> per_dim(const std::vector<int64_t>& v, int64_t dims, const char* op,
                             const char* arg) {
  if (int64_t(v.size()) == dims) return v;
  SPOOL_CHECK(v.size() == 1, op, ": ", arg, " has ", v.size(), " values for ", dims,
              " spatial dims");
  return std::vector<int64_t>(size_t(dims), v[0]);
}
}  // namespace detail

Tensor conv(const Tensor& x_in, const Tensor& w_in, const Tensor& bias, const ConvOptions& o) {
  const char* op = x_in.dim() == 3 ? "conv1d" : x_in.dim() == 4 ? "conv2d" : "conv3d";
  SPOOL_CHECK(x_in.dim() >= 3 && x_in.dim() <= 5, "conv: input is ", str(x_in.shape()),
              "; expected [N, C, L], [N, C, H, W] or [N, C, D, H, W]");
  SPOOL_CHECK(w_in.dim() == x_in.dim(), op, ": weight is ", str(w_in.shape()), ", input is ",
              str(x_in.shape()), "; expected a weight with ", x_in.dim(), " dims");
  SPOOL_CHECK(x_in.dtype() == w_in.dtype() && is_float(x_in.dtype()), op, ": input is ",
              describe(x_in), ", weight is ", describe(w_in), "; need equal float dtypes");
  detail::check_same_device(x_in, w_in, op);
  const int64_t nd = x_in.dim() - 2, groups = o.groups;
  const int64_t c = x_in.size(1), cout = w_in.size(0);
  SPOOL_CHECK(groups >= 1 && c % groups == 0 && cout % groups == 0, op, ": groups ", groups,
              " must divide input channels ", c, " and output channels ", cout);
  SPOOL_CHECK(w_in.size(1) * groups == c, op, ": input has ", c, " channels, weight ",
              str(w_in.shape()), " expects ", w_in.size(1) * groups, " (", w_in.size(1),
              " per group x ", groups, " groups)");
  WindowParams p;
  p.kernel.assign(w_in.shape().begin() + 2, w_in.shape().end());
  p.stride = detail::per_dim(o.stride, nd, op, "stride");
  p.padding = detail::per_dim(o.padding, nd, op, "padding");
  p.dilation = detail::per_dim(o.dilation, nd, op, "dilation");
  p.groups = groups;
  Shape out_shape = {x_in.size(0), cout};
  for (int64_t d = 0; d < nd; ++d) {
    SPOOL_CHECK(p.stride[size_t(d)] > 0 && p.dilation[size_t(d)] > 0 && p.padding[size_t(d)] >= 0,
                op, ": stride and dilation must be positive and padding non-negative");
    const int64_t in = x_in.size(2 + d);
    const int64_t span = p.dilation[size_t(d)] * (p.kernel[size_t(d)] - 1) + 1;
    SPOOL_CHECK(span <= in + 2 * p.padding[size_t(d)], op, ": kernel ", str(p.kernel),
                " (dilated extent ", span, ") is larger than the padded input ", str(x_in.shape()),
                " in spatial dim ", d, " (", in, " + 2 x ", p.padding[size_t(d)], ")");
    out_shape.push_back(p.out_size(size_t(d), in));
  }
  if (bias.defined())
    SPOOL_CHECK(bias.dim() == 1 && bias.size(0) == cout && bias.dtype() == x_in.dtype(), op,
                ": bias is ", describe(bias), "; expected ", name(x_in.dtype()), "[", cout, "]");
  Tensor x = contiguous(x_in), w = contiguous(w_in);
  Tensor y = empty(out_shape, x.dtype(), x.device());
  double flops = 2.0 * double(y.numel()) * double(w.numel() / cout);
  if (autocast_enabled() && x.dtype() == DType::f32) {
    // Autocast: bf16 copies of x and w are kept for backward; the f32 kernels run on their exact
    // f32 widening (f32 accumulation), and backward rounds the incoming gradient to bf16 too.
    Tensor x16, w16;
    {
      NoGrad no_grad;
      x16 = to(x, DType::bf16);
      w16 = to(w, DType::bf16);
      if (y.numel() > 0) backend(x.device()).conv(to(x16, DType::f32), to(w16, DType::f32), p, y);
    }
    record(op, {x, w}, {y}, {x16, w16},
           [p](const Tensors& s, const Tensors& g, const Needs& n) {
             const Tensor gy = to(to(contiguous(g[0]), DType::bf16), DType::f32);
             const Tensor &x16 = s[0], &w16 = s[1];
             Tensor gx, gw;
             if (n[0]) {
               gx = empty(x16.shape(), DType::f32, x16.device());
               if (gy.numel() > 0)
                 backend(gx.device()).conv_backward_input(gy, to(w16, DType::f32), p, gx);
               else
                 backend(gx.device()).fill(gx, 0);
             }
             if (n[1]) {
               gw = empty(w16.shape(), DType::f32, w16.device());
               if (gy.numel() > 0)
                 backend(gw.device()).conv_backward_weight(gy, to(x16, DType::f32), p, gw);
               else
                 backend(gw.device()).fill(gw, 0);
             }
             return Tensors{gx, gw};
           },
           {flops});
    if (!bias.defined()) return y;
    Shape bshape(size_t(y.dim()), 1);
    bshape[1] = cout;
    return y + reshape(bias, bshape);
  }
  if (y.numel() > 0) backend(x.device()).conv(x, w, p, y);
  record(op, {x, w}, {y}, {x, w},
         [p](const Tensors& s, const Tensors& g, const Needs& n) {
           const Tensor &x = s[0], &w = s[1];
           Tensor gy = contiguous(g[0]), gx, gw;
           if (n[0]) {
             gx = empty(x.shape(), x.dtype(), x.device());
             if (gy.numel() > 0)
               backend(x.device()).conv_backward_input(gy, w, p, gx);
             else
               backend(x.device()).fill(gx, 0);
           }
           if (n[1]) {
             gw = empty(w.shape(), w.dtype(), w.device());
             if (gy.numel() > 0)
               backend(x.device()).conv_backward_weight(gy, x, p, gw);
             else
               backend(x.device()).fill(gw, 0);
           }
           return Tensors{gx, gw};
         },
         {flops});
  if (!bias.defined()) return y;
  Shape bshape(size_t(y.dim()), 1);
  bshape[1] = cout;
  return y + reshape(bias, bshape);
}

}  // namespace spool
