// CPU temporal shift (TSM): whole planes (the dims after C) copied from the frame
// engine/geometry.h's shift_source names, or zeroed; one task per frame.
#include <algorithm>

#include "engine/dispatch.h"
#include "engine/geometry.h"
#include "ops/cpu/cpu_backend.h"

namespace spool::cpu {

void CpuBackend::temporal_shift(const Tensor& x, int64_t segments, int64_t fold, bool online,
                                bool reverse, const Tensor& out) {
  const int64_t frames = x.size(0), c = x.size(1);
  if (x.numel() == 0) return;
  const int64_t plane = x.numel() / (frames * c);
  dispatch_float(x.dtype(), "temporal_shift", [&](auto tag) {
    using T = decltype(tag);
    const T* in = static_cast<const T*>(x.raw());
    T* o = static_cast<T*>(out.raw());
#pragma omp parallel for schedule(static)
    for (int64_t f = 0; f < frames; ++f) {
      const int64_t t = f % segments, clip0 = f - t;
      for (int64_t ch = 0; ch < c; ++ch) {
        T* dst = o + (f * c + ch) * plane;
        const int64_t src = shift_source(t, ch, fold, online, reverse, segments);
        if (src < 0)
          std::fill(dst, dst + plane, T(0));
        else
          std::copy(in + ((clip0 + src) * c + ch) * plane,
                    in + ((clip0 + src) * c + ch + 1) * plane, dst);
      }
    }
  });
}

}  // namespace spool::cpu
