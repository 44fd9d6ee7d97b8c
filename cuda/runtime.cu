// The CUDA runtime side of the backend: errors, the stream, the caching allocator, scratch
// memory, host copies, and the lazy initialisation behind engine's cuda_backend().
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cuda/common.cuh"
#include "cuda/control.h"
#include "cuda/cuda_backend.h"

namespace spool::cuda {

void fail_call(const char* call, cudaError_t err, const char* file, int line) {
  cudaGetLastError();  // clear a non-sticky error so the process can go on
  fail("cuda: ", call, " failed: ", cudaGetErrorName(err), ": ", cudaGetErrorString(err), " (",
       file, ":", line, ")");
}

namespace {
bool sync_after_launch() {
  static const bool on = [] {
    const char* v = std::getenv("SPOOL_CUDA_SYNC");
    return v && v[0] == '1';
  }();
  return on;
}
}  // namespace

void check_launch(const char* kernel, const char* file, int line) {
  cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess && sync_after_launch()) err = cudaStreamSynchronize(stream());
  if (err != cudaSuccess) fail_call(kernel, err, file, line);
}

namespace {

struct Runtime {
  cudaStream_t stream = nullptr;
  int sms = 1;
};

Runtime& runtime() {
  static Runtime* r = [] {
    auto* rt = new Runtime;
    SPOOL_CUDA_CHECK(cudaSetDevice(0));
    SPOOL_CUDA_CHECK(cudaStreamCreateWithFlags(&rt->stream, cudaStreamNonBlocking));
    SPOOL_CUDA_CHECK(cudaDeviceGetAttribute(&rt->sms, cudaDevAttrMultiProcessorCount, 0));
    return rt;
  }();
  return *r;
}

// Caching allocator. Requests are rounded up (512 B below 1 MiB, whole MiB above) and freed
// blocks are kept per rounded size for the next request of that size: a training step asks for
// the same sizes every step, and cudaMalloc / cudaFree synchronise the device. live and peak count
// the bytes tensors asked for, exactly, as on the CPU; the cache shows in reserved_bytes. All
// work is on one stream, so a block freed by the host may be handed out again at once: any
// kernel that still reads it was queued before the kernel that will write it.
class CudaAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes) override {
    const size_t size = round(nbytes);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(size);
      if (it != free_.end()) {
        void* p = it->second;
        free_.erase(it);
        cached_.fetch_sub(int64_t(size));
        count_alloc(nbytes);
        return p;
      }
    }
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, size);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      empty_cache();
      release_scratch();  // kernels take scratch after their tensors (cuda/common.cuh)
      err = cudaMalloc(&p, size);
    }
    if (err != cudaSuccess) {
      cudaGetLastError();
      const MemoryStats s = stats();
      fail("cuda allocator: out of memory allocating ", nbytes, " bytes (", cudaGetErrorString(err),
           "); live ", s.live_bytes, " bytes in ", s.live_allocs, " tensors, reserved ",
           s.reserved_bytes, " bytes");
    }
    count_alloc(nbytes);
    return p;
  }
  void deallocate(void* ptr, size_t nbytes) override {
    count_free(nbytes);
    std::lock_guard<std::mutex> lock(mu_);
    free_.emplace(round(nbytes), ptr);
    cached_.fetch_add(int64_t(round(nbytes)));
  }
  void empty_cache() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.empty()) return;
    cudaStreamSynchronize(stream());
    for (auto& [size, p] : free_) cudaFree(p);
    free_.clear();
    cached_.store(0);
  }

 private:
  static size_t round(size_t n) {
    constexpr size_t kSmall = 512, kLarge = size_t(1) << 20;
    if (n < kLarge) return n == 0 ? kSmall : (n + kSmall - 1) / kSmall * kSmall;
    return (n + kLarge - 1) / kLarge * kLarge;
  }
  std::mutex mu_;
  std::multimap<size_t, void*> free_;
};

struct Scratch {
  void* ptr = nullptr;
  size_t size = 0;
};

Gemm g_gemm = [] {
  const char* v = std::getenv("SPOOL_CUDA_GEMM");
  return v && std::string(v) == "tiled" ? Gemm::tiled : Gemm::cublas;
}();

// Whether a usable GPU is present; the reason when not. Asked once.
bool usable(std::string* why) {
  static std::string reason;
  static const bool ok = [] {
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
      reason = std::string("no usable CUDA driver or GPU (") + cudaGetErrorString(err) + ")";
      cudaGetLastError();
      return false;
    }
    if (n == 0) {
      reason = "the CUDA driver reports no GPU";
      return false;
    }
    return true;
  }();
  if (!ok && why) *why = reason;
  return ok;
}

}  // namespace

