// Every byte of tensor storage goes through a per-device Allocator that counts it. The counts are
// exact to the byte of what tensors asked for (alignment padding is not counted), so the memory
// planner's predictions can be compared with them directly.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/device.h"

namespace spool {

struct MemoryStats {
  int64_t live_bytes = 0;      // bytes held by live storages now
  int64_t peak_bytes = 0;      // highest live_bytes since the last reset_peak()
  int64_t live_allocs = 0;     // storages alive now
  int64_t total_allocs = 0;    // allocations since start
  int64_t reserved_bytes = 0;  // bytes held from the system (caching allocators hold more)
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* ptr, size_t nbytes) = 0;
  // Returns cached blocks to the system (caching allocators); live tensors are untouched.
  virtual void empty_cache() {}
  MemoryStats stats() const;
  void reset_peak();
  // Writes its counter tracks' values now, while a trace is on (engine/trace.h): a trace starts
  // its tracks with the live and reserved bytes it began with.
  void trace_now() const { trace_counters(live_.load()); }

 protected:
  void count_alloc(size_t nbytes);
  void count_free(size_t nbytes);
  void trace_counters(int64_t live) const;
  std::atomic<int64_t> cached_{0};  // bytes held for reuse, not in use

 private:
  std::atomic<int64_t> live_{0}, peak_{0}, live_allocs_{0}, total_allocs_{0};
};

// Caps what the CPU allocator hands out while it lives: an allocation that would take the live
// bytes more than `max_new_bytes` past their level at construction throws spool::Error, starting
// with `what`, before any memory is taken. For building something whose sizes come from a file
// (a model shaped like a weights file): a few hundred bytes that declare a model of gigabytes are
// refused at the cap instead of allocating it first. One at a time per process (the cap is the
// allocator's, seen by every thread); nesting is refused.
class AllocationLimit {
 public:
  AllocationLimit(int64_t max_new_bytes, std::string what);
  ~AllocationLimit();
  AllocationLimit(const AllocationLimit&) = delete;
  AllocationLimit& operator=(const AllocationLimit&) = delete;
};

// The allocator of a device (the CUDA backend's comes from cuda_allocator(), engine/backend.h).
Allocator& allocator(Device device);

MemoryStats memory_stats(Device device = Device::cpu());
void empty_cache(Device device = Device::cpu());
void reset_peak(Device device = Device::cpu());

}  // namespace spool
