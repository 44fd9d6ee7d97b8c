// The emulated CUDA device (SPOOL_CUDA=EMULATE): what cuda/*.cu need from <cuda_runtime.h>, for
// the host compiler. Found before the toolkit's header through the include path of spool_lib's
// own sources only. Each CUDA thread of a block is a fiber (cuda/emulate/device.cpp): it runs
// until it reaches a barrier or a warp collective, then the next one runs, so __syncthreads and
// the shuffles have CUDA's semantics; blocks run one after another. Device memory is host memory.
#pragma once
#include <math.h>  // the float overloads (exp(float), ...) in the global namespace, as on the device

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

#define SPOOL_CUDA_EMULATED_DEVICE 1

// Qualifiers: kernels and device functions are plain host functions.
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(...)
// Static shared arrays: one per host thread, and a host thread runs one block at a time, so each
// block has its own. Each declaration is preceded by a one-byte marker, kept (`used`) so that the
// emulator finds it in the symbol table: the marker and the arrays share their function's mangled
// prefix, which is how the emulator knows a kernel's static __shared__ arrays and fills them with
// its poison byte at every block's start (spool::emu::set_fill, cuda/emulate/device.cpp).
#define SPOOL_EMU_CAT2_(a, b) a##b
#define SPOOL_EMU_CAT_(a, b) SPOOL_EMU_CAT2_(a, b)
#define __shared__                                                                            \
  [[gnu::used, maybe_unused]] static thread_local char SPOOL_EMU_CAT_(spool_emu_shared_mark_, \
                                                                      __COUNTER__);           \
  static thread_local

// ---- vector types and built-in variables ----
struct uint3 {
  unsigned x = 0, y = 0, z = 0;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) int4 {
  int x, y, z, w;
};
struct alignas(8) int2 {
  int x, y;
};
struct alignas(16) double2 {
  double x, y;
};
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline float2 make_float2(float x, float y) { return {x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }

// Set by the scheduler each time it switches to a thread.
inline thread_local uint3 threadIdx;
inline thread_local uint3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;
constexpr int warpSize = 32;

// ---- math: the device's names over the host's functions ----
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __saturatef(float x) { return x < 0 ? 0.0f : (x > 1 ? 1.0f : x); }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long min(long a, long b) { return a < b ? a : b; }
inline long max(long a, long b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long min(unsigned long a, unsigned long b) { return a < b ? a : b; }
inline unsigned long max(unsigned long a, unsigned long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
template <class T>
inline T __ldg(const T* p) {
  return *p;
}

// ---- the runtime API (the subset spool calls) ----
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorLaunchFailure = 4,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDeviceFunction = 98,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorAssert = 710,
};
using cudaError = cudaError_t;
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};
enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};
enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9,
};
constexpr unsigned cudaStreamDefault = 0, cudaStreamNonBlocking = 1;
struct CUstream_st;
struct CUevent_st;
using cudaStream_t = CUstream_st*;
using cudaEvent_t = CUevent_st*;
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  size_t sharedMemPerBlockOptin;
  int warpSize;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  int multiProcessorCount;
  int major, minor;
};

const char* cudaGetErrorName(cudaError_t err);
const char* cudaGetErrorString(cudaError_t err);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
cudaError_t cudaGetDeviceCount(int* n);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaMalloc(void** p, size_t size);
cudaError_t cudaFree(void* p);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind kind,
                            cudaStream_t s = nullptr);
cudaError_t cudaMemset(void* p, int value, size_t n);
cudaError_t cudaMemsetAsync(void* p, int value, size_t n, cudaStream_t s = nullptr);
cudaError_t cudaStreamCreate(cudaStream_t* s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaEventCreate(cudaEvent_t* e);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);
template <class K>
cudaError_t cudaFuncSetAttribute(K* kernel, cudaFuncAttribute attr, int value);

