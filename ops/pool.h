// Pooling over 1-3 spatial dims of x [N, C, *in], as torch.nn.functional's max_pool / avg_pool.
#pragma once
#include <vector>

#include "engine/tensor.h"

namespace spool {

struct PoolOptions {
  std::vector<int64_t> kernel;       // one value for every dim, or one per spatial dim
  std::vector<int64_t> stride = {};  // empty: the kernel size
  std::vector<int64_t> padding = {0};
  std::vector<int64_t> dilation = {1};  // max pooling only
  bool ceil_mode = false;
  bool count_include_pad = true;  // average pooling only
};

Tensor max_pool(const Tensor& x, const PoolOptions& options);
Tensor avg_pool(const Tensor& x, const PoolOptions& options);
// Global average pooling to size 1 in every spatial dim ([N, C, *in] -> [N, C, 1, ...]).
Tensor adaptive_avg_pool_global(const Tensor& x);
// Nearest-neighbour resizing of x [N, C, H, W] to [N, C, height, width], as torch's
// F.interpolate(mode="nearest"): output row i reads input row min(floor(i * H / height), H - 1)
// (the scale H / height in float, as torch computes it; exactly i / 2 when height is 2 H), and
// the same for columns. Differentiable: the gradient sums over the outputs that read an input.
// Composed of two index_selects.
Tensor upsample_nearest(const Tensor& x, int64_t height, int64_t width);

}  // namespace spool
