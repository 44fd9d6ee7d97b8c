#include "ops/roi.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/factory.h"
#include "engine/geometry.h"
#include "ops/elementwise.h"
#include "ops/shape.h"

namespace spool {

Tensor roi_align(const Tensor& x, const Tensor& rois, const RoiAlignOptions& o) {
  SPOOL_CHECK(x.dim() == 4 && is_float(x.dtype()), "roi_align: input ", describe(x),
              " must be f32 or f64 [N, C, H, W]");
  SPOOL_CHECK(rois.dim() == 2 && rois.size(1) == 5, "roi_align: regions ", describe(rois),
              " must be [R, 5] (batch index, x1, y1, x2, y2)");
  SPOOL_CHECK(rois.dtype() == x.dtype() && rois.device() == x.device(), "roi_align: regions ",
              describe(rois), " and input ", describe(x), " differ in dtype or device");
  SPOOL_CHECK(o.out_h > 0 && o.out_w > 0 && o.sampling_ratio >= 0 &&
                  std::isfinite(o.spatial_scale) && o.spatial_scale > 0,
              "roi_align: output ", o.out_h, " x ", o.out_w, ", sampling ratio ", o.sampling_ratio,
              " and spatial scale ", o.spatial_scale,
              ": the sizes and the scale must be positive, the ratio not negative");
  const RoiAlignParams p{o.spatial_scale, o.out_h, o.out_w, o.sampling_ratio, o.aligned};
  // The regions are read on the host before any kernel: a bad one would index outside x.
  const Tensor boxes = contiguous(rois);
  const auto host = to(boxes, Device::cpu()).to_vector<double>();
  for (int64_t i = 0; i < rois.size(0); ++i) {
    const double* r = host.data() + i * 5;
    SPOOL_CHECK(r[0] == std::floor(r[0]) && r[0] >= 0 && r[0] < double(x.size(0)),
                "roi_align: region ", i, " names batch index ", r[0], "; x holds ", x.size(0));
    for (int k = 1; k < 5; ++k)
      SPOOL_CHECK(std::isfinite(r[k]), "roi_align: region ", i, " has coordinate ", r[k]);
    const RoiBins b = roi_bins(r, p.spatial_scale, p.out_h, p.out_w, p.sampling_ratio, p.aligned);
    SPOOL_CHECK(double(b.grid_h) * double(b.grid_w) <= 65536.0, "roi_align: region ", i, " (", r[1],
                ", ", r[2], ", ", r[3], ", ", r[4], ") samples ", b.grid_h, " x ", b.grid_w,
                " points a bin; give a sampling_ratio, or a region nearer the map's size");
  }
  const Tensor xc = contiguous(x);
  Tensor y = empty({rois.size(0), x.size(1), o.out_h, o.out_w}, x.dtype(), x.device());
  backend(x.device()).roi_align(xc, boxes, p, y);
  const Shape in_shape = x.shape();
  double points = 0;
  for (int64_t i = 0; i < rois.size(0); ++i) {
    const RoiBins b = roi_bins(host.data() + i * 5, p.spatial_scale, p.out_h, p.out_w,
                               p.sampling_ratio, p.aligned);
    points += double(b.grid_h * b.grid_w);
  }
  record("roi_align", {x}, {y}, {boxes},
         [p, in_shape](const Tensors& saved, const Tensors& g, const Needs&) {
           Tensor gx = zeros(in_shape, g[0].dtype(), g[0].device());
           backend(g[0].device()).roi_align_backward(contiguous(g[0]), saved[0], p, gx);
           return Tensors{gx};
         },
         {8.0 * points * double(x.size(1) * o.out_h * o.out_w)});
  return y;
}

}  // namespace spool
