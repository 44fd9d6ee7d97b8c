#include "engine/backend.h"

#include "engine/factory.h"
#include "engine/trace.h"

namespace spool {

Backend& backend(Device device) {
  Backend& b =
      device.type == DeviceType::cpu ? cpu_backend() : detail::require_gpu(device, cuda_backend);
  // While a trace is on, each kernel call is a span (engine/trace.h).
  return trace::on() ? trace::detail::traced(b) : b;
}

void copy_across(const Tensor& src, const Tensor& dst) {
  SPOOL_CHECK(src.shape() == dst.shape() && src.dtype() == dst.dtype(), "copy_across: source ",
              describe(src), " and destination ", describe(dst), " differ");
  if (src.device() == dst.device()) {
    backend(src.device()).copy(src, dst);
    return;
  }
  // Stage through contiguous tensors on each side; the host copy is one memcpy.
  Tensor s = src;
  if (!s.is_contiguous()) {
    s = empty(src.shape(), src.dtype(), src.device());
    backend(src.device()).copy(src, s);
  }
  const Tensor d = dst.is_contiguous() ? dst : empty(dst.shape(), dst.dtype(), dst.device());
  if (s.numel() > 0) {
    if (s.device().type == DeviceType::cpu)
      backend(d.device()).from_host(s.raw(), d);
    else if (d.device().type == DeviceType::cpu)
      backend(s.device()).to_host(s, d.raw());
    else
      fail("copy_across: ", s.device().str(), " to ", d.device().str(), " is not supported");
  }
  if (!d.is_same(dst)) backend(dst.device()).copy(d, dst);
  dst.storage()->bump_version();
}

int64_t WindowParams::out_size(size_t d, int64_t in) const {
  const int64_t span = dilation[d] * (kernel[d] - 1) + 1;
  const int64_t room = in + 2 * padding[d] - span;
  if (room < 0) return 0;
  int64_t out = (ceil_mode ? (room + stride[d] - 1) / stride[d] : room / stride[d]) + 1;
  // With ceil_mode the last window must start inside the input or left padding (PyTorch).
  if (ceil_mode && (out - 1) * stride[d] >= in + padding[d]) --out;
  return out;
}

}  // namespace spool
