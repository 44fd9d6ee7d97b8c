// CUDA RoIAlign (engine/geometry.h): a thread per output value; the backward a thread per
// gradient value, spreading it over the pixels its points read with atomicAdd (regions overlap).
#include "cuda/common.cuh"
#include "cuda/cuda_backend.h"
#include "engine/dispatch.h"
#include "engine/geometry.h"

namespace spool::cuda {

namespace {

template <class T>
__global__ void roi_align_kernel(int64_t total, int64_t c, int64_t h, int64_t w, int64_t oh,
                                 int64_t ow, RoiAlignParams p, const T* x, const T* rois, T* out) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t pw = e % ow, ph = (e / ow) % oh, ch = (e / (ow * oh)) % c, i = e / (ow * oh * c);
    const RoiBins b = roi_bins(rois + i * 5, p.spatial_scale, oh, ow, p.sampling_ratio, p.aligned);
    const T* plane = x + (b.batch * c + ch) * h * w;
    double sum = 0;
    roi_bin_points(b, ph, pw, h, w, [&](const int64_t* at, const double* wt) {
      for (int k = 0; k < 4; ++k) sum += wt[k] * double(plane[at[k]]);
    });
    out[e] = T(sum / b.count);
  }
}

template <class T>
__global__ void roi_align_backward_kernel(int64_t total, int64_t c, int64_t h, int64_t w,
                                          int64_t oh, int64_t ow, RoiAlignParams p, const T* g,
                                          const T* rois, T* gx) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t pw = e % ow, ph = (e / ow) % oh, ch = (e / (ow * oh)) % c, i = e / (ow * oh * c);
    const RoiBins b = roi_bins(rois + i * 5, p.spatial_scale, oh, ow, p.sampling_ratio, p.aligned);
    T* plane = gx + (b.batch * c + ch) * h * w;
    const double share = double(g[e]) / b.count;
    roi_bin_points(b, ph, pw, h, w, [&](const int64_t* at, const double* wt) {
      for (int k = 0; k < 4; ++k) atomicAdd(plane + at[k], T(wt[k] * share));
    });
  }
}

}  // namespace

void CudaBackend::roi_align(const Tensor& x, const Tensor& rois, const RoiAlignParams& p,
                            const Tensor& out) {
  const int64_t total = out.numel();
  if (total == 0) return;
  dispatch_float(x.dtype(), "roi_align", [&](auto tag) {
    using T = decltype(tag);
    SPOOL_LAUNCH(roi_align_kernel, grid_for(total), kThreads, 0, stream(), total, x.size(1),
                 x.size(2), x.size(3), p.out_h, p.out_w, p, static_cast<const T*>(x.raw()),
                 static_cast<const T*>(rois.raw()), static_cast<T*>(out.raw()));
    SPOOL_CUDA_LAUNCHED("roi_align");
  });
}

void CudaBackend::roi_align_backward(const Tensor& gout, const Tensor& rois,
                                     const RoiAlignParams& p, const Tensor& gx) {
  const int64_t total = gout.numel();
  if (total == 0) return;
  dispatch_float(gx.dtype(), "roi_align_backward", [&](auto tag) {
    using T = decltype(tag);
    SPOOL_LAUNCH(roi_align_backward_kernel, grid_for(total), kThreads, 0, stream(), total,
                 gx.size(1), gx.size(2), gx.size(3), p.out_h, p.out_w, p,
                 static_cast<const T*>(gout.raw()), static_cast<const T*>(rois.raw()),
                 static_cast<T*>(gx.raw()));
    SPOOL_CUDA_LAUNCHED("roi_align_backward");
  });
}

}  // namespace spool::cuda