// ---- the emulator's interface to the kernels ----
namespace spool::emu {

// Block-wide and warp-wide barriers; `site` names the call (file:line) for divergence reports.
void syncthreads(const char* file, int line);
void syncwarp(unsigned mask, const char* file, int line);
// The exchange under every warp collective: lane publishes `value` (up to 16 bytes), all lanes
// of `mask` meet, and the lane gets the bytes that lane `src` published (src < 0: its own).
void warp_exchange(unsigned mask, const void* value, size_t size, int src, void* result,
                   const char* what, const char* file, int line);
// The bits of the lanes of `mask` whose predicate is true.
unsigned warp_ballot(unsigned mask, bool pred, const char* file, int line);
// The launch's dynamic shared memory (exactly the bytes the launch asked for).
void* dynamic_shared();
// A kernel failed a check: records the report for cudaGetLastError and ends the launch.
[[noreturn]] void kernel_fault(const char* what);

// One launch: checks the configuration against sm_90's limits and the kernel's attributes, then
// runs `body(arg)` as every thread of every block.
struct LaunchConfig {
  const char* name;
  const void* kernel;  // for the attributes cudaFuncSetAttribute set; null when not resolvable
  dim3 grid, block;
  size_t smem;
};
void launch(const LaunchConfig& c, void (*body)(void*), void* arg);
// The dynamic shared-memory limit set by cudaFuncSetAttribute (48 KiB when never set).
cudaError_t set_max_dynamic_smem(const void* kernel, int bytes);

// The address of a kernel named without deduction (a function, or a template with all its
// arguments given); X... only make the call dependent, so a failure is a substitution failure.
template <class... A, class... X>
const void* kernel_address(void (*k)(A...), X&...) {
  return reinterpret_cast<const void*>(k);
}
// The address of the specialisation that arguments of exactly the types A... select.
template <class... A>
const void* deduced_kernel_address(void (*k)(A...)) {
  return reinterpret_cast<const void*>(k);
}

// F: a generic lambda (address, args...) made by SPOOL_LAUNCH that calls the kernel expression
// (overload resolution and template deduction as at a <<<>>> launch) or returns its address.
template <class F>
struct Launch {
  F f;
  LaunchConfig config;
  template <class... A>
  void operator()(A&&... args) {
    // The arguments are copied once, as a launch copies them; every thread reads the copies.
    struct Call {
      F f;
      std::tuple<std::decay_t<A>...> args;
    } call{f, std::tuple<std::decay_t<A>...>(std::forward<A>(args)...)};
    config.kernel = std::apply([&](auto&... a) { return call.f(true, a...); }, call.args);
    launch(
        config,
        [](void* p) {
          auto* c = static_cast<Call*>(p);
          std::apply([&](auto&... a) { c->f(false, a...); }, c->args);
        },
        &call);
  }
};

template <class F>
struct Launcher {
  const char* name;
  F f;
  Launch<F> operator()(dim3 grid, dim3 block, size_t smem = 0, cudaStream_t = nullptr) const {
    return {f, {name, nullptr, grid, block, smem}};
  }
};
template <class F>
Launcher<F> launcher(const char* name, F f) {
  return {name, f};
}

}  // namespace spool::emu

template <class K>
cudaError_t cudaFuncSetAttribute(K* kernel, cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaSuccess;
  return spool::emu::set_max_dynamic_smem(reinterpret_cast<const void*>(kernel), value);
}

// The launch helper and dynamic shared memory, as cuda/common.cuh defines them for nvcc:
// SPOOL_LAUNCH(kernel, grid, block, smem, stream, args...).
#define SPOOL_LAUNCH(kernel, grid, block, smem, stream, ...)                                      \
  ::spool::emu::launcher(#kernel, [](bool spool_address_, auto&... spool_a_) -> const void* {     \
    if (spool_address_) {                                                                         \
      if constexpr (requires { ::spool::emu::kernel_address(kernel, spool_a_...); })              \
        return ::spool::emu::kernel_address(kernel, spool_a_...);                                 \
      else if constexpr (requires {                                                               \
                           ::spool::emu::deduced_kernel_address<                                  \
                               std::decay_t<decltype(spool_a_)>...>(kernel);                      \
                         })                                                                       \
        return ::spool::emu::deduced_kernel_address<std::decay_t<decltype(spool_a_)>...>(kernel); \
      else                                                                                        \
        return nullptr;                                                                           \
    }                                                                                             \
    kernel(spool_a_...);                                                                          \
    return nullptr;                                                                               \
  })(grid, block, smem, stream)(__VA_ARGS__)
