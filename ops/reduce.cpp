// Reductions, each forward beside its backward formula.
#include "ops/reduce.h"

#include <algorithm>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/factory.h"
#include "ops/elementwise.h"
#include "ops/shape.h"

namespace spool {

namespace {

// Sorted unique dims; empty means all.
std::vector<int64_t> normalize_dims(const Tensor& x, const std::vector<int64_t>& dims,
                                    const char* op) {
  std::vector<int64_t> out;
  if (dims.empty()) {
    for (int64_t d = 0; d < x.dim(); ++d) out.push_back(d);
    return out;
  }
  for (int64_t d : dims) out.push_back(wrap_dim(d, x.dim(), op));
  std::sort(out.begin(), out.end());
  SPOOL_CHECK(std::adjacent_find(out.begin(), out.end()) == out.end(), op,
              ": a dim is listed twice");
  return out;
}

Shape keep_shape(const Tensor& x, const std::vector<int64_t>& dims) {
  Shape s = x.shape();
  for (int64_t d : dims) s[size_t(d)] = 1;
  return s;
}

Shape drop_shape(const Tensor& x, const std::vector<int64_t>& dims) {
  Shape s;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (!std::binary_search(dims.begin(), dims.end(), d)) s.push_back(x.shape()[size_t(d)]);
  return s;
}

Tensor reduce_kernel(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  Tensor y = empty(keep_shape(x, dims), x.dtype(), x.device());
  backend(x.device()).reduce(op, x, dims, y);
  return keepdim ? y
                 : Tensor::make(y.storage(), 0, drop_shape(x, dims),
                                contiguous_strides(drop_shape(x, dims)), y.dtype());
}

// The gradient of a reduction, broadcast back over the reduced dims.
Tensor expand_back(const Tensor& g, const Tensor& x, const std::vector<int64_t>& dims) {
  return expand(reshape(g, keep_shape(x, dims)), x.shape());
}

Tensor extremum(ReduceOp op, const char* name, const Tensor& x, const std::vector<int64_t>& in,
                bool keepdim) {
  auto dims = normalize_dims(x, in, name);
  for (int64_t d : dims)
    SPOOL_CHECK(x.shape()[size_t(d)] > 0, name, ": dim ", d, " of ", str(x.shape()), " is empty");
  Tensor y = reduce_kernel(op, x, dims, keepdim);
  record(name, {x}, {y}, {x, y}, [dims](const Tensors& s, const Tensors& g, const Needs&) {
    const Tensor &x = s[0], &y = s[1];
    Tensor hit = to(eq(x, expand_back(y, x, dims)), x.dtype());
    Tensor count = sum(hit, dims, true);
    return Tensors{expand_back(g[0], x, dims) * hit / count};
  });
  return y;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& in, bool keepdim) {
  auto dims = normalize_dims(x, in, "sum");
  Tensor y = reduce_kernel(ReduceOp::sum, x, dims, keepdim);
  record("sum", {x}, {y}, {},
         [xs = x.shape(), dims](const Tensors&, const Tensors& g, const Needs&) {
           Shape ks = xs;
           for (int64_t d : dims) ks[size_t(d)] = 1;
           return Tensors{expand(reshape(g[0], ks), xs)};
         });
  return y;
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& in, bool keepdim) {
  SPOOL_CHECK(is_float(x.dtype()), "mean: x is ", describe(x), "; expected f32 or f64");
  auto dims = normalize_dims(x, in, "mean");
  int64_t count = 1;
  for (int64_t d : dims) count *= x.shape()[size_t(d)];
  return sum(x, dims, keepdim) / double(count);
}

Tensor max(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return extremum(ReduceOp::max, "max", x, dims, keepdim);
}

Tensor min(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return extremum(ReduceOp::min, "min", x, dims, keepdim);
}

Tensor var(const Tensor& x, const std::vector<int64_t>& in, int64_t correction, bool keepdim) {
  SPOOL_CHECK(is_float(x.dtype()), "var: x is ", describe(x), "; expected f32 or f64");
  auto dims = normalize_dims(x, in, "var");
  int64_t count = 1;
  for (int64_t d : dims) count *= x.shape()[size_t(d)];
  // Composed from differentiable ops: its gradient follows from theirs.
  Tensor centered = x - mean(x, dims, true);
  return sum(centered * centered, dims, keepdim) / double(std::max<int64_t>(count - correction, 0));
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  dim = wrap_dim(dim, x.dim(), "argmax");
  SPOOL_CHECK(x.shape()[size_t(dim)] > 0, "argmax: dim ", dim, " of ", str(x.shape()), " is empty");
  Tensor y = empty(keep_shape(x, {dim}), DType::i64, x.device());
  backend(x.device()).argmax(x, dim, y);
  return keepdim ? y : squeeze(y, dim);
}

}  // namespace spool
