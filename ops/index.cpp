// Indexing ops, each forward beside its backward: a select's gradient scatters, and back.
#include "ops/index.h"

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/factory.h"
#include "ops/reduce.h"
#include "ops/shape.h"

namespace spool {

namespace {

void check_index(const Tensor& index, int64_t limit, const char* op, const char* what) {
  SPOOL_CHECK(index.dtype() == DType::i64, op, ": index is ", describe(index),
              "; expected i64 indices");
  if (index.numel() == 0) return;
  NoGrad no_grad;
  const int64_t lo = int64_t(min(index).item()), hi = int64_t(max(index).item());
  SPOOL_CHECK(lo >= 0 && hi < limit, op, ": index ", lo < 0 ? lo : hi, " is out of range for ",
              what, " of size ", limit, " (valid: 0 to ", limit - 1, ")");
}

}  // namespace

Tensor index_select(const Tensor& x_in, int64_t dim, const Tensor& index_in) {
  dim = wrap_dim(dim, x_in.dim(), "index_select");
  SPOOL_CHECK(index_in.dim() <= 1, "index_select: index is ", describe(index_in),
              "; expected a 1-D index");
  check_index(index_in, x_in.shape()[size_t(dim)], "index_select", "the indexed dim");
  Tensor x = contiguous(x_in), index = contiguous(reshape(index_in, {-1}));
  Shape shape = x.shape();
  shape[size_t(dim)] = index.numel();
  Tensor y = empty(shape, x.dtype(), x.device());
  backend(x.device()).index_select(x, dim, index, y);
  record("index_select", {x}, {y}, {index},
         [in = x.shape(), dim](const Tensors& s, const Tensors& g, const Needs&) {
           Tensor gx = zeros(in, g[0].dtype(), g[0].device());
           backend(gx.device()).index_add(gx, dim, s[0], contiguous(g[0]));
           return Tensors{gx};
         },
         {0});
  return y;
}

Tensor embedding(const Tensor& weight, const Tensor& index) {
  SPOOL_CHECK(weight.dim() == 2, "embedding: weight is ", str(weight.shape()),
              "; expected [num_embeddings, embedding_dim]");
  check_index(index, weight.size(0), "embedding", "a table");
  Shape shape = index.shape();
  shape.push_back(weight.size(1));
  return reshape(index_select(weight, 0, reshape(index, {-1})), shape);
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  dim = wrap_dim(dim, x.dim(), "gather");
  SPOOL_CHECK(index.dim() == x.dim(), "gather: index is ", str(index.shape()), ", x is ",
              str(x.shape()), ": they need the same number of dims");
  for (int64_t d = 0; d < x.dim(); ++d)
    SPOOL_CHECK(d == dim || index.shape()[size_t(d)] <= x.shape()[size_t(d)], "gather: index ",
                str(index.shape()), " is larger than x ", str(x.shape()), " in dim ", d);
  check_index(index, x.shape()[size_t(dim)], "gather", "the gathered dim");
  Tensor y = empty(index.shape(), x.dtype(), x.device());
  backend(x.device()).gather(x, dim, index, y);
  record("gather", {x}, {y}, {index},
         [in = x.shape(), dim](const Tensors& s, const Tensors& g, const Needs&) {
           Tensor gx = zeros(in, g[0].dtype(), g[0].device());
           backend(gx.device()).scatter_add(gx, dim, s[0], g[0]);
           return Tensors{gx};
         });
  return y;
}

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  dim = wrap_dim(dim, x.dim(), "scatter_add");
  SPOOL_CHECK(index.shape() == src.shape(), "scatter_add: index is ", str(index.shape()),
              ", src is ", str(src.shape()), ": they need the same shape");
  SPOOL_CHECK(src.dtype() == x.dtype(), "scatter_add: x is ", describe(x), ", src is ",
              describe(src));
  SPOOL_CHECK(index.dim() == x.dim(), "scatter_add: index is ", str(index.shape()), ", x is ",
              str(x.shape()), ": they need the same number of dims");
  for (int64_t d = 0; d < x.dim(); ++d)
    SPOOL_CHECK(d == dim || index.shape()[size_t(d)] <= x.shape()[size_t(d)], "scatter_add: index ",
                str(index.shape()), " is larger than x ", str(x.shape()), " in dim ", d);
  check_index(index, x.shape()[size_t(dim)], "scatter_add", "the scattered dim");
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  backend(x.device()).copy(x, y);
  backend(x.device()).scatter_add(y, dim, index, src);
  record("scatter_add", {x, src}, {y}, {index},
         [dim](const Tensors& s, const Tensors& g, const Needs& n) {
           return Tensors{g[0], n[1] ? gather(g[0], dim, s[0]) : Tensor()};
         });
  return y;
}

}  // namespace spool
