// Shape ops, each forward beside its backward formula.
#include "ops/shape.h"

#include <algorithm>
#include <numeric>
#include <optional>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/factory.h"
#include "ops/elementwise.h"

namespace spool {

namespace {

Tensor view_of(const Tensor& x, Shape shape, Shape strides, int64_t offset) {
  return Tensor::make(x.storage(), offset, std::move(shape), std::move(strides), x.dtype());
}

// Strides that let `shape` view memory laid out as (old_shape, old_strides), if any exist.
std::optional<Shape> view_strides(const Shape& old_shape, const Shape& old_strides,
                                  const Shape& shape) {
  if (numel(shape) <= 1 || old_shape.empty()) return contiguous_strides(shape);
  Shape strides(shape.size());
  int64_t view_d = int64_t(shape.size()) - 1;
  int64_t base = old_strides.back(), tensor_numel = 1, view_numel = 1;
  for (int64_t d = int64_t(old_shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= old_shape[size_t(d)];
    // End of a chunk of dims that are contiguous with one another.
    if (d == 0 ||
        (old_shape[size_t(d - 1)] != 1 && old_strides[size_t(d - 1)] != tensor_numel * base)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[size_t(view_d)] == 1)) {
        strides[size_t(view_d)] = view_numel * base;
        view_numel *= shape[size_t(view_d)];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        base = old_strides[size_t(d - 1)];
        tensor_numel = view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return strides;
}

Shape infer_shape(const Tensor& x, Shape shape) {
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      SPOOL_CHECK(infer < 0, "reshape: more than one -1 in ", str(shape));
      infer = int64_t(i);
    } else {
      SPOOL_CHECK(shape[i] >= 0, "reshape: negative size in ", str(shape));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    SPOOL_CHECK(known != 0 && x.numel() % known == 0, "reshape: cannot reshape ", str(x.shape()),
                " (", x.numel(), " elements) to ", str(shape));
    shape[size_t(infer)] = x.numel() / known;
  }
  SPOOL_CHECK(numel(shape) == x.numel(), "reshape: cannot reshape ", str(x.shape()), " (",
              x.numel(), " elements) to ", str(shape), " (", numel(shape), " elements)");
  return shape;
}

// Backward of narrow/slice: the gradient placed into zeros of the input's shape.
Tensor embed_slice(const Tensor& g, const Shape& in_shape, int64_t dim, int64_t start,
                   int64_t step) {
  Tensor z = zeros(in_shape, g.dtype(), g.device());
  Shape strides = z.strides();
  int64_t offset = start * strides[size_t(dim)];
  strides[size_t(dim)] *= step;
  backend(g.device()).copy(g, view_of(z, g.shape(), strides, offset));
  return z;
}

}  // namespace

Tensor reshape(const Tensor& x, const Shape& requested) {
  Shape shape = infer_shape(x, requested);
  if (shape == x.shape()) return x;
  if (auto strides = view_strides(x.shape(), x.strides(), shape)) {
    Tensor y = view_of(x, shape, *strides, x.offset());
    record("reshape", {x}, {y}, {},
           [in = x.shape()](const Tensors&, const Tensors& g, const Needs&) {
             return Tensors{reshape(g[0], in)};
           },
           {0});
    return y;
  }
  return reshape(contiguous(x), shape);
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  SPOOL_CHECK(int64_t(dims.size()) == x.dim(), "permute: ", dims.size(),
              " dims given for a tensor of shape ", str(x.shape()));
  std::vector<int64_t> d(dims.size()), inverse(dims.size());
  std::vector<bool> seen(dims.size(), false);
  Shape shape(dims.size()), strides(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    d[i] = wrap_dim(dims[i], x.dim(), "permute");
    SPOOL_CHECK(!seen[size_t(d[i])], "permute: dim ", d[i], " appears twice in ", str(dims),
                " for a tensor of shape ", str(x.shape()));
    seen[size_t(d[i])] = true;
    inverse[size_t(d[i])] = int64_t(i);
    shape[i] = x.shape()[size_t(d[i])];
    strides[i] = x.strides()[size_t(d[i])];
  }
  Tensor y = view_of(x, shape, strides, x.offset());
  record("permute", {x}, {y}, {},
         [inverse](const Tensors&, const Tensors& g, const Needs&) {
           return Tensors{permute(g[0], inverse)};
         },
         {0});
  return y;
}

Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) {
  std::vector<int64_t> dims(size_t(x.dim()));
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[size_t(wrap_dim(d0, x.dim(), "transpose"))],
            dims[size_t(wrap_dim(d1, x.dim(), "transpose"))]);
  return permute(x, dims);
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  dim = wrap_dim(dim, x.dim(), "slice");
  const int64_t n = x.shape()[size_t(dim)];
  SPOOL_CHECK(step > 0, "slice: step ", step, " must be positive");
  if (start < 0) start += n;
  if (end < 0) end += n;
  end = std::min(end, n);
  SPOOL_CHECK(start >= 0 && start <= n, "slice: start ", start, " is out of range for dim ", dim,
              " of size ", n, " in ", str(x.shape()));
  const int64_t len = end > start ? (end - start + step - 1) / step : 0;
  Shape shape = x.shape(), strides = x.strides();
  shape[size_t(dim)] = len;
  strides[size_t(dim)] *= step;
  Tensor y = view_of(x, shape, strides, x.offset() + start * x.strides()[size_t(dim)]);
  record("slice", {x}, {y}, {},
         [in = x.shape(), dim, start, step](const Tensors&, const Tensors& g, const Needs&) {
           return Tensors{embed_slice(g[0], in, dim, start, step)};
         },
         {0});
  return y;
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  dim = wrap_dim(dim, x.dim(), "narrow");
  const int64_t n = x.shape()[size_t(dim)];
  SPOOL_CHECK(start >= 0 && length >= 0 && start + length <= n, "narrow: [", start, ", ",
              start + length, ") is out of range for dim ", dim, " of size ", n, " in ",
              str(x.shape()));
  return slice(x, dim, start, start + length, 1);
}

