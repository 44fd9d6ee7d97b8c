// NCCL collectives on CUDA tensors (engine/collectives.h), queued on spool's one stream.
#include <nccl.h>

#include <cstring>

#include "cuda/common.cuh"
#include "engine/collectives.h"

namespace spool {

namespace {

#define SPOOL_NCCL_CHECK(call)                                                                     \
  do {                                                                                             \
    const ncclResult_t spool_nccl_ = (call);                                                       \
    if (spool_nccl_ != ncclSuccess)                                                                \
      ::spool::fail("NCCL: ", #call, " failed: ", ncclGetErrorString(spool_nccl_), " (", __FILE__, \
                    ":", __LINE__, ")");                                                           \
  } while (0)

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::f32:
      return ncclFloat32;
    case DType::f64:
      return ncclFloat64;
    case DType::i64:
      return ncclInt64;
    default:
      fail("NCCL collectives: ", name(t), " tensors are not reduced (f32, f64 or i64)");
  }
}

void check(const Tensor& t, Device d, const char* what) {
  SPOOL_CHECK(t.defined() && t.device() == d && t.is_contiguous(), what, ": ", describe(t),
              " is not a contiguous tensor on ", d.str());
}

class NcclComm : public DeviceComm {
 public:
  NcclComm(Device d, const std::string& id, int rank, int world) : device_(d), world_(world) {
    SPOOL_CHECK(id.size() == sizeof(ncclUniqueId), "NCCL: the communicator id holds ", id.size(),
                " bytes, not ", sizeof(ncclUniqueId));
    ncclUniqueId uid;
    std::memcpy(&uid, id.data(), sizeof uid);
    SPOOL_CUDA_CHECK(cudaSetDevice(d.index));
    SPOOL_NCCL_CHECK(ncclCommInitRank(&comm_, world, uid, rank));
  }
  ~NcclComm() override { ncclCommDestroy(comm_); }

  void all_reduce_sum(Tensor& t) override {
    check(t, device_, "all_reduce_sum");
    SPOOL_NCCL_CHECK(ncclAllReduce(t.raw(), t.raw(), size_t(t.numel()), nccl_type(t.dtype()),
                                   ncclSum, comm_, cuda::stream()));
  }
  void reduce_scatter_sum(const Tensor& in, Tensor& out) override {
    check(in, device_, "reduce_scatter_sum");
    check(out, device_, "reduce_scatter_sum");
    SPOOL_CHECK(in.numel() == out.numel() * world_ && in.dtype() == out.dtype(),
                "reduce_scatter_sum: input ", describe(in), " is not ", world_, " chunks of ",
                describe(out));
    SPOOL_NCCL_CHECK(ncclReduceScatter(in.raw(), out.raw(), size_t(out.numel()),
                                       nccl_type(in.dtype()), ncclSum, comm_, cuda::stream()));
  }
  void all_gather(const Tensor& in, Tensor& out) override {
    check(in, device_, "all_gather");
    check(out, device_, "all_gather");
    SPOOL_CHECK(out.numel() == in.numel() * world_ && in.dtype() == out.dtype(),
                "all_gather: output ", describe(out), " is not ", world_, " chunks of ",
                describe(in));
    SPOOL_NCCL_CHECK(ncclAllGather(in.raw(), out.raw(), size_t(in.numel()), nccl_type(in.dtype()),
                                   comm_, cuda::stream()));
  }
  void broadcast(Tensor& t, int root) override {
    check(t, device_, "broadcast");
    SPOOL_NCCL_CHECK(ncclBroadcast(t.raw(), t.raw(), size_t(t.numel()), nccl_type(t.dtype()), root,
                                   comm_, cuda::stream()));
  }

 private:
  Device device_;
  int world_;
  ncclComm_t comm_ = nullptr;
};

}  // namespace

bool device_comm_available(Device device, std::string* why) {
  if (device.type == DeviceType::cuda) return true;
  if (why) *why = "device collectives are for CUDA tensors (NCCL); CPU tensors go through MPI";
  return false;
}

std::string device_comm_id(Device device) {
  SPOOL_CHECK(device_comm_available(device), "NCCL: ", device.str(), " is not a CUDA device");
  ncclUniqueId uid;
  SPOOL_NCCL_CHECK(ncclGetUniqueId(&uid));
  return std::string(reinterpret_cast<const char*>(&uid), sizeof uid);
}

std::unique_ptr<DeviceComm> make_device_comm(Device device, const std::string& id, int rank,
                                             int world) {
  SPOOL_CHECK(device_comm_available(device), "NCCL: ", device.str(), " is not a CUDA device");
  return std::make_unique<NcclComm>(device, id, rank, world);
}

}  // namespace spool
