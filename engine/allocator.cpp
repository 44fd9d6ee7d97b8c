#include "engine/allocator.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/trace.h"

namespace spool {

MemoryStats Allocator::stats() const {
  MemoryStats s;
  s.live_bytes = live_.load();
  s.peak_bytes = peak_.load();
  s.live_allocs = live_allocs_.load();
  s.total_allocs = total_allocs_.load();
  s.reserved_bytes = s.live_bytes + cached_.load();
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
  if (trace::on()) trace_counters(now);
}

void Allocator::count_free(size_t nbytes) {
  const int64_t now = live_.fetch_sub(int64_t(nbytes)) - int64_t(nbytes);
  live_allocs_.fetch_sub(1);
  if (trace::on()) trace_counters(now);
}

void Allocator::trace_counters(int64_t live) const {
  // A trace's counter tracks (engine/trace.h): the allocator's figures at every change.
  const bool cpu = this == &allocator(Device::cpu());
  trace::counter(cpu ? "cpu live bytes" : "cuda live bytes", double(live));
  trace::counter(cpu ? "cpu reserved bytes" : "cuda reserved bytes", double(live + cached_.load()));
}

namespace {

// The cap of AllocationLimit: INT64_MAX when there is none.
std::atomic<int64_t> g_limit{INT64_MAX};
std::mutex g_limit_mu;
std::string g_limit_what;

void admit(int64_t live, size_t nbytes) {
  const int64_t limit = g_limit.load(std::memory_order_relaxed);
  if (limit == INT64_MAX) return;
  if (nbytes > size_t(INT64_MAX) || int64_t(nbytes) > limit - live) {
    std::lock_guard<std::mutex> lock(g_limit_mu);
    fail(g_limit_what, " (an allocation of ", nbytes, " bytes passed the cap)");
  }
}

// 64-byte aligned host memory: one cache line, and enough for AVX-512 loads. Freed blocks of
// 64 KiB or more are kept for reuse by a request of exactly the same padded size: a training
// step allocates the same sizes every step, and fresh large blocks cost page faults (about 12 %
// of a gpt-tiny step before this cache). The cache holds at most 2 GiB; live and peak counts
// are those of the tensors, the cache shows in reserved_bytes.
class CpuAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes) override {
    admit(stats().live_bytes, nbytes);
    const size_t padded = pad(nbytes);
    if (padded >= kMinCached) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(padded);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_.fetch_sub(int64_t(padded));
        count_alloc(nbytes);
        return p;
      }
    }
    void* p = std::aligned_alloc(64, padded);
    if (!p) {
      empty_cache();  // give cached blocks back and try once more
      p = std::aligned_alloc(64, padded);
    }
    if (!p) fail("cpu allocator: out of memory allocating ", nbytes, " bytes");
    count_alloc(nbytes);
    return p;
  }
  void deallocate(void* ptr, size_t nbytes) override {
    const size_t padded = pad(nbytes);
    count_free(nbytes);
    if (padded >= kMinCached && cached_.load() + int64_t(padded) <= kMaxCached) {
      std::lock_guard<std::mutex> lock(mu_);
      free_[padded].push_back(ptr);
      cached_.fetch_add(int64_t(padded));
      return;
    }
    std::free(ptr);
  }
  void empty_cache() override {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) std::free(p);
    free_.clear();
    cached_.store(0);
  }
  ~CpuAllocator() override { empty_cache(); }

 private:
  static size_t pad(size_t n) { return n == 0 ? 64 : (n + 63) / 64 * 64; }
  static constexpr size_t kMinCached = size_t(64) << 10;
  static constexpr int64_t kMaxCached = int64_t(2) << 30;
  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;
};

}  // namespace

AllocationLimit::AllocationLimit(int64_t max_new_bytes, std::string what) {
  SPOOL_CHECK(max_new_bytes >= 0, "AllocationLimit: the cap ", max_new_bytes, " is negative");
  std::lock_guard<std::mutex> lock(g_limit_mu);
  SPOOL_CHECK(g_limit.load() == INT64_MAX, "AllocationLimit: one is in force already (",
              g_limit_what, ")");
  const int64_t live = allocator(Device::cpu()).stats().live_bytes;
  g_limit_what = std::move(what);
  g_limit.store(max_new_bytes > INT64_MAX - 1 - live ? INT64_MAX - 1 : live + max_new_bytes);
}

AllocationLimit::~AllocationLimit() {
  std::lock_guard<std::mutex> lock(g_limit_mu);
  g_limit.store(INT64_MAX);
  g_limit_what.clear();
}

Allocator& allocator(Device device) {
  static CpuAllocator cpu;
  if (device.type == DeviceType::cpu) return cpu;
  return detail::require_gpu(device, cuda_allocator);
}

MemoryStats memory_stats(Device device) { return allocator(device).stats(); }
void reset_peak(Device device) { allocator(device).reset_peak(); }
void empty_cache(Device device) { allocator(device).empty_cache(); }

}  // namespace spool
