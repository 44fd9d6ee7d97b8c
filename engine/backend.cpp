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

void register_backend(DeviceType type, Backend* b) { g_backends[int(type)] = b; }

}  // namespace spool
