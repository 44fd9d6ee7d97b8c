// A block of device memory shared by a tensor and its views. The version counter counts in-place
// writes, so autograd can tell when a tensor saved for backward was modified after it was saved.
#pragma once
#include <cstddef>
#include <cstdint>

#include "engine/allocator.h"
#include "engine/device.h"

namespace spool {

class Storage {
 public:
  Storage(size_t nbytes, Device device)
      : nbytes_(nbytes), device_(device), data_(allocator(device).allocate(nbytes)) {}
  ~Storage() { allocator(device_).deallocate(data_, nbytes_); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  size_t nbytes_;
  Device device_;
  void* data_;
  uint64_t version_ = 0;
};

}  // namespace spool
