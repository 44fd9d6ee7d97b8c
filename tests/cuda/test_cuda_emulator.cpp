// The emulated CUDA device (SPOOL_CUDA=EMULATE): barriers and warp collectives with CUDA's
// semantics in any thread order, and the checks a GPU sanitizer would make, each shown catching
// a deliberately broken kernel. Skipped, with the reason, in builds without the emulator; the
// data-race checks need the ThreadSanitizer build too (-DSPOOL_TSAN=ON, tools/emulate_check.sh).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#ifdef SPOOL_CUDA_EMULATED
#include "cuda/emulate/cuda_runtime.h"
#include "cuda/emulate/device.h"

namespace {

// ---- correct kernels ----

// Each thread writes its slot, then reads its neighbour's: right only if the barrier orders them.
__global__ void rotate_kernel(const int* in, int* out) {
  __shared__ int s[256];
  const int t = int(threadIdx.x), n = int(blockDim.x);
  s[t] = in[blockIdx.x * n + t];
  __syncthreads();
  out[blockIdx.x * n + t] = s[(t + 1) % n];
}

// A warp's lanes rotate by one through __shfl_sync, sum through __shfl_xor_sync, and ballot.
__global__ void warp_kernel(int* rot, int* sum, unsigned* odd) {
  const int lane = int(threadIdx.x & 31);
  rot[threadIdx.x] = __shfl_sync(0xffffffffu, int(threadIdx.x), (lane + 1) & 31);
  int v = int(threadIdx.x);
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  sum[threadIdx.x] = v;
  const int down = __shfl_down_sync(0xffffffffu, lane, 1);  // the last lane keeps its own
  const int up = __shfl_up_sync(0xffffffffu, lane, 1);      // the first lane keeps its own
  if (lane == 31 && down != 31) sum[threadIdx.x] = -1;
  if (lane == 0 && up != 0) sum[threadIdx.x] = -1;
  odd[threadIdx.x] = __ballot_sync(0xffffffffu, lane & 1);
}

__global__ void dynamic_smem_kernel(float* out, int n) {
  SPOOL_DYNAMIC_SHARED(float, buf);
  for (int i = int(threadIdx.x); i < n; i += int(blockDim.x)) buf[i] = 1.0f;
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0;
    for (int i = 0; i < n; ++i) s += buf[i];
    *out = s;
  }
}

// ---- broken kernels ----

