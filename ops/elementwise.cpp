// Elementwise ops, each forward beside its backward formula.
#include "ops/elementwise.h"

#include <cmath>
#include <limits>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/factory.h"
#include "engine/trace.h"
#include "ops/matmul.h"
#include "ops/reduce.h"
#include "ops/shape.h"

namespace spool {

namespace detail {

Tensor broadcast_view(const Tensor& t, const Shape& shape) {
  if (t.shape() == shape) return t.detach();
  const int64_t lead = int64_t(shape.size()) - t.dim();
  Shape strides(shape.size(), 0);
  for (int64_t d = 0; d < t.dim(); ++d)
    strides[size_t(lead + d)] = t.shape()[d] == 1 ? 0 : t.strides()[d];
  return Tensor::make(t.storage(), t.offset(), shape, strides, t.dtype());
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int64_t lead = g.dim() - int64_t(shape.size());
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < g.dim(); ++d)
    if (d < lead || (shape[size_t(d - lead)] == 1 && g.shape()[d] != 1)) dims.push_back(d);
  return reshape(sum(g, dims, true), shape);
}

void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  SPOOL_CHECK(a.device() == b.device(), op, ": a is on ", a.device().str(), ", b is on ",
              b.device().str());
}

}  // namespace detail

using detail::broadcast_view;
using detail::sum_to;

namespace {

Tensor unary_kernel(UnaryOp op, const Tensor& x, const char* name, double a = 0, double b = 0) {
  SPOOL_CHECK(is_float(x.dtype()), name, ": x is ", describe(x), "; expected f32 or f64");
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  backend(x.device()).unary(op, x, y, a, b);
  return y;
}

Tensor binary_kernel(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  detail::check_same_device(a, b, name);
  SPOOL_CHECK(a.dtype() == b.dtype(), name, ": a is ", describe(a), ", b is ", describe(b),
              ": dtypes differ (convert one with to())");
  SPOOL_CHECK(!(op == BinaryOp::div || op == BinaryOp::pow) || is_float(a.dtype()), name,
              ": needs f32 or f64 operands, got ", describe(a));
  Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor y = empty(shape, is_comparison(op) ? DType::b8 : a.dtype(), a.device());
  backend(a.device()).binary(op, broadcast_view(a, shape), broadcast_view(b, shape), y);
  return y;
}

Tensor scalar_like(double v, const Tensor& t) { return scalar(v, t.dtype(), t.device()); }

}  // namespace

// ---- binary arithmetic ----------------------------------------------------------------------

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = binary_kernel(BinaryOp::add, a, b, "add");
  record("add", {a, b}, {y}, {},
         [sa = a.shape(), sb = b.shape()](const Tensors&, const Tensors& g, const Needs&) {
           return Tensors{sum_to(g[0], sa), sum_to(g[0], sb)};
         });
  return y;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor y = binary_kernel(BinaryOp::sub, a, b, "sub");
  record("sub", {a, b}, {y}, {},
         [sa = a.shape(), sb = b.shape()](const Tensors&, const Tensors& g, const Needs& n) {
           return Tensors{sum_to(g[0], sa), n[1] ? sum_to(neg(g[0]), sb) : Tensor()};
         });
  return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor y = binary_kernel(BinaryOp::mul, a, b, "mul");
  record("mul", {a, b}, {y}, {a, b}, [](const Tensors& s, const Tensors& g, const Needs& n) {
    return Tensors{n[0] ? sum_to(g[0] * s[1], s[0].shape()) : Tensor(),
                   n[1] ? sum_to(g[0] * s[0], s[1].shape()) : Tensor()};
  });
  return y;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor y = binary_kernel(BinaryOp::div, a, b, "div");
  record("div", {a, b}, {y}, {a, b}, [](const Tensors& s, const Tensors& g, const Needs& n) {
    // d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
    return Tensors{n[0] ? sum_to(g[0] / s[1], s[0].shape()) : Tensor(),
                   n[1] ? sum_to(neg(g[0]) * s[0] / (s[1] * s[1]), s[1].shape()) : Tensor()};
  });
  return y;
}

