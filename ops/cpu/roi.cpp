// CPU RoIAlign (engine/geometry.h): the forward one task per (region, channel); the backward one
// task per channel, so no two tasks write the same pixel.
#include "engine/dispatch.h"
#include "engine/geometry.h"
#include "ops/cpu/cpu_backend.h"

namespace spool::cpu {

void CpuBackend::roi_align(const Tensor& x, const Tensor& rois, const RoiAlignParams& p,
                           const Tensor& out) {
  const int64_t c = x.size(1), h = x.size(2), w = x.size(3), r = rois.size(0);
  const int64_t oh = p.out_h, ow = p.out_w;
  dispatch_float(x.dtype(), "roi_align", [&](auto tag) {
    using T = decltype(tag);
    const T* in = static_cast<const T*>(x.raw());
    const T* boxes = static_cast<const T*>(rois.raw());
    T* o = static_cast<T*>(out.raw());
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t i = 0; i < r; ++i)
      for (int64_t ch = 0; ch < c; ++ch) {
        const RoiBins b =
            roi_bins(boxes + i * 5, p.spatial_scale, oh, ow, p.sampling_ratio, p.aligned);
        const T* plane = in + (b.batch * c + ch) * h * w;
        T* dst = o + (i * c + ch) * oh * ow;
        for (int64_t ph = 0; ph < oh; ++ph)
          for (int64_t pw = 0; pw < ow; ++pw) {
            double sum = 0;
            roi_bin_points(b, ph, pw, h, w, [&](const int64_t* at, const double* wt) {
              for (int k = 0; k < 4; ++k) sum += wt[k] * double(plane[at[k]]);
            });
            dst[ph * ow + pw] = T(sum / b.count);
          }
      }
  });
}

void CpuBackend::roi_align_backward(const Tensor& gout, const Tensor& rois, const RoiAlignParams& p,
                                    const Tensor& gx) {
  const int64_t c = gx.size(1), h = gx.size(2), w = gx.size(3), r = rois.size(0);
  const int64_t oh = p.out_h, ow = p.out_w;
  dispatch_float(gx.dtype(), "roi_align_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* g = static_cast<const T*>(gout.raw());
    const T* boxes = static_cast<const T*>(rois.raw());
    T* o = static_cast<T*>(gx.raw());
#pragma omp parallel for schedule(static)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < r; ++i) {
        const RoiBins b =
            roi_bins(boxes + i * 5, p.spatial_scale, oh, ow, p.sampling_ratio, p.aligned);
        T* plane = o + (b.batch * c + ch) * h * w;
        const T* src = g + (i * c + ch) * oh * ow;
        for (int64_t ph = 0; ph < oh; ++ph)
          for (int64_t pw = 0; pw < ow; ++pw) {
            const double share = double(src[ph * ow + pw]) / b.count;
            roi_bin_points(b, ph, pw, h, w, [&](const int64_t* at, const double* wt) {
              for (int k = 0; k < 4; ++k) plane[at[k]] += T(wt[k] * share);
            });
          }
      }
  });
}

}  // namespace spool::cpu