__global__ void divergent_barrier_kernel(int* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

__global__ void early_return_barrier_kernel(int* out, int n) {
  if (int(threadIdx.x) >= n) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void partial_warp_shuffle_kernel(int* out) {
  int v = int(threadIdx.x);
  if (threadIdx.x < 16) v = __shfl_xor_sync(0xffffffffu, v, 1);
  out[threadIdx.x] = v;
}

__global__ void lane_outside_mask_kernel(int* out) {
  out[threadIdx.x] = __shfl_sync(0x0000ffffu, int(threadIdx.x), 0);
}

__global__ void any_kernel(int* out) { out[threadIdx.x] = int(blockIdx.x); }

// ---- kernels with and without the barrier that orders their shared memory ----

// A block's sum by halving strides. Without `barrier`, thread t adds its partner's slot before
// the partner has written it: a race on shared memory.
__global__ void block_sum_kernel(const float* in, float* out, bool barrier) {
  __shared__ float s[256];
  const int t = int(threadIdx.x);
  s[t] = in[blockIdx.x * blockDim.x + unsigned(t)];
  if (barrier) __syncthreads();
  for (int stride = int(blockDim.x) / 2; stride > 0; stride >>= 1) {
    if (t < stride) s[t] += s[t + stride];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = s[0];
}

// Lanes publish a value in their warp's part of shared memory and read their neighbour's; `sync`
// orders the two.
__global__ void warp_neighbour_kernel(int* out, bool sync) {
  __shared__ int s[1024];
  const int lane = int(threadIdx.x & 31), warp = int(threadIdx.x) - lane;
  s[warp + lane] = lane * 3;
  if (sync) __syncwarp();
  out[threadIdx.x] = s[warp + ((lane + 1) & 31)];
}

// The same through dynamic shared memory, over the whole block.
__global__ void dynamic_rotate_kernel(int* out, bool barrier) {
  SPOOL_DYNAMIC_SHARED(int, buf);
  const int t = int(threadIdx.x), n = int(blockDim.x);
  buf[t] = t;
  if (barrier) __syncthreads();
  out[t] = buf[(t + 1) % n];
}

// Every thread of a block stores its index in the block's one word: a race on device memory.
__global__ void last_writer_kernel(int* out) { out[blockIdx.x] = int(threadIdx.x); }

__global__ void atomic_count_kernel(int* count, float* sum, int* most) {
  atomicAdd(count, 1);
  atomicAdd(sum, 0.5f);
  atomicMax(most, int(threadIdx.x + blockIdx.x * blockDim.x));
}

// ---- kernels that read memory no thread wrote, or index past a static __shared__ array ----

// 32 threads: thread t writes slot t, and slot t + 32 only when `all`; then reads both. Without
// `all` each output reads a slot no thread of the block wrote.
__global__ void half_written_kernel(float* out, bool all) {
  __shared__ float s[64];
  const int t = int(threadIdx.x);
  s[t] = float(t);
  if (all) s[t + 32] = 1.0f;
  __syncthreads();
  out[blockIdx.x * 32 + unsigned(t)] = s[t] + s[t + 32];
}

// The same through dynamic shared memory (64 floats).
__global__ void half_written_dynamic_kernel(float* out, bool all) {
  SPOOL_DYNAMIC_SHARED(float, s);
  const int t = int(threadIdx.x);
  s[t] = float(t);
  if (all) s[t + 32] = 1.0f;
  __syncthreads();
  out[blockIdx.x * 32 + unsigned(t)] = s[t] + s[t + 32];
}

// Adds to what `out` holds: right only on memory that was set first.
__global__ void accumulate_kernel(float* out) { out[threadIdx.x] += 1.0f; }

// 32 threads write slot t + shift of a 32-float array: shift 1 writes past its end.
__global__ void shifted_shared_kernel(float* out, int shift) {
  __shared__ float s[32];
  const int t = int(threadIdx.x);
  s[t + shift] = float(t);
  __syncthreads();
  out[t] = s[t];
}

// A 4 x 32 tile, 32 x 4 threads: each reads the next row's column c + skew, so skew 1 reads
// column 32, past the inner dimension though inside the array.
__global__ void tile_column_kernel(float* out, int skew) {
  __shared__ float tile[4][32];
  const int r = int(threadIdx.y), c = int(threadIdx.x);
  tile[r][c] = float(r * 32 + c);
  __syncthreads();
  out[r * 32 + c] = tile[(r + 1) % 4][c + skew];
}

std::string last_error() {
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? "" : std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
}

template <class T>
T* device_array(size_t n) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, n * sizeof(T)), cudaSuccess);
  return static_cast<T*>(p);
}

}  // namespace

TEST(CudaEmulator, BarriersOrderSharedMemoryInEveryThreadOrder) {
  using spool::emu::Order;
  const int blocks = 3, n = 256;
  std::vector<int> in(size_t(blocks * n));
  for (size_t i = 0; i < in.size(); ++i) in[i] = int(i * 7 + 1);
  int* din = device_array<int>(in.size());
  int* dout = device_array<int>(in.size());
  cudaMemcpy(din, in.data(), in.size() * sizeof(int), cudaMemcpyHostToDevice);
  for (Order order : {Order::forward, Order::reverse, Order::shuffled}) {
    spool::emu::set_thread_order(order, 42);
    SPOOL_LAUNCH(rotate_kernel, blocks, n, 0, nullptr, din, dout);
    ASSERT_EQ(last_error(), "");
    std::vector<int> out(in.size());
    cudaMemcpy(out.data(), dout, out.size() * sizeof(int), cudaMemcpyDeviceToHost);
    for (int b = 0; b < blocks; ++b)
      for (int t = 0; t < n; ++t)
        ASSERT_EQ(out[size_t(b * n + t)], in[size_t(b * n + (t + 1) % n)])
            << "order " << int(order) << " block " << b << " thread " << t;
  }
  spool::emu::set_thread_order(Order::forward);
  cudaFree(din);
  cudaFree(dout);
}