Tensor pow(const Tensor& a, const Tensor& b) {
  Tensor y = binary_kernel(BinaryOp::pow, a, b, "pow");
  record("pow", {a, b}, {y}, {a, b, y}, [](const Tensors& s, const Tensors& g, const Needs& n) {
    const Tensor &a = s[0], &b = s[1], &y = s[2];
    Tensor ga, gb;
    // d/da a^b = b a^(b-1); d/db a^b = a^b log a, taken as 0 where a = 0 and b >= 0.
    if (n[0]) ga = sum_to(g[0] * b * pow(a, b - 1.0), a.shape());
    if (n[1]) {
      Tensor zero_base = mul(to(eq(a, 0.0), a.dtype()), to(ge(b, scalar_like(0, b)), a.dtype()));
      Tensor d = where(gt(zero_base, 0.0), scalar_like(0, y), y * log(a));
      gb = sum_to(g[0] * d, b.shape());
    }
    return Tensors{ga, gb};
  });
  return y;
}

Tensor pow(const Tensor& x, double p) {
  Tensor y = unary_kernel(UnaryOp::pow_scalar, x, "pow", p);
  record("pow_scalar", {x}, {y}, {x}, [p](const Tensors& s, const Tensors& g, const Needs&) {
    return Tensors{g[0] * pow(s[0], p - 1) * p};
  });
  return y;
}

Tensor add(const Tensor& a, double b) { return add(a, scalar_like(b, a)); }
Tensor mul(const Tensor& a, double b) { return mul(a, scalar_like(b, a)); }

// ---- unary math ----------------------------------------------------------------------------

Tensor neg(const Tensor& x) {
  Tensor y = unary_kernel(UnaryOp::neg, x, "neg");
  record("neg", {x}, {y}, {},
         [](const Tensors&, const Tensors& g, const Needs&) { return Tensors{neg(g[0])}; });
  return y;
}

Tensor exp(const Tensor& x) {
  Tensor y = unary_kernel(UnaryOp::exp, x, "exp");
  record("exp", {x}, {y}, {y},
         [](const Tensors& s, const Tensors& g, const Needs&) { return Tensors{g[0] * s[0]}; });
  return y;
}

Tensor log(const Tensor& x) {
  Tensor y = unary_kernel(UnaryOp::log, x, "log");
  record("log", {x}, {y}, {x},
         [](const Tensors& s, const Tensors& g, const Needs&) { return Tensors{g[0] / s[0]}; });
  return y;
}

Tensor sqrt(const Tensor& x) {
  Tensor y = unary_kernel(UnaryOp::sqrt, x, "sqrt");
  record("sqrt", {x}, {y}, {y}, [](const Tensors& s, const Tensors& g, const Needs&) {
    return Tensors{g[0] / (s[0] * 2.0)};
  });
  return y;
}

Tensor abs(const Tensor& x) {
  Tensor y = unary_kernel(UnaryOp::abs, x, "abs");
  record("abs", {x}, {y}, {x}, [](const Tensors& s, const Tensors& g, const Needs&) {
    return Tensors{g[0] * unary_kernel(UnaryOp::sign, s[0], "abs")};
  });
  return y;
}

Tensor tanh(const Tensor& x) {
  Tensor y = unary_kernel(UnaryOp::tanh, x, "tanh");
  record("tanh", {x}, {y}, {y}, [](const Tensors& s, const Tensors& g, const Needs&) {
    return Tensors{g[0] * (1.0 - s[0] * s[0])};
  });
  return y;
}

Tensor sigmoid(const Tensor& x) {
  Tensor y = unary_kernel(UnaryOp::sigmoid, x, "sigmoid");
  record("sigmoid", {x}, {y}, {y}, [](const Tensors& s, const Tensors& g, const Needs&) {
    return Tensors{g[0] * s[0] * (1.0 - s[0])};
  });
  return y;
}

Tensor log_sigmoid(const Tensor& x) {
  Tensor y = unary_kernel(UnaryOp::log_sigmoid, x, "log_sigmoid");
  record("log_sigmoid", {x}, {y}, {x}, [](const Tensors& s, const Tensors& g, const Needs&) {
    return Tensors{g[0] * sigmoid(-s[0])};
  });
  return y;
}

namespace {
Tensor relu_grad_kernel(const Tensor& y, const Tensor& g, bool over) {
  SPOOL_CHECK(g.shape() == y.shape() && g.dtype() == y.dtype() && is_float(g.dtype()),
              "relu_backward: gradient is ", describe(g), " for an output that is ", describe(y),
              "; expected equal float shapes and dtypes");
  detail::check_same_device(g, y, "relu_backward");
  Tensor out = over && sole_owner(g) ? g : empty(g.shape(), g.dtype(), g.device());
  backend(g.device()).binary(BinaryOp::relu_grad, g, y, out);
  return out;
}
}  // namespace

