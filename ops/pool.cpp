// Pooling: max pooling remembers where each maximum came from; average pooling spreads the
// gradient evenly over each window.
#include "ops/pool.h"

#include <algorithm>
#include <cmath>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/factory.h"
#include "ops/conv.h"
#include "ops/elementwise.h"
#include "ops/index.h"
#include "ops/reduce.h"
#include "ops/shape.h"

namespace spool {

namespace {

WindowParams window(const Tensor& x, const PoolOptions& o, const char* op, Shape& out_shape) {
  SPOOL_CHECK(x.dim() >= 3 && x.dim() <= 5, op, ": input is ", str(x.shape()),
              "; expected [N, C, *spatial] with 1 to 3 spatial dims");
  SPOOL_CHECK(is_float(x.dtype()), op, ": input is ", describe(x), "; expected f32 or f64");
  const int64_t nd = x.dim() - 2;
  SPOOL_CHECK(!o.kernel.empty(), op, ": kernel size is missing");
  WindowParams p;
  p.kernel = detail::per_dim(o.kernel, nd, op, "kernel");
  p.stride = o.stride.empty() ? p.kernel : detail::per_dim(o.stride, nd, op, "stride");
  p.padding = detail::per_dim(o.padding, nd, op, "padding");
  p.dilation = detail::per_dim(o.dilation, nd, op, "dilation");
  p.ceil_mode = o.ceil_mode;
  p.count_include_pad = o.count_include_pad;
  out_shape = {x.size(0), x.size(1)};
  for (int64_t d = 0; d < nd; ++d) {
    const size_t i = size_t(d);
    SPOOL_CHECK(p.kernel[i] > 0 && p.stride[i] > 0 && p.dilation[i] > 0, op,
                ": kernel, stride and dilation must be positive");
    SPOOL_CHECK(2 * p.padding[i] <= p.kernel[i] && p.padding[i] >= 0, op, ": padding ",
                p.padding[i], " must be at most half the kernel ", p.kernel[i]);
    const int64_t span = p.dilation[i] * (p.kernel[i] - 1) + 1;
    SPOOL_CHECK(span <= x.size(2 + d) + 2 * p.padding[i], op, ": kernel ", str(p.kernel),
                " is larger than the padded input ", str(x.shape()), " in spatial dim ", d);
    out_shape.push_back(p.out_size(i, x.size(2 + d)));
  }
  return p;
}

}  // namespace

Tensor max_pool(const Tensor& x_in, const PoolOptions& o) {
  Shape out_shape;
  WindowParams p = window(x_in, o, "max_pool", out_shape);
  Tensor x = contiguous(x_in);
  Tensor y = empty(out_shape, x.dtype(), x.device());
  Tensor idx = empty(out_shape, DType::i64, x.device());
  backend(x.device()).max_pool(x, p, y, idx);
  record("max_pool", {x}, {y}, {idx},
         [in = x.shape(), p](const Tensors& s, const Tensors& g, const Needs&) {
           Tensor gx = empty(in, g[0].dtype(), g[0].device());
           backend(gx.device()).max_pool_backward(contiguous(g[0]), s[0], p, gx);
           return Tensors{gx};
         });
  return y;
}

Tensor avg_pool(const Tensor& x_in, const PoolOptions& o) {
  Shape out_shape;
  WindowParams p = window(x_in, o, "avg_pool", out_shape);
  SPOOL_CHECK(p.dilation == std::vector<int64_t>(p.dilation.size(), 1),
              "avg_pool: dilation is not supported");
  Tensor x = contiguous(x_in);
  Tensor y = empty(out_shape, x.dtype(), x.device());
  backend(x.device()).avg_pool(x, p, y);
  record("avg_pool", {x}, {y}, {},
         [in = x.shape(), p](const Tensors&, const Tensors& g, const Needs&) {
           Tensor gx = empty(in, g[0].dtype(), g[0].device());
           backend(gx.device()).avg_pool_backward(contiguous(g[0]), p, gx);
           return Tensors{gx};
         });
  return y;
}

Tensor adaptive_avg_pool_global(const Tensor& x) {
  SPOOL_CHECK(x.dim() >= 3, "adaptive_avg_pool: input is ", str(x.shape()),
              "; expected [N, C, *spatial]");
  std::vector<int64_t> dims;
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  return mean(x, dims, true);
}

Tensor upsample_nearest(const Tensor& x, int64_t height, int64_t width) {
  SPOOL_CHECK(x.dim() == 4, "upsample_nearest: input is ", describe(x), "; expected [N, C, H, W]");
  SPOOL_CHECK(height > 0 && width > 0, "upsample_nearest: output size ", height, " x ", width,
              " must be positive");
  SPOOL_CHECK(x.size(2) > 0 && x.size(3) > 0, "upsample_nearest: input ", describe(x),
              " has no pixels to read");
  auto rows = [&](int64_t in, int64_t out) {
    std::vector<int64_t> idx(static_cast<size_t>(out));
    const float scale = float(in) / float(out);
    for (int64_t i = 0; i < out; ++i)
      idx[size_t(i)] =
          out == 2 * in ? i / 2 : std::min(int64_t(std::floor(float(i) * scale)), in - 1);
    return to(from_vector(idx, {out}), x.device());
  };
  Tensor y = x.size(2) == height ? x : index_select(x, 2, rows(x.size(2), height));
  return x.size(3) == width ? y : index_select(y, 3, rows(x.size(3), width));
}

}  // namespace spool