TEST(CudaEmulator, WarpShufflesAndBallotHaveCudaSemantics) {
  int* rot = device_array<int>(64);
  int* sum = device_array<int>(64);
  unsigned* odd = device_array<unsigned>(64);
  SPOOL_LAUNCH(warp_kernel, 1, 64, 0, nullptr, rot, sum, odd);
  ASSERT_EQ(last_error(), "");
  std::vector<int> r(64), s(64);
  std::vector<unsigned> o(64);
  cudaMemcpy(r.data(), rot, 64 * sizeof(int), cudaMemcpyDeviceToHost);
  cudaMemcpy(s.data(), sum, 64 * sizeof(int), cudaMemcpyDeviceToHost);
  cudaMemcpy(o.data(), odd, 64 * sizeof(unsigned), cudaMemcpyDeviceToHost);
  for (int t = 0; t < 64; ++t) {
    const int w = t / 32 * 32;
    EXPECT_EQ(r[size_t(t)], w + (t + 1) % 32) << t;
    EXPECT_EQ(s[size_t(t)], 32 * w + 31 * 32 / 2) << t;  // sum of the warp's thread ids
    EXPECT_EQ(o[size_t(t)], 0xaaaaaaaau) << t;
  }
  cudaFree(rot);
  cudaFree(sum);
  cudaFree(odd);
}

TEST(CudaEmulator, DivergentSyncthreadsIsReported) {
  int* out = device_array<int>(64);
  SPOOL_LAUNCH(divergent_barrier_kernel, 1, 64, 0, nullptr, out);
  const std::string e = last_error();
  EXPECT_NE(e.find("divergent __syncthreads"), std::string::npos) << e;
  EXPECT_NE(e.find("divergent_barrier_kernel"), std::string::npos) << e;
  SPOOL_LAUNCH(early_return_barrier_kernel, 1, 64, 0, nullptr, out, 40);
  const std::string e2 = last_error();
  EXPECT_NE(e2.find("returned while"), std::string::npos) << e2;
  // The device goes on after a reported fault.
  SPOOL_LAUNCH(early_return_barrier_kernel, 1, 64, 0, nullptr, out, 64);
  EXPECT_EQ(last_error(), "");
  cudaFree(out);
}

TEST(CudaEmulator, ShufflesWithLanesMissingFromTheMaskAreReported) {
  int* out = device_array<int>(64);
  SPOOL_LAUNCH(partial_warp_shuffle_kernel, 1, 32, 0, nullptr, out);
  const std::string e = last_error();
  EXPECT_NE(e.find("__shfl_xor_sync"), std::string::npos) << e;
  EXPECT_NE(e.find("returned while"), std::string::npos) << e;
  SPOOL_LAUNCH(lane_outside_mask_kernel, 1, 32, 0, nullptr, out);
  const std::string e2 = last_error();
  EXPECT_NE(e2.find("is not in its mask"), std::string::npos) << e2;
  // A full mask over a block of 16 threads names lanes that do not exist.
  SPOOL_LAUNCH(warp_kernel, 1, 16, 0, nullptr, out, out, reinterpret_cast<unsigned*>(out));
  const std::string e3 = last_error();
  EXPECT_NE(e3.find("does not exist"), std::string::npos) << e3;
  cudaFree(out);
}