Tensor relu_backward(const Tensor& y, const Tensor& g) { return relu_grad_kernel(y, g, false); }

Tensor detail::relu_backward_over(const Tensor& y, const Tensor& g) {
  return relu_grad_kernel(y, g, true);
}

void detail::record_relu(const Tensor& x, const Tensor& y) {
  record("relu", {x}, {y}, {y}, [](const Tensors& s, const Tensors& g, const Needs&) {
    return Tensors{relu_backward_over(s[0], g[0])};
  });
}

Tensor relu(const Tensor& x) {
  Tensor y = unary_kernel(UnaryOp::relu, x, "relu");
  detail::record_relu(x, y);
  return y;
}

Tensor gelu(const Tensor& x, GeluApprox approx) {
  const bool t = approx == GeluApprox::tanh;
  Tensor y = unary_kernel(t ? UnaryOp::gelu_tanh : UnaryOp::gelu, x, "gelu");
  record(t ? "gelu_tanh" : "gelu", {x}, {y}, {x},
         [t](const Tensors& s, const Tensors& g, const Needs&) {
           return Tensors{
               g[0] * unary_kernel(t ? UnaryOp::gelu_tanh_grad : UnaryOp::gelu_grad, s[0], "gelu")};
         });
  return y;
}

Tensor gelu_matmul(const Tensor& x, const Tensor& w, GeluApprox approx) {
  const bool t = approx == GeluApprox::tanh;
  SPOOL_CHECK(x.dim() >= 2 && w.dim() == 2, "gelu_matmul: x is ", str(x.shape()), ", w is ",
              str(w.shape()), ": need w [in, out] and x [..., rows, in]");
  SPOOL_CHECK(x.size(-1) == w.size(0), "gelu_matmul: x is ", str(x.shape()), ", w is ",
              str(w.shape()), ": x's last dimension must equal w's first");
  Tensor y;
  {
    NoGrad no_grad;  // gelu(x) is a temporary: nothing records it
    y = matmul(gelu(x, approx), w);
  }
  const double flops = 2.0 * double(numel(y.shape())) * double(w.size(0));
  record(t ? "gelu_tanh_matmul" : "gelu_matmul", {x, w}, {y}, {x, w},
         [t, approx](const Tensors& s, const Tensors& g, const Needs& need) {
           const Tensor &x = s[0], &w = s[1];
           Tensor gx, gw;
           // As matmul's and gelu's backwards, with gelu(x) made again.
           if (need[1]) {
             const Tensor a = gelu(x, approx);
             if (a.dim() > 2)
               gw = matmul(transpose(reshape(a, {-1, a.size(-1)}), 0, 1),
                           reshape(g[0], {-1, g[0].size(-1)}));
             else
               gw = detail::sum_to(matmul(transpose(a, -1, -2), g[0]), w.shape());
           }
           if (need[0]) {
             Tensor ga = detail::sum_to(matmul(g[0], transpose(w, -1, -2)), x.shape());
             gx = ga * unary_kernel(t ? UnaryOp::gelu_tanh_grad : UnaryOp::gelu_grad, x, "gelu");
           }
           return Tensors{gx, gw};
         },
         {flops + double(numel(x.shape()))});
  return y;
}

Tensor clamp(const Tensor& x, double lo, double hi) {
  SPOOL_CHECK(!(lo > hi), "clamp: lower bound ", lo, " exceeds upper bound ", hi);
  Tensor y = unary_kernel(UnaryOp::clamp, x, "clamp", lo, hi);
  record("clamp", {x}, {y}, {x}, [lo, hi](const Tensors& s, const Tensors& g, const Needs&) {
    Tensor inside = mul(to(ge(s[0], scalar_like(lo, s[0])), g[0].dtype()),
                        to(le(s[0], scalar_like(hi, s[0])), g[0].dtype()));
    return Tensors{g[0] * inside};
  });
  return y;
}

