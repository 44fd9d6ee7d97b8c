// Region features: RoIAlign (He et al., Mask R-CNN), as torchvision.ops.roi_align defines it.
#pragma once
#include "engine/tensor.h"

namespace spool {

struct RoiAlignOptions {
  int64_t out_h = 7, out_w = 7;
  double spatial_scale = 1.0;  // region coordinates times this are x's pixels
  int64_t sampling_ratio = 2;  // points a bin each way; 0: ceil(region / bins), as torchvision
  bool aligned = true;         // pixel centres at integer + 1/2 (torchvision's aligned=True)
};

// x [N, C, H, W] (f32 or f64) and regions rois [R, 5] = (batch index, x1, y1, x2, y2) in x's
// dtype and device -> [R, C, out_h, out_w]: each region cut into out_h x out_w bins, each bin
// the mean of its sampling points read bilinearly (engine/geometry.h roi_bins, roi_point; a
// point more than a pixel outside the map reads zero). Differentiable in x; regions are data
// (no gradient flows to rois). A batch index that is not a whole number in [0, N), a coordinate
// that is not finite, or an adaptive sampling grid above 65,536 points a bin is a spool::Error.
Tensor roi_align(const Tensor& x, const Tensor& rois, const RoiAlignOptions& options = {});

}  // namespace spool