Tensor expand(const Tensor& x, const Shape& requested) {
  SPOOL_CHECK(requested.size() >= size_t(x.dim()), "expand: cannot expand ", str(x.shape()),
              " to fewer dims ", str(requested));
  const int64_t lead = int64_t(requested.size()) - x.dim();
  Shape shape(requested.size()), strides(requested.size(), 0);
  for (int64_t d = 0; d < int64_t(requested.size()); ++d) {
    int64_t want = requested[size_t(d)];
    if (d < lead) {
      SPOOL_CHECK(want >= 0, "expand: size -1 is not allowed for a new leading dim");
      shape[size_t(d)] = want;
      continue;
    }
    int64_t have = x.shape()[size_t(d - lead)];
    if (want == -1) want = have;
    SPOOL_CHECK(have == want || have == 1, "expand: cannot expand ", str(x.shape()), " to ",
                str(requested), " (dim ", d, ": ", have, " to ", want, ")");
    shape[size_t(d)] = want;
    strides[size_t(d)] = have == want ? x.strides()[size_t(d - lead)] : 0;
  }
  Tensor y = view_of(x, shape, strides, x.offset());
  record("expand", {x}, {y}, {},
         [in = x.shape()](const Tensors&, const Tensors& g, const Needs&) {
           return Tensors{detail::sum_to(g[0], in)};
         },
         {0});
  return y;
}

Tensor squeeze(const Tensor& x) {
  Shape shape;
  for (int64_t s : x.shape())
    if (s != 1) shape.push_back(s);
  return reshape(x, shape);
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  dim = wrap_dim(dim, x.dim(), "squeeze");
  SPOOL_CHECK(x.shape()[size_t(dim)] == 1, "squeeze: dim ", dim, " of ", str(x.shape()),
              " has size ", x.shape()[size_t(dim)], ", not 1");
  Shape shape = x.shape();
  shape.erase(shape.begin() + dim);
  return reshape(x, shape);
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  dim = wrap_dim(dim, x.dim() + 1, "unsqueeze");
  Shape shape = x.shape();
  shape.insert(shape.begin() + dim, 1);
  return reshape(x, shape);
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  if (x.dim() == 0) return reshape(x, {1});
  start_dim = wrap_dim(start_dim, x.dim(), "flatten");
  end_dim = wrap_dim(end_dim, x.dim(), "flatten");
  SPOOL_CHECK(start_dim <= end_dim, "flatten: start_dim ", start_dim, " is after end_dim ",
              end_dim);
  Shape shape(x.shape().begin(), x.shape().begin() + start_dim);
  int64_t n = 1;
  for (int64_t d = start_dim; d <= end_dim; ++d) n *= x.shape()[size_t(d)];
  shape.push_back(n);
  shape.insert(shape.end(), x.shape().begin() + end_dim + 1, x.shape().end());
  return reshape(x, shape);
}