TEST(CudaEmulator, LaunchesBeyondSm90LimitsAreRefused) {
  int* out = device_array<int>(2048);
  SPOOL_LAUNCH(any_kernel, 1, 1025, 0, nullptr, out);
  std::string e = last_error();
  EXPECT_NE(e.find("cudaErrorInvalidConfiguration"), std::string::npos) << e;
  SPOOL_LAUNCH(any_kernel, dim3(1, 65536), 32, 0, nullptr, out);
  e = last_error();
  EXPECT_NE(e.find("grid (1,65536,1)"), std::string::npos) << e;
  SPOOL_LAUNCH(any_kernel, dim3(1, 1, 1), dim3(1, 1, 65), 0, nullptr, out);
  EXPECT_NE(last_error(), "");
  SPOOL_LAUNCH(any_kernel, 2, 1024, 0, nullptr, out);
  EXPECT_EQ(last_error(), "");
  cudaFree(out);
}

TEST(CudaEmulator, DynamicSharedMemoryOverTheKernelsAttributeIsRefused) {
  float* out = device_array<float>(1);
  const int n = 20000;  // 80,000 bytes: over the default 48 KiB
  SPOOL_LAUNCH(dynamic_smem_kernel, 1, 128, n * sizeof(float), nullptr, out, n);
  const std::string e = last_error();
  EXPECT_NE(e.find("exceed the kernel's limit of 49152"), std::string::npos) << e;
  ASSERT_EQ(cudaFuncSetAttribute(dynamic_smem_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 n * int(sizeof(float))),
            cudaSuccess);
  SPOOL_LAUNCH(dynamic_smem_kernel, 1, 128, n * sizeof(float), nullptr, out, n);
  ASSERT_EQ(last_error(), "");
  float s = 0;
  cudaMemcpy(&s, out, sizeof s, cudaMemcpyDeviceToHost);
  EXPECT_EQ(s, float(n));  // every element written before the barrier, none twice
  EXPECT_NE(cudaFuncSetAttribute(dynamic_smem_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 228 << 10),
            cudaSuccess);  // over sm_90's 227 KiB
  cudaGetLastError();
  cudaFree(out);
}