// ---- selection -----------------------------------------------------------------------------

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  SPOOL_CHECK(cond.dtype() == DType::b8, "where: cond is ", describe(cond),
              "; expected a b8 mask (from a comparison)");
  SPOOL_CHECK(a.dtype() == b.dtype(), "where: a is ", describe(a), ", b is ", describe(b),
              ": dtypes differ");
  detail::check_same_device(a, b, "where");
  detail::check_same_device(cond, a, "where");
  Shape shape =
      broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor y = empty(shape, a.dtype(), a.device());
  backend(a.device())
      .where(broadcast_view(cond, shape), broadcast_view(a, shape), broadcast_view(b, shape), y);
  record("where", {cond, a, b}, {y}, {cond},
         [sa = a.shape(), sb = b.shape()](const Tensors& s, const Tensors& g, const Needs& n) {
           Tensor zero = scalar_like(0, g[0]);
           return Tensors{Tensor(), n[1] ? sum_to(where(s[0], g[0], zero), sa) : Tensor(),
                          n[2] ? sum_to(where(s[0], zero, g[0]), sb) : Tensor()};
         });
  return y;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  SPOOL_CHECK(mask.dtype() == DType::b8, "masked_fill: mask is ", describe(mask), "; expected b8");
  Shape shape = broadcast_shapes(x.shape(), mask.shape(), "masked_fill");
  SPOOL_CHECK(shape == x.shape(), "masked_fill: mask ", str(mask.shape()),
              " does not broadcast to x ", str(x.shape()));
  return where(mask, scalar_like(value, x), x);
}

// ---- comparisons ---------------------------------------------------------------------------

Tensor eq(const Tensor& a, const Tensor& b) { return binary_kernel(BinaryOp::eq, a, b, "eq"); }
Tensor ne(const Tensor& a, const Tensor& b) { return binary_kernel(BinaryOp::ne, a, b, "ne"); }
Tensor lt(const Tensor& a, const Tensor& b) { return binary_kernel(BinaryOp::lt, a, b, "lt"); }
Tensor le(const Tensor& a, const Tensor& b) { return binary_kernel(BinaryOp::le, a, b, "le"); }
Tensor gt(const Tensor& a, const Tensor& b) { return binary_kernel(BinaryOp::gt, a, b, "gt"); }
Tensor ge(const Tensor& a, const Tensor& b) { return binary_kernel(BinaryOp::ge, a, b, "ge"); }
Tensor eq(const Tensor& a, double b) { return eq(a, scalar_like(b, a)); }
Tensor ne(const Tensor& a, double b) { return ne(a, scalar_like(b, a)); }
Tensor gt(const Tensor& a, double b) { return gt(a, scalar_like(b, a)); }
Tensor lt(const Tensor& a, double b) { return lt(a, scalar_like(b, a)); }

Tensor logical_or(const Tensor& a, const Tensor& b) {
  SPOOL_CHECK(a.dtype() == DType::b8 && b.dtype() == DType::b8, "logical_or: a is ", describe(a),
              ", b is ", describe(b), "; expected b8 masks");
  return binary_kernel(BinaryOp::maximum, a, b, "logical_or");
}

Tensor logical_and(const Tensor& a, const Tensor& b) {
  SPOOL_CHECK(a.dtype() == DType::b8 && b.dtype() == DType::b8, "logical_and: a is ", describe(a),
              ", b is ", describe(b), "; expected b8 masks");
  return binary_kernel(BinaryOp::minimum, a, b, "logical_and");
}

// ---- conversion and copies -----------------------------------------------------------------

Tensor to(const Tensor& x, Device device) {
  if (x.device() == device) return x;
  Tensor y = empty(x.shape(), x.dtype(), device);
  copy_across(x, y);
  if (is_float(x.dtype()))
    record("to_device", {x}, {y}, {},
           [from = x.device()](const Tensors&, const Tensors& g, const Needs&) {
             return Tensors{to(g[0], from)};
           });
  return y;
}

Tensor to(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  SPOOL_CHECK(dtype != DType::bf16 || !needs_grad({x}), "to: a bf16 copy of ", describe(x),
              " would carry no gradient; multiply f32 tensors inside an Autocast scope "
              "(ops/autocast.h), or convert under NoGrad or a detached copy");
  Tensor y = empty(x.shape(), dtype, x.device());
  backend(x.device()).copy(x, y);
  if (is_float(x.dtype()) && is_float(dtype))
    record("to", {x}, {y}, {}, [from = x.dtype()](const Tensors&, const Tensors& g, const Needs&) {
      return Tensors{to(g[0], from)};
    });
  return y;
}

Tensor clone(const Tensor& x) {
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  backend(x.device()).copy(x, y);
  record("clone", {x}, {y}, {},
         [](const Tensors&, const Tensors& g, const Needs&) { return Tensors{g[0]}; });
  return y;
}