cudaStream_t stream() { return runtime().stream; }
int sm_count() { return runtime().sms; }

Scratch& scratch_buffer() {
  static Scratch s;
  return s;
}

void release_scratch() {
  Scratch& s = scratch_buffer();
  if (!s.ptr) return;
  SPOOL_CUDA_CHECK(cudaStreamSynchronize(stream()));
  SPOOL_CUDA_CHECK(cudaFree(s.ptr));
  s.ptr = nullptr;
  s.size = 0;  // a failed allocation after this must not leave a size behind the freed buffer
}

size_t scratch_bytes() { return scratch_buffer().size; }

void* scratch(size_t nbytes) {
  Scratch& s = scratch_buffer();
  if (nbytes > s.size) {
    release_scratch();
    const size_t size = nbytes + nbytes / 4;
    void* p = nullptr;
    if (cudaMalloc(&p, size) != cudaSuccess) {  // give the tensor cache back and try once more
      cudaGetLastError();
      cuda_allocator()->empty_cache();
      SPOOL_CUDA_CHECK(cudaMalloc(&p, size));
    }
    s.ptr = p;  // only now: a failed allocation leaves no null buffer behind a large size
    s.size = size;
  }
  return s.ptr;
}

double copy_bandwidth(size_t bytes, int reps) {
  void *a = nullptr, *b = nullptr;
  SPOOL_CUDA_CHECK(cudaMalloc(&a, bytes));
  SPOOL_CUDA_CHECK(cudaMalloc(&b, bytes));
  SPOOL_CUDA_CHECK(cudaMemsetAsync(a, 1, bytes, stream()));
  cudaEvent_t e0, e1;
  SPOOL_CUDA_CHECK(cudaEventCreate(&e0));
  SPOOL_CUDA_CHECK(cudaEventCreate(&e1));
  std::vector<float> ms;
  for (int r = 0; r <= reps; ++r) {
    SPOOL_CUDA_CHECK(cudaEventRecord(e0, stream()));
    SPOOL_CUDA_CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, stream()));
    SPOOL_CUDA_CHECK(cudaEventRecord(e1, stream()));
    SPOOL_CUDA_CHECK(cudaEventSynchronize(e1));
    float t = 0;
    SPOOL_CUDA_CHECK(cudaEventElapsedTime(&t, e0, e1));
    if (r > 0) ms.push_back(t);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaFree(a);
  cudaFree(b);
  std::sort(ms.begin(), ms.end());
  return 2.0 * double(bytes) / (double(ms[ms.size() / 2]) * 1e-3);
}

double time_on_stream(void (*f)(void*), void* arg, int reps) {
  f(arg);
  cudaEvent_t e0, e1;
  SPOOL_CUDA_CHECK(cudaEventCreate(&e0));
  SPOOL_CUDA_CHECK(cudaEventCreate(&e1));
  SPOOL_CUDA_CHECK(cudaEventRecord(e0, stream()));
  for (int r = 0; r < reps; ++r) f(arg);
  SPOOL_CUDA_CHECK(cudaEventRecord(e1, stream()));
  SPOOL_CUDA_CHECK(cudaEventSynchronize(e1));
  float t = 0;
  SPOOL_CUDA_CHECK(cudaEventElapsedTime(&t, e0, e1));
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  return double(t) * 1e-3 / reps;
}

void set_gemm(Gemm g) { g_gemm = g; }
Gemm gemm() { return g_gemm; }

void CudaBackend::to_host(const Tensor& src, void* dst) {
  SPOOL_CUDA_CHECK(cudaMemcpyAsync(dst, src.raw(), src.nbytes(), cudaMemcpyDeviceToHost, stream()));
  SPOOL_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void CudaBackend::from_host(const void* src, const Tensor& dst) {
  SPOOL_CUDA_CHECK(cudaMemcpyAsync(dst.raw(), src, dst.nbytes(), cudaMemcpyHostToDevice, stream()));
  SPOOL_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void CudaBackend::synchronize() { SPOOL_CUDA_CHECK(cudaStreamSynchronize(stream())); }

}  // namespace spool::cuda

namespace spool {

Backend* cuda_backend(std::string* why) {
  if (!cuda::usable(why)) return nullptr;
  static cuda::CudaBackend b;
  return &b;
}

Allocator* cuda_allocator(std::string* why) {
  if (!cuda::usable(why)) return nullptr;
  static auto* a = new cuda::CudaAllocator;  // never destroyed: storages may outlive statics
  return a;
}

}  // namespace spool
