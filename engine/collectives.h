// Collectives on device memory, which a device backend's communication library provides (cuda/:
// NCCL). dist/ (the process group) uses them for tensors on a GPU; it exchanges the
// communicator's id through its own channel (MPI) first. Declared here so that nothing outside
// cuda/ includes a CUDA or NCCL header.
#pragma once
#include <memory>
#include <string>

#include "engine/device.h"
#include "engine/tensor.h"

namespace spool {

class DeviceComm {
 public:
  virtual ~DeviceComm() = default;
  // As dist::ProcessGroup's: contiguous tensors on the communicator's device (f32, f64, i64),
  // queued on the backend's stream. The sums are the library's (NCCL's ring or tree order, fixed
  // for a given world and size, so runs repeat).
  virtual void all_reduce_sum(Tensor& t) = 0;
  virtual void reduce_scatter_sum(const Tensor& in, Tensor& out) = 0;
  virtual void all_gather(const Tensor& in, Tensor& out) = 0;
  virtual void broadcast(Tensor& t, int root) = 0;
};

// Whether this build has a communication library for `device`'s kind; if not, why in *why.
bool device_comm_available(Device device, std::string* why = nullptr);
// A new communicator's id, made on one rank (rank 0) and given to every rank (NCCL: the bytes of
// an ncclUniqueId).
std::string device_comm_id(Device device);
// This rank's end of the communicator `id` over `world` ranks, on `device` (NCCL:
// ncclCommInitRank; every rank calls it at once).
std::unique_ptr<DeviceComm> make_device_comm(Device device, const std::string& id, int rank,
                                             int world);

}  // namespace spool