// ---- dropout -------------------------------------------------------------------------------

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  SPOOL_CHECK(p >= 0 && p <= 1, "dropout: probability ", p, " is outside [0, 1]");
  if (!training || p == 0) return x;
  trace::OpScope scope("op", "dropout");  // the mask's kernels and the product, one span
  Generator& g = gen ? *gen : default_generator();
  // mask = (u >= p) / (1 - p); p = 1 drops everything.
  Tensor u = empty(x.shape(), x.dtype(), x.device());
  const BatchWindow w = batch_window();
  if (w.count > 0 && w.total > w.count && x.dim() > 0 && x.size(0) > 0 &&
      x.size(0) % w.count == 0) {
    // This process's rows of the whole batch's draw (engine/rng.h).
    const int64_t per_row = x.numel() / x.size(0), rows_a_sample = x.size(0) / w.count;
    const int64_t start = w.first * rows_a_sample * per_row;
    RngState state = g.take(w.total * rows_a_sample * per_row);
    if (start % 4 == 0) {  // element i of the global draw is block i / 4, lane i % 4
      state.offset += uint64_t(start / 4);
      backend(x.device()).uniform(u, state, 0, 1);
    } else {
      Tensor all = empty({w.total * rows_a_sample * per_row}, x.dtype(), x.device());
      backend(x.device()).uniform(all, state, 0, 1);
      u = contiguous(reshape(slice(all, 0, start, start + x.numel()), x.shape()));
    }
  } else {
    backend(x.device()).uniform(u, g.take(x.numel()), 0, 1);
  }
  Tensor keep = to(ge(u, scalar_like(p, u)), x.dtype());
  Tensor mask = p < 1 ? keep * (1.0 / (1.0 - p)) : keep;
  Tensor y;
  {
    NoGrad no_grad;
    y = x * mask;
  }
  record("dropout", {x}, {y}, {mask},
         [](const Tensors& s, const Tensors& g, const Needs&) { return Tensors{g[0] * s[0]}; });
  return y;
}

// ---- in place ------------------------------------------------------------------------------

void fill_(const Tensor& x, double value) {
  check_inplace(x, "fill_");
  backend(x.device()).fill(x, value);
  x.storage()->bump_version();
}

void copy_(const Tensor& dst, const Tensor& src) {
  check_inplace(dst, "copy_");
  if (dst.device() != src.device()) {  // across devices: equal shapes and dtypes
    SPOOL_CHECK(dst.shape() == src.shape() && dst.dtype() == src.dtype(), "copy_: source ",
                describe(src), " on ", src.device().str(), " and destination ", describe(dst),
                " on ", dst.device().str(), " must have the same shape and dtype");
    copy_across(src, dst);
    return;
  }
  Shape shape = broadcast_shapes(dst.shape(), src.shape(), "copy_");
  SPOOL_CHECK(shape == dst.shape(), "copy_: source ", str(src.shape()),
              " does not broadcast to destination ", str(dst.shape()));
  backend(dst.device()).copy(broadcast_view(src, shape), dst);
  dst.storage()->bump_version();
}

void add_(const Tensor& x, const Tensor& y, double alpha) {
  check_inplace(x, "add_");
  Tensor term = alpha == 1 ? y : y * alpha;
  Shape shape = broadcast_shapes(x.shape(), term.shape(), "add_");
  SPOOL_CHECK(shape == x.shape(), "add_: ", str(term.shape()), " does not broadcast to ",
              str(x.shape()));
  SPOOL_CHECK(x.dtype() == y.dtype(), "add_: x is ", describe(x), ", y is ", describe(y));
  backend(x.device()).binary(BinaryOp::add, x, broadcast_view(term, shape), x);
  x.storage()->bump_version();
}

void mul_(const Tensor& x, double s) {
  check_inplace(x, "mul_");
  backend(x.device()).unary(UnaryOp::affine, x, x, s, 0);
  x.storage()->bump_version();
}

// ---- operators -----------------------------------------------------------------------------

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& a, double b) { return add(a, scalar_like(b, a)); }
Tensor operator-(const Tensor& a, double b) { return sub(a, scalar_like(b, a)); }
Tensor operator*(const Tensor& a, double b) { return mul(a, scalar_like(b, a)); }
Tensor operator/(const Tensor& a, double b) { return div(a, scalar_like(b, a)); }
Tensor operator+(double a, const Tensor& b) { return add(scalar_like(a, b), b); }
Tensor operator-(double a, const Tensor& b) { return sub(scalar_like(a, b), b); }
Tensor operator*(double a, const Tensor& b) { return mul(scalar_like(a, b), b); }
Tensor operator/(double a, const Tensor& b) { return div(scalar_like(a, b), b); }

}  // namespace spool