TEST(CudaEmulator, CopiesOutsideAnAllocationAreRefused) {
  int* p = device_array<int>(10);
  std::vector<int> host(11);
  EXPECT_EQ(cudaMemcpy(host.data(), p, 11 * sizeof(int), cudaMemcpyDeviceToHost),
            cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(host.data(), p, 10 * sizeof(int), cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(cudaFree(host.data()), cudaErrorInvalidValue);
  cudaGetLastError();
  cudaFree(p);
}

TEST(CudaEmulator, AtomicsAddUpAcrossThreadsAndBlocks) {
  int* count = device_array<int>(2);
  float* sum = device_array<float>(1);
  cudaMemset(count, 0, 2 * sizeof(int));
  cudaMemset(sum, 0, sizeof(float));
  SPOOL_LAUNCH(atomic_count_kernel, 3, 64, 0, nullptr, count, sum, count + 1);
  ASSERT_EQ(last_error(), "");  // under ThreadSanitizer: atomics on one address are no race
  int c[2] = {};
  float f = 0;
  cudaMemcpy(c, count, sizeof c, cudaMemcpyDeviceToHost);
  cudaMemcpy(&f, sum, sizeof f, cudaMemcpyDeviceToHost);
  EXPECT_EQ(c[0], 192);
  EXPECT_EQ(f, 96.0f);
  EXPECT_EQ(c[1], 191);
  cudaFree(count);
  cudaFree(sum);
}

// The correct versions of the racy kernels below: right results in every thread order, and under
// ThreadSanitizer no report (a report would be the launch's error and fail this test).
TEST(CudaEmulator, KernelsWithTheirBarriersAreRaceFree) {
  using spool::emu::Order;
  const int blocks = 2, n = 256;
  std::vector<float> in(size_t(blocks * n));
  for (size_t i = 0; i < in.size(); ++i) in[i] = float(i % 17);
  float* din = device_array<float>(in.size());
  float* dsum = device_array<float>(blocks);
  int* dout = device_array<int>(n);
  cudaMemcpy(din, in.data(), in.size() * sizeof(float), cudaMemcpyHostToDevice);
  for (Order order : {Order::forward, Order::reverse, Order::shuffled}) {
    spool::emu::set_thread_order(order, 7);
    SPOOL_LAUNCH(block_sum_kernel, blocks, n, 0, nullptr, din, dsum, true);
    ASSERT_EQ(last_error(), "");
    std::vector<float> sum(blocks);
    cudaMemcpy(sum.data(), dsum, sum.size() * sizeof(float), cudaMemcpyDeviceToHost);
    for (int b = 0; b < blocks; ++b) {
      float want = 0;
      for (int t = 0; t < n; ++t) want += in[size_t(b * n + t)];
      EXPECT_EQ(sum[size_t(b)], want) << "order " << int(order) << " block " << b;
    }
    SPOOL_LAUNCH(warp_neighbour_kernel, 1, 64, 0, nullptr, dout, true);
    ASSERT_EQ(last_error(), "");
    std::vector<int> out(64);
    cudaMemcpy(out.data(), dout, out.size() * sizeof(int), cudaMemcpyDeviceToHost);
    for (int t = 0; t < 64; ++t) EXPECT_EQ(out[size_t(t)], ((t + 1) & 31) * 3) << t;
    SPOOL_LAUNCH(dynamic_rotate_kernel, 1, n, n * sizeof(int), nullptr, dout, true);
    ASSERT_EQ(last_error(), "");
    out.resize(size_t(n));
    cudaMemcpy(out.data(), dout, out.size() * sizeof(int), cudaMemcpyDeviceToHost);
    for (int t = 0; t < n; ++t) EXPECT_EQ(out[size_t(t)], (t + 1) % n) << t;
  }
  spool::emu::set_thread_order(Order::forward);
  cudaFree(din);
  cudaFree(dsum);
  cudaFree(dout);
}

// Run by DataRacesAreReportedUnderThreadSanitizer in a child process (SPOOL_RACE_CHILD=1; skipped
// otherwise, since racing on purpose only proves something where that test reads the reports):
// each racy kernel's launch fails with the race, named after the kernel, with the address and
// the two CUDA threads. ThreadSanitizer then ends the child with its exit status 66.
TEST(CudaEmulatorRaceChild, RacyKernelsFailTheirLaunches) {
  if (!std::getenv("SPOOL_RACE_CHILD"))
    GTEST_SKIP() << "runs as the child of CudaEmulator.DataRacesAreReportedUnderThreadSanitizer, "
                    "which checks its ThreadSanitizer reports";
  spool::emu::set_thread_order(spool::emu::Order::forward);
  std::vector<float> in(256, 1.0f);
  float* din = device_array<float>(in.size());
  float* dsum = device_array<float>(1);
  int* dout = device_array<int>(256);
  cudaMemcpy(din, in.data(), in.size() * sizeof(float), cudaMemcpyHostToDevice);
  // Thread 0 reads slot 128 in the first step, before thread 128 has written it.
  SPOOL_LAUNCH(block_sum_kernel, 1, 256, 0, nullptr, din, dsum, false);
  std::string e = last_error();
  std::printf("race report: %s\n", e.c_str());
  EXPECT_NE(e.find("block_sum_kernel: data race on shared memory (a static __shared__ array)"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("thread (128,0,0) of block (0,0,0) writes it at tests/cuda/"), std::string::npos)
      << e;
  EXPECT_NE(e.find("thread (0,0,0) of block (0,0,0) read it at tests/cuda/"), std::string::npos)
      << e;
  SPOOL_LAUNCH(warp_neighbour_kernel, 1, 32, 0, nullptr, dout, false);
  e = last_error();
  std::printf("race report: %s\n", e.c_str());
  EXPECT_NE(e.find("warp_neighbour_kernel: data race on shared memory"), std::string::npos) << e;
  EXPECT_NE(e.find("thread (1,0,0) of block (0,0,0) writes"), std::string::npos) << e;
  EXPECT_NE(e.find("thread (0,0,0) of block (0,0,0) read"), std::string::npos) << e;
  SPOOL_LAUNCH(dynamic_rotate_kernel, 1, 64, 64 * sizeof(int), nullptr, dout, false);
  e = last_error();
  std::printf("race report: %s\n", e.c_str());
  EXPECT_NE(e.find("dynamic_rotate_kernel: data race on dynamic shared memory (byte 4 of 256)"),
            std::string::npos)
      << e;
  SPOOL_LAUNCH(last_writer_kernel, 2, 32, 0, nullptr, dout);
  e = last_error();
  std::printf("race report: %s\n", e.c_str());
  EXPECT_NE(e.find("last_writer_kernel: data race on device memory (byte 0 of an allocation of "
                   "1024)"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("thread (1,0,0) of block (0,0,0) writes it"), std::string::npos) << e;
  EXPECT_NE(e.find("thread (0,0,0) of block (0,0,0) wrote it"), std::string::npos) << e;
  // The device goes on: the barrier's version of a racy kernel is clean afterwards.
  SPOOL_LAUNCH(block_sum_kernel, 1, 256, 0, nullptr, din, dsum, true);
  EXPECT_EQ(last_error(), "");
  cudaFree(din);
  cudaFree(dsum);
  cudaFree(dout);
}

TEST(CudaEmulator, DataRacesAreReportedUnderThreadSanitizer) {
#if !defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "data races are found by ThreadSanitizer: build with -DSPOOL_CUDA=EMULATE "
                  "-DSPOOL_TSAN=ON (tools/emulate_check.sh tsan)";
#else
  // The racy kernels run in a child process: ThreadSanitizer's exit status counts every report,
  // and this process must end clean.
  char self[4096] = {};
  const ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  ASSERT_GT(len, 0);
  const char* opts = std::getenv("TSAN_OPTIONS");
  const std::string cmd = "SPOOL_RACE_CHILD=1 TSAN_OPTIONS='" + std::string(opts ? opts : "") +
                          ":halt_on_error=0:exitcode=66' " + self +
                          " --gtest_filter=CudaEmulatorRaceChild.* 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int st = pclose(p);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 66) << "status " << st << "\n" << out;
  EXPECT_NE(out.find("[  PASSED  ] 1 test"), std::string::npos) << out;
  // ThreadSanitizer's own reports: one per racy kernel, its summary line naming the kernel, and
  // the fibers named after their CUDA threads.
  std::vector<std::string> summaries;
  for (size_t at = out.find("SUMMARY: ThreadSanitizer: data race"); at != std::string::npos;
       at = out.find("SUMMARY: ThreadSanitizer: data race", at + 1))
    summaries.push_back(out.substr(at, out.find('\n', at) - at));
  ASSERT_EQ(summaries.size(), 4u) << out;
  const char* kernels[] = {"block_sum_kernel", "warp_neighbour_kernel", "dynamic_rotate_kernel",
                           "last_writer_kernel"};
  for (size_t i = 0; i < 4; ++i)
    EXPECT_NE(summaries[i].find(kernels[i]), std::string::npos) << summaries[i];
  EXPECT_NE(out.find("'thread (128,0,0) of block (0,0,0)'"), std::string::npos) << out;
#endif
}

// Uninitialised reads: every block's shared memory, static and dynamic, starts filled with the
// poison byte, so a read of a slot no thread of the block wrote gives NaN under 0xff and a result
// that changes with the fill; the correct kernel gives the same under both fills. The correct one
// runs first, so without the fill at every block's start (static __shared__ arrays keep what the
// previous block left) the broken one would read its 1.0s.
TEST(CudaEmulator, SharedMemoryNoThreadWroteHoldsThePoisonFill) {
  const char* why = "";
  ASSERT_GT(spool::emu::static_shared_arrays(&why), 0u) << why;
  const uint8_t before = spool::emu::fill();
  const int blocks = 2, n = blocks * 32;
  float* out = device_array<float>(size_t(n));
  auto run = [&](bool dynamic, bool all, uint8_t fill) {
    spool::emu::set_fill(fill);
    if (dynamic)
      SPOOL_LAUNCH(half_written_dynamic_kernel, blocks, 32, 64 * sizeof(float), nullptr, out, all);
    else
      SPOOL_LAUNCH(half_written_kernel, blocks, 32, 0, nullptr, out, all);
    EXPECT_EQ(last_error(), "");
    std::vector<float> h(size_t(n), -7.0f);
    cudaMemcpy(h.data(), out, h.size() * sizeof(float), cudaMemcpyDeviceToHost);
    return h;
  };
  for (bool dynamic : {false, true}) {
    const auto good_ff = run(dynamic, true, 0xff), good_00 = run(dynamic, true, 0x00);
    const auto bad_ff = run(dynamic, false, 0xff), bad_00 = run(dynamic, false, 0x00);
    for (int i = 0; i < n; ++i) {
      SCOPED_TRACE(std::string(dynamic ? "dynamic" : "static") + " output " + std::to_string(i));
      EXPECT_EQ(good_ff[size_t(i)], float(i % 32) + 1.0f);
      EXPECT_EQ(good_00[size_t(i)], good_ff[size_t(i)]);
      EXPECT_TRUE(std::isnan(bad_ff[size_t(i)])) << bad_ff[size_t(i)];
      EXPECT_EQ(bad_00[size_t(i)], float(i % 32));
    }
  }
  spool::emu::set_fill(before);
  cudaFree(out);
}

// Fresh cudaMalloc'd memory holds the poison byte: a kernel that adds to it without setting it
// first gives NaN under 0xff; after cudaMemset the same kernel is right under any fill.
TEST(CudaEmulator, FreshDeviceMemoryHoldsThePoisonFill) {
  const uint8_t before = spool::emu::fill();
  for (uint8_t fill : {uint8_t(0xff), uint8_t(0x00), uint8_t(0x5a)}) {
    spool::emu::set_fill(fill);
    float* p = device_array<float>(32);
    std::vector<unsigned char> bytes(32 * sizeof(float));
    cudaMemcpy(bytes.data(), p, bytes.size(), cudaMemcpyDeviceToHost);
    for (unsigned char b : bytes) ASSERT_EQ(b, fill);
    SPOOL_LAUNCH(accumulate_kernel, 1, 32, 0, nullptr, p);
    ASSERT_EQ(last_error(), "");
    std::vector<float> h(32);
    cudaMemcpy(h.data(), p, h.size() * sizeof(float), cudaMemcpyDeviceToHost);
    if (fill == 0xff)
      for (float v : h) EXPECT_TRUE(std::isnan(v)) << v;
    if (fill == 0x00)
      for (float v : h) EXPECT_EQ(v, 1.0f);
    cudaMemset(p, 0, 32 * sizeof(float));
    SPOOL_LAUNCH(accumulate_kernel, 1, 32, 0, nullptr, p);
    cudaMemcpy(h.data(), p, h.size() * sizeof(float), cudaMemcpyDeviceToHost);
    for (float v : h) EXPECT_EQ(v, 1.0f);
    cudaFree(p);
  }
  spool::emu::set_fill(before);
}

// Run by StaticSharedOutOfBoundsIsReportedUnderUBSan in a child process (SPOOL_BOUNDS_CHILD=1 or
// 2; skipped otherwise): UBSan's report of the index past the array ends the process, so the
// launch never returns and the line below is not printed.
TEST(CudaEmulatorBoundsChild, IndexPastAStaticSharedArray) {
  const char* which = std::getenv("SPOOL_BOUNDS_CHILD");
  if (!which)
    GTEST_SKIP() << "runs as the child of CudaEmulator.StaticSharedOutOfBoundsIsReportedUnderUBSan"
                    ", which checks UBSan's report";
  spool::emu::set_thread_order(spool::emu::Order::forward);
  float* out = device_array<float>(128);
  if (std::string(which) == "1")
    SPOOL_LAUNCH(shifted_shared_kernel, 1, 32, 0, nullptr, out, 1);
  else
    SPOOL_LAUNCH(tile_column_kernel, 1, dim3(32, 4), 0, nullptr, out, 1);
  std::printf("the launch returned: %s\n", last_error().c_str());
  cudaFree(out);
}

TEST(CudaEmulator, StaticSharedOutOfBoundsIsReportedUnderUBSan) {
#if !defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "an index past a static __shared__ array is found by UBSan's bounds check: "
                  "build with -DSPOOL_CUDA=EMULATE -DSPOOL_SANITIZE=ON (tools/emulate_check.sh "
                  "asan)";
#else
  // The in-bounds versions run clean (a UBSan report would end this process).
  float* out = device_array<float>(128);
  SPOOL_LAUNCH(shifted_shared_kernel, 1, 32, 0, nullptr, out, 0);
  ASSERT_EQ(last_error(), "");
  std::vector<float> h(128);
  cudaMemcpy(h.data(), out, 32 * sizeof(float), cudaMemcpyDeviceToHost);
  for (int t = 0; t < 32; ++t) EXPECT_EQ(h[size_t(t)], float(t));
  SPOOL_LAUNCH(tile_column_kernel, 1, dim3(32, 4), 0, nullptr, out, 0);
  ASSERT_EQ(last_error(), "");
  cudaMemcpy(h.data(), out, 128 * sizeof(float), cudaMemcpyDeviceToHost);
  for (int i = 0; i < 128; ++i) EXPECT_EQ(h[size_t(i)], float((i + 32) % 128)) << i;
  cudaFree(out);
  // The broken ones, each in a child: the emulator's line names the kernel, the CUDA thread and
  // the source line, and UBSan's report follows.
  char self[4096] = {};
  const ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  ASSERT_GT(len, 0);
  // The first thread past the bound: thread 31 of the row, or of the last row for the tile (the
  // last thread to reach the barrier goes on first).
  const char* kernels[] = {"shifted_shared_kernel", "tile_column_kernel"};
  const char* threads[] = {"thread (31,0,0) of block (0,0,0)", "thread (31,3,0) of block (0,0,0)"};
  for (int which = 1; which <= 2; ++which) {
    const std::string cmd = "SPOOL_BOUNDS_CHILD=" + std::to_string(which) + " " + self +
                            " --gtest_filter=CudaEmulatorBoundsChild.* 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string got;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) got.append(buf.data(), n);
    const int st = pclose(p);
    EXPECT_FALSE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << got;
    EXPECT_EQ(got.find("the launch returned"), std::string::npos) << got;
    const std::string line = std::string("spool emulated device: ") + kernels[which - 1] +
                             ": Index 32 out of bounds for type 'float [32]' at " +
                             "tests/cuda/test_cuda_emulator.cpp:";
    EXPECT_NE(got.find(line), std::string::npos) << got;
    EXPECT_NE(got.find(threads[which - 1]), std::string::npos) << got;
    EXPECT_NE(got.find("runtime error: index 32 out of bounds for type 'float [32]'"),
              std::string::npos)
        << got;
  }
#endif
}

#else

TEST(CudaEmulator, NeedsTheEmulatedBuild) {
  GTEST_SKIP() << "this build has no emulated CUDA device (configure with -DSPOOL_CUDA=EMULATE)";
}

#endif
