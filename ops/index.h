// Indexing ops. Indices are i64 and range-checked: a bad index is a spool::Error naming the op,
// the offending value and the valid range, never an out-of-bounds read.
#pragma once
#include "engine/tensor.h"

namespace spool {

// Rows of x along dim picked by a 1-D index.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// weight [num, dim], index any shape -> [*index.shape, dim].
Tensor embedding(const Tensor& weight, const Tensor& index);
// out[i][j] = x[index[i][j]][j] (dim 0), and so on; index has x's number of dims.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// x with src added at the positions index names along dim (repeated positions accumulate).
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);

}  // namespace spool
