#include "engine/backend.h"

namespace spool {

namespace {
Backend* g_backends[2] = {nullptr, nullptr};
}

Backend& backend(Device device) {
  if (device.type == DeviceType::cpu) return cpu_backend();
  Backend* b = g_backends[int(device.type)];
  SPOOL_CHECK(b, "backend: no kernels for device ", device.str(),
              " (this build has no CUDA backend, or it was not initialised)");
  return *b;
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

void register_backend(DeviceType type, Backend* b) { g_backends[int(type)] = b; }

}  // namespace spool