#define SPOOL_DYNAMIC_SHARED(T, name) T* name = static_cast<T*>(::spool::emu::dynamic_shared())

// ---- barriers and warp collectives ----
inline void __syncthreads(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  spool::emu::syncthreads(file, line);
}
inline void __syncwarp(unsigned mask = 0xffffffffu, const char* file = __builtin_FILE(),
                       int line = __builtin_LINE()) {
  spool::emu::syncwarp(mask, file, line);
}
inline unsigned __ballot_sync(unsigned mask, int pred, const char* file = __builtin_FILE(),
                              int line = __builtin_LINE()) {
  return spool::emu::warp_ballot(mask, pred != 0, file, line);
}
inline int __any_sync(unsigned mask, int pred, const char* file = __builtin_FILE(),
                      int line = __builtin_LINE()) {
  return spool::emu::warp_ballot(mask, pred != 0, file, line) != 0;
}
inline int __all_sync(unsigned mask, int pred, const char* file = __builtin_FILE(),
                      int line = __builtin_LINE()) {
  return spool::emu::warp_ballot(mask, pred != 0, file, line) == (mask & 0xffffffffu);
}

namespace spool::emu {
template <class T>
T shuffle(unsigned mask, T v, int src, const char* what, const char* file, int line) {
  static_assert(sizeof(T) <= 16 && std::is_trivially_copyable_v<T>, "shuffle of a large type");
  T r;
  warp_exchange(mask, &v, sizeof(T), src, &r, what, file, line);
  return r;
}
inline int lane_id() {
  return int(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)) & 31;
}
}  // namespace spool::emu

// Sources outside the lane's segment of `width` lanes give the lane its own value (src -1).
template <class T>
T __shfl_sync(unsigned mask, T v, int src, int width = 32, const char* file = __builtin_FILE(),
              int line = __builtin_LINE()) {
  const int lane = spool::emu::lane_id(), base = lane & ~(width - 1);
  return spool::emu::shuffle(mask, v, base + (src & (width - 1)), "__shfl_sync", file, line);
}
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32,
                  const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  const int lane = spool::emu::lane_id(), base = lane & ~(width - 1), s = lane ^ lane_mask;
  return spool::emu::shuffle(mask, v, s >= base + width || s < base ? -1 : s, "__shfl_xor_sync",
                             file, line);
}
template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32,
                   const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  const int lane = spool::emu::lane_id(), base = lane & ~(width - 1), s = lane + int(delta);
  return spool::emu::shuffle(mask, v, s >= base + width ? -1 : s, "__shfl_down_sync", file, line);
}
template <class T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32,
                 const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  const int lane = spool::emu::lane_id(), base = lane & ~(width - 1), s = lane - int(delta);
  return spool::emu::shuffle(mask, v, s < base ? -1 : s, "__shfl_up_sync", file, line);
}

// Atomics: relaxed atomic read-modify-writes, as on the device, which orders no other memory
// through them; so under ThreadSanitizer two threads' atomics on one address are no race, and
// an atomic does not hide a race on other memory.
template <class T>
T atomicAdd(T* p, T v) {
  return std::atomic_ref<T>(*p).fetch_add(v, std::memory_order_relaxed);
}
template <class T>
T atomicMax(T* p, T v) {
  std::atomic_ref<T> a(*p);
  T old = a.load(std::memory_order_relaxed);
  while (v > old && !a.compare_exchange_weak(old, v, std::memory_order_relaxed)) {
  }
  return old;
}
template <class T>
T atomicMin(T* p, T v) {
  std::atomic_ref<T> a(*p);
  T old = a.load(std::memory_order_relaxed);
  while (v < old && !a.compare_exchange_weak(old, v, std::memory_order_relaxed)) {
  }
  return old;
}
template <class T>
T atomicExch(T* p, T v) {
  return std::atomic_ref<T>(*p).exchange(v, std::memory_order_relaxed);
}
template <class T>
T atomicCAS(T* p, T compare, T v) {
  std::atomic_ref<T>(*p).compare_exchange_strong(compare, v, std::memory_order_relaxed);
  return compare;  // the old value whether or not it matched
}
