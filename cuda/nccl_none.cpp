// Built instead of cuda/nccl.cu where the build has no NCCL (no CUDA backend, the emulated
// device, or a toolkit without NCCL): device collectives say why they are not there.
#include "engine/collectives.h"
#include "engine/error.h"

namespace spool {

namespace {
const char* kWhy =
    "this build of spool has no NCCL (it needs the real CUDA backend and NCCL's nccl.h and "
    "libnccl at configure time); data parallel over MPI takes CPU tensors";
}

bool device_comm_available(Device, std::string* why) {
  if (why) *why = kWhy;
  return false;
}

std::string device_comm_id(Device) { fail(kWhy); }

std::unique_ptr<DeviceComm> make_device_comm(Device, const std::string&, int, int) { fail(kWhy); }

}  // namespace spool
