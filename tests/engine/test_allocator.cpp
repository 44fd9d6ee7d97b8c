// The CPU allocator counts exactly the bytes tensors ask for.
#include <gtest/gtest.h>

#include "ops/ops.h"

namespace spool {
namespace {

TEST(Allocator, LiveBytesRiseByExactlyTheTensorsSizeAndReturnWhenItDies) {
  const int64_t before = memory_stats(Device::cpu()).live_bytes;
  {
    Tensor t = zeros({3, 5}, DType::f32);
    EXPECT_EQ(memory_stats(Device::cpu()).live_bytes, before + 3 * 5 * 4);
    Tensor u = empty({7}, DType::f64);
    EXPECT_EQ(memory_stats(Device::cpu()).live_bytes, before + 3 * 5 * 4 + 7 * 8);
  }
  EXPECT_EQ(memory_stats(Device::cpu()).live_bytes, before);
}

TEST(Allocator, AnAllocationLimitRefusesWhatPassesItsCapAndIsLiftedAfter) {
  {
    AllocationLimit cap(1000, "--weights: too large");
    Tensor fits = empty({200}, DType::f32);  // 800 bytes
    try {
      Tensor over = empty({100}, DType::f32);  // 400 more: 1200 > 1000
      FAIL() << "the cap let 1200 bytes through";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--weights: too large"), std::string::npos) << e.what();
    }
    // Freed bytes count again: the cap is on the live bytes, not on a running total.
    fits = Tensor();
    EXPECT_NO_THROW(empty({200}, DType::f32));
    // A byte count that does not fit in 64 bits is refused, not wrapped.
    EXPECT_THROW(allocator(Device::cpu()).allocate(~size_t(0)), Error);
    EXPECT_THROW(AllocationLimit(1, "nested"), Error);
  }
  EXPECT_NO_THROW(empty({1000}, DType::f32));
}

TEST(Allocator, CountsBytesWithoutAlignmentPadding) {
  const int64_t before = memory_stats().live_bytes;
  Tensor t = empty({3}, DType::b8);  // 3 bytes, padded to 64 underneath
  EXPECT_EQ(memory_stats().live_bytes, before + 3);
}

TEST(Allocator, AViewAllocatesNothing) {
  Tensor t = zeros({4, 6}, DType::f64);
  const spool::MemoryStats before = spool::memory_stats();
  Tensor v = slice(transpose(t, 0, 1), 0, 1, 5, 2);
  Tensor d = t.detach();
  const spool::MemoryStats after = spool::memory_stats();
  EXPECT_EQ(after.live_bytes, before.live_bytes);
  EXPECT_EQ(after.total_allocs, before.total_allocs);
}

TEST(Allocator, StorageLivesWhileAViewOfItDoes) {
  const int64_t before = memory_stats().live_bytes;
  Tensor v;
  {
    Tensor t = zeros({10}, DType::f64);
    v = narrow(t, 0, 2, 3);
  }
  EXPECT_EQ(memory_stats().live_bytes, before + 10 * 8);
  v = Tensor();
  EXPECT_EQ(memory_stats().live_bytes, before);
}

TEST(Allocator, PeakTracksTheHighestLiveBytes) {
  reset_peak(Device::cpu());
  const int64_t base = memory_stats().live_bytes;
  EXPECT_EQ(memory_stats().peak_bytes, base);
  {
    Tensor big = empty({1000}, DType::f32);  // 4000 bytes
  }
  {
    Tensor small = empty({10}, DType::f32);  // 40 bytes
    const MemoryStats s = memory_stats();
    EXPECT_EQ(s.live_bytes, base + 40);
    EXPECT_EQ(s.peak_bytes, base + 4000);
  }
  EXPECT_EQ(memory_stats().live_bytes, base);
  EXPECT_EQ(memory_stats().peak_bytes, base + 4000);
}

TEST(Allocator, ResetPeakSetsPeakToLive) {
  { Tensor big = empty({2048}, DType::f64); }
  Tensor keep = empty({16}, DType::f64);
  reset_peak();
  const MemoryStats s = memory_stats();
  EXPECT_EQ(s.peak_bytes, s.live_bytes);
}

TEST(Allocator, EachStorageCountsOneAllocation) {
  const spool::MemoryStats before = spool::memory_stats();
  Tensor a = empty({4});
  Tensor b = empty({5});
  const MemoryStats during = memory_stats();
  EXPECT_EQ(during.total_allocs, before.total_allocs + 2);
  EXPECT_EQ(during.live_allocs, before.live_allocs + 2);
  a = Tensor();
  b = Tensor();
  const spool::MemoryStats after = spool::memory_stats();
  EXPECT_EQ(after.total_allocs, before.total_allocs + 2);
  EXPECT_EQ(after.live_allocs, before.live_allocs);
}

TEST(Allocator, FreedLargeBlocksAreCachedAsReservedNotLiveAndEmptyCacheReturnsThem) {
  empty_cache();
  const MemoryStats before = memory_stats();
  {
    Tensor big = zeros({1 << 16});  // 256 KiB
    EXPECT_EQ(memory_stats().live_bytes, before.live_bytes + (1 << 18));
  }
  const MemoryStats after = memory_stats();
  EXPECT_EQ(after.live_bytes, before.live_bytes);
  EXPECT_EQ(after.reserved_bytes, before.reserved_bytes + (1 << 18));
  Tensor again = zeros({1 << 16});  // reuses the cached block
  EXPECT_EQ(memory_stats().reserved_bytes, after.reserved_bytes);
  again = Tensor();
  empty_cache();
  EXPECT_EQ(memory_stats().reserved_bytes, memory_stats().live_bytes);
}

}  // namespace
}  // namespace spool
