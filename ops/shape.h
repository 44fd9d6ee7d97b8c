// Shape ops. Views (reshape when possible, permute, transpose, narrow, slice, expand, squeeze,
// unsqueeze, flatten) share storage with their input; cat and stack copy. All differentiable.
#pragma once
#include <vector>

#include "engine/tensor.h"

namespace spool {

// One entry may be -1 (inferred). A view when the strides allow, otherwise a copy.
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1);
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
// Elements start, start + step, ... below end (end is clipped to the size).
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
// Broadcasts size-1 dims (and new leading dims) to `shape`; -1 keeps a size.
Tensor expand(const Tensor& x, const Shape& shape);
Tensor squeeze(const Tensor& x);               // drops every size-1 dim
Tensor squeeze(const Tensor& x, int64_t dim);  // drops dim, which must have size 1
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
// x itself when already contiguous, else a contiguous copy.
Tensor contiguous(const Tensor& x);

Tensor cat(const Tensors& xs, int64_t dim);
Tensor stack(const Tensors& xs, int64_t dim);
// Pieces of `size` along dim (the last may be smaller); chunk makes n near-equal pieces.
Tensors split(const Tensor& x, int64_t size, int64_t dim);
Tensors chunk(const Tensor& x, int64_t n, int64_t dim);

}  // namespace spool
