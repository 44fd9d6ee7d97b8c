#include "engine/allocator.h"

#include <cstdlib>
#include <new>

#include "engine/error.h"

namespace spool {

MemoryStats Allocator::stats() const {
  MemoryStats s;
  s.live_bytes = live_.load();
  s.peak_bytes = peak_.load();
  s.live_allocs = live_allocs_.load();
  s.total_allocs = total_allocs_.load();
  s.reserved_bytes = s.live_bytes;
  return s;
}

void Allocator::reset_peak() { peak_.store(live_.load()); }

void Allocator::count_alloc(size_t nbytes) {
  int64_t now = live_.fetch_add(int64_t(nbytes)) + int64_t(nbytes);
  int64_t peak = peak_.load();
  while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
  }
  live_allocs_.fetch_add(1);
  total_allocs_.fetch_add(1);
}

void Allocator::count_free(size_t nbytes) {
  live_.fetch_sub(int64_t(nbytes));
  live_allocs_.fetch_sub(1);
}

namespace {

// 64-byte aligned host memory: one cache line, and enough for AVX-512 loads.
class CpuAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes) override {
    size_t padded = (nbytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, padded == 0 ? 64 : padded);
    if (!p) fail("cpu allocator: out of memory allocating ", nbytes, " bytes");
    count_alloc(nbytes);
    return p;
  }
  void deallocate(void* ptr, size_t nbytes) override {
    std::free(ptr);
    count_free(nbytes);
  }
};

Allocator* g_allocators[2] = {nullptr, nullptr};

}  // namespace

Allocator& allocator(Device device) {
  static CpuAllocator cpu;
  if (device.type == DeviceType::cpu) return cpu;
  Allocator* a = g_allocators[int(device.type)];
  SPOOL_CHECK(a, "allocator: no allocator for device ", device.str(),
              " (this build has no CUDA backend)");
  return *a;
}

void register_allocator(DeviceType type, Allocator* alloc) { g_allocators[int(type)] = alloc; }

MemoryStats memory_stats(Device device) { return allocator(device).stats(); }
void reset_peak(Device device) { allocator(device).reset_peak(); }

}  // namespace spool