Tensor contiguous(const Tensor& x) {
  if (x.is_contiguous()) return x;
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  backend(x.device()).copy(x, y);
  record("contiguous", {x}, {y}, {},
         [](const Tensors&, const Tensors& g, const Needs&) { return Tensors{g[0]}; });
  return y;
}

Tensor cat(const Tensors& xs, int64_t dim) {
  SPOOL_CHECK(!xs.empty(), "cat: no tensors given");
  const Tensor& first = xs[0];
  dim = wrap_dim(dim, first.dim(), "cat");
  Shape shape = first.shape();
  shape[size_t(dim)] = 0;
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    SPOOL_CHECK(
        x.dim() == first.dim() && x.dtype() == first.dtype() && x.device() == first.device(),
        "cat: tensor ", i, " is ", describe(x), ", tensor 0 is ", describe(first));
    for (int64_t d = 0; d < x.dim(); ++d)
      SPOOL_CHECK(d == dim || x.shape()[size_t(d)] == first.shape()[size_t(d)], "cat: tensor ", i,
                  " has shape ", str(x.shape()), ", tensor 0 has ", str(first.shape()),
                  ": they differ in dim ", d, " (cat is along dim ", dim, ")");
    sizes.push_back(x.shape()[size_t(dim)]);
    shape[size_t(dim)] += sizes.back();
  }
  Tensor y = empty(shape, first.dtype(), first.device());
  int64_t at = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    Shape part = y.shape();
    part[size_t(dim)] = sizes[i];
    backend(y.device()).copy(xs[i], view_of(y, part, y.strides(), at * y.strides()[size_t(dim)]));
    at += sizes[i];
  }
  record("cat", xs, {y}, {}, [sizes, dim](const Tensors&, const Tensors& g, const Needs& n) {
    Tensors out(sizes.size());
    int64_t at = 0;
    for (size_t i = 0; i < sizes.size(); at += sizes[i], ++i)
      if (n[i]) out[i] = narrow(g[0], dim, at, sizes[i]);
    return out;
  });
  return y;
}

Tensor stack(const Tensors& xs, int64_t dim) {
  SPOOL_CHECK(!xs.empty(), "stack: no tensors given");
  dim = wrap_dim(dim, xs[0].dim() + 1, "stack");
  Tensors parts;
  for (size_t i = 0; i < xs.size(); ++i) {
    SPOOL_CHECK(xs[i].shape() == xs[0].shape(), "stack: tensor ", i, " has shape ",
                str(xs[i].shape()), ", tensor 0 has ", str(xs[0].shape()));
    parts.push_back(unsqueeze(xs[i], dim));
  }
  return cat(parts, dim);
}

Tensors split(const Tensor& x, int64_t size, int64_t dim) {
  dim = wrap_dim(dim, x.dim(), "split");
  SPOOL_CHECK(size > 0, "split: piece size ", size, " must be positive");
  Tensors out;
  const int64_t n = x.shape()[size_t(dim)];
  for (int64_t at = 0; at < n; at += size)
    out.push_back(narrow(x, dim, at, std::min(size, n - at)));
  return out;
}

Tensors chunk(const Tensor& x, int64_t n, int64_t dim) {
  SPOOL_CHECK(n > 0, "chunk: number of chunks ", n, " must be positive");
  dim = wrap_dim(dim, x.dim(), "chunk");
  const int64_t len = x.shape()[size_t(dim)];
  return split(x, std::max<int64_t>(1, (len + n - 1) / n), dim);
}

}  // namespace spool
