// CUDA elementwise kernels: fill, copy (with dtype conversion), arange, random, unary, binary and
// where. Every kernel walks any strides through Strides<N>; contiguous f32 operands take a path
// with 16-byte vector loads.
#include <cmath>

#include "cuda/common.cuh"
#include "cuda/cuda_backend.h"
#include "engine/bf16.h"
#include "engine/philox.h"

namespace spool::cuda {

namespace {

// out[i] = f(x[i]).
template <class TO, class TX, class F>
__global__ void map1_kernel(Strides<2> g, int64_t n, TO* out, const TX* x, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[2];
    g.offsets(i, off);
    out[off[0]] = f(x[off[1]]);
  }
}

// Contiguous f32 -> f32: four elements per thread through float4 (both pointers 16-byte aligned).
template <class F>
__global__ void map1_vec4_kernel(int64_t n4, float4* out, const float4* x, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n4;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float4 v = x[i];
    out[i] = make_float4(f(v.x), f(v.y), f(v.z), f(v.w));
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

template <class TO, class TX, class F>
void map1(const Tensor& x, const Tensor& out, F f, const char* name) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const TX* px = static_cast<const TX*>(x.raw());
  TO* po = static_cast<TO*>(out.raw());
  if constexpr (std::is_same_v<TO, float> && std::is_same_v<TX, float>) {
    if (x.is_contiguous() && out.is_contiguous() && aligned16(px) && aligned16(po) && n >= 4) {
      const int64_t n4 = n / 4;
      SPOOL_LAUNCH(map1_vec4_kernel, grid_for(n4), kThreads, 0, stream(), n4,
                   reinterpret_cast<float4*>(po), reinterpret_cast<const float4*>(px), f);
      SPOOL_CUDA_LAUNCHED(name);
      if (n % 4 == 0) return;
      // The tail: the last n % 4 elements.
      Strides<2> g;
      g.linear = true;
      SPOOL_LAUNCH(map1_kernel, 1, 32, 0, stream(), g, n % 4, po + 4 * n4, px + 4 * n4, f);
      SPOOL_CUDA_LAUNCHED(name);
      return;
    }
  }
  const auto g = make_strides<2>(out.shape(), {&out.strides(), &x.strides()}, name);
  SPOOL_LAUNCH(map1_kernel, grid_for(n), kThreads, 0, stream(), g, n, po, px, f);
  SPOOL_CUDA_LAUNCHED(name);
}

// out[i] = f(a[i], b[i]).
template <class TO, class T, class F>
__global__ void map2_kernel(Strides<3> g, int64_t n, TO* out, const T* a, const T* b, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    g.offsets(i, off);
    out[off[0]] = f(a[off[1]], b[off[2]]);
  }
}

template <class F>
__global__ void map2_vec4_kernel(int64_t n4, float4* out, const float4* a, const float4* b, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n4;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float4 x = a[i], y = b[i];
    out[i] = make_float4(f(x.x, y.x), f(x.y, y.y), f(x.z, y.z), f(x.w, y.w));
  }
}

template <class TO, class T, class F>
void map2(const Tensor& a, const Tensor& b, const Tensor& out, F f, const char* name) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const T* pa = static_cast<const T*>(a.raw());
  const T* pb = static_cast<const T*>(b.raw());
  TO* po = static_cast<TO*>(out.raw());
  if constexpr (std::is_same_v<TO, float> && std::is_same_v<T, float>) {
    if (a.is_contiguous() && b.is_contiguous() && out.is_contiguous() && aligned16(pa) &&
        aligned16(pb) && aligned16(po) && n % 4 == 0) {
      SPOOL_LAUNCH(map2_vec4_kernel, grid_for(n / 4), kThreads, 0, stream(), n / 4,
                   reinterpret_cast<float4*>(po), reinterpret_cast<const float4*>(pa),
                   reinterpret_cast<const float4*>(pb), f);
      SPOOL_CUDA_LAUNCHED(name);
      return;
    }
  }
  const auto g = make_strides<3>(out.shape(), {&out.strides(), &a.strides(), &b.strides()}, name);
  SPOOL_LAUNCH(map2_kernel, grid_for(n), kThreads, 0, stream(), g, n, po, pa, pb, f);
  SPOOL_CUDA_LAUNCHED(name);
}

template <class T>
struct Constant {
  T v;
  __device__ T operator()(T) const { return v; }
};

template <class TO, class TF>
struct Convert {
  __device__ TO operator()(TF v) const { return TO(v); }
};
template <class TF>
struct ToBf16 {
  __device__ bf16 operator()(TF v) const { return to_bf16(float(v)); }
};
template <class TO>
struct FromBf16 {
  __device__ TO operator()(bf16 v) const { return TO(to_f32(v)); }
};
struct SameBf16 {
  __device__ bf16 operator()(bf16 v) const { return v; }
};

template <class T>
__device__ __forceinline__ T sigmoid(T x) {
  return T(1) / (T(1) + exp(-x));
}

constexpr double kSqrt2OverPi = 0.7978845608028654;

template <class T>
struct Unary {
  UnaryOp op;
  T a, b;
  __device__ T operator()(T v) const {
    switch (op) {
      case UnaryOp::neg:
        return -v;
      case UnaryOp::exp:
        return exp(v);
      case UnaryOp::log:
        return log(v);
      case UnaryOp::sqrt:
        return sqrt(v);
      case UnaryOp::abs:
        return fabs(v);
      case UnaryOp::sign:
        return T((v > 0) - (v < 0));
      case UnaryOp::tanh:
        return tanh(v);
      case UnaryOp::sigmoid:
        return sigmoid(v);
      case UnaryOp::log_sigmoid:
        return (v < 0 ? v : T(0)) - log1p(exp(-fabs(v)));
      case UnaryOp::relu:
        return v > 0 ? v : T(0);
      case UnaryOp::gelu:
        return T(0.5) * v * (T(1) + erf(v * T(M_SQRT1_2)));
      case UnaryOp::gelu_grad: {
        const T cdf = T(0.5) * (T(1) + erf(v * T(M_SQRT1_2)));
        return cdf + v * exp(T(-0.5) * v * v) * T(0.3989422804014327);
      }
      case UnaryOp::gelu_tanh: {  // x * sigmoid(2u), as on the CPU
        const T u = T(kSqrt2OverPi) * (v + T(0.044715) * v * v * v);
        return v * sigmoid(T(2) * u);
      }
      case UnaryOp::gelu_tanh_grad: {
        const T u = T(kSqrt2OverPi) * (v + T(0.044715) * v * v * v);
        const T s = sigmoid(T(2) * u);
        const T du = T(kSqrt2OverPi) * (T(1) + T(3 * 0.044715) * v * v);
        return s + T(2) * v * s * (T(1) - s) * du;
      }
      case UnaryOp::pow_scalar:
        return a == T(2) ? v * v : pow(v, a);
      case UnaryOp::clamp:
        return v < a ? a : (v > b ? b : v);
      case UnaryOp::affine:
        return a * v + b;
    }
    return v;
  }
};

template <class T>
struct Arith {
  BinaryOp op;
  __device__ T operator()(T x, T y) const {
    switch (op) {
      case BinaryOp::add:
        return T(x + y);
      case BinaryOp::sub:
        return T(x - y);
      case BinaryOp::mul:
        return T(x * y);
      case BinaryOp::div:
        return y == T(0) && !std::is_floating_point_v<T> ? T(0) : T(x / y);
      case BinaryOp::pow:
        return T(pow(double(x), double(y)));
      case BinaryOp::maximum:
        return x > y ? x : y;
      case BinaryOp::minimum:
        return x < y ? x : y;
      case BinaryOp::relu_grad:
        return y > T(0) ? x : T(0);
      default:
        return T(0);
    }
  }
};

template <class T>
struct Compare {
  BinaryOp op;
  __device__ uint8_t operator()(T x, T y) const {
    switch (op) {
      case BinaryOp::eq:
        return x == y;
      case BinaryOp::ne:
        return x != y;
      case BinaryOp::lt:
        return x < y;
      case BinaryOp::le:
        return x <= y;
      case BinaryOp::gt:
        return x > y;
      case BinaryOp::ge:
        return x >= y;
      default:
        return 0;
    }
  }
};

template <class T>
__global__ void where_kernel(Strides<4> g, int64_t n, T* out, const uint8_t* c, const T* a,
                             const T* b) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[4];
    g.offsets(i, off);
    out[off[0]] = c[off[1]] ? a[off[2]] : b[off[3]];
  }
}

template <class T>
__global__ void arange_kernel(int64_t n, T* out, double start, double step) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = T(start + double(i) * step);
}

// One thread per Philox call (four elements), as the CPU's uniform_block / normal_block.
template <class T, bool kNormal>
__global__ void random_kernel(int64_t n, T* out, uint64_t seed, uint64_t offset, double a,
                              double b) {
  const int64_t blocks = (n + 3) / 4;
  for (int64_t blk = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; blk < blocks;
       blk += int64_t(gridDim.x) * blockDim.x) {
    const philox::Words w = philox::draw(offset + uint64_t(blk), seed);
    double v[4];
    if (kNormal) {
      for (int pair = 0; pair < 2; ++pair) {
        const double u1 = philox::open_unit(w.w[2 * pair]),
                     u2 = philox::open_unit(w.w[2 * pair + 1]);
        const double r = sqrt(-2.0 * log(u1)), theta = 2.0 * M_PI * u2;
        v[2 * pair] = a + b * r * cos(theta);
        v[2 * pair + 1] = a + b * r * sin(theta);
      }
    } else {
      for (int k = 0; k < 4; ++k) v[k] = a + (b - a) * philox::unit(w.w[k]);
    }
    for (int k = 0; k < 4 && 4 * blk + k < n; ++k) out[4 * blk + k] = T(v[k]);
  }
}

}  // namespace

void CudaBackend::fill(const Tensor& out, double value) {
  dispatch_all(out.dtype(), "fill", [&](auto tag) {
    using T = decltype(tag);
    map1<T, T>(out, out, Constant<T>{T(value)}, "fill");
  });
}

void CudaBackend::copy(const Tensor& src, const Tensor& out) {
  // bf16 converts through f32 (exact one way, rounded to nearest even the other), with the same
  // engine/bf16.h arithmetic as the CPU.
  if (out.dtype() == DType::bf16 && src.dtype() == DType::bf16)
    return map1<bf16, bf16>(src, out, SameBf16{}, "copy");
  if (out.dtype() == DType::bf16)
    return dispatch_all(src.dtype(), "copy", [&](auto from) {
      using TF = decltype(from);
      map1<bf16, TF>(src, out, ToBf16<TF>{}, "copy");
    });
  if (src.dtype() == DType::bf16)
    return dispatch_all(out.dtype(), "copy", [&](auto to) {
      using TO = decltype(to);
      map1<TO, bf16>(src, out, FromBf16<TO>{}, "copy");
    });
  dispatch_all(out.dtype(), "copy", [&](auto to) {
    using TO = decltype(to);
    dispatch_all(src.dtype(), "copy", [&](auto from) {
      using TF = decltype(from);
      map1<TO, TF>(src, out, Convert<TO, TF>{}, "copy");
    });
  });
}

void CudaBackend::arange(const Tensor& out, double start, double step) {
  dispatch_all(out.dtype(), "arange", [&](auto tag) {
    using T = decltype(tag);
    const int64_t n = out.numel();
    if (n == 0) return;
    SPOOL_LAUNCH(arange_kernel, grid_for(n), kThreads, 0, stream(), n, static_cast<T*>(out.raw()),
                 start, step);
    SPOOL_CUDA_LAUNCHED("arange");
  });
}

void CudaBackend::uniform(const Tensor& out, RngState state, double lo, double hi) {
  dispatch_float(out.dtype(), "uniform", [&](auto tag) {
    using T = decltype(tag);
    const int64_t n = out.numel();
    if (n == 0) return;
    SPOOL_LAUNCH((random_kernel<T, false>), grid_for((n + 3) / 4), kThreads, 0, stream(), n,
                 static_cast<T*>(out.raw()), state.seed, state.offset, lo, hi);
    SPOOL_CUDA_LAUNCHED("uniform");
  });
}

void CudaBackend::normal(const Tensor& out, RngState state, double mean, double std) {
  dispatch_float(out.dtype(), "normal", [&](auto tag) {
    using T = decltype(tag);
    const int64_t n = out.numel();
    if (n == 0) return;
    SPOOL_LAUNCH((random_kernel<T, true>), grid_for((n + 3) / 4), kThreads, 0, stream(), n,
                 static_cast<T*>(out.raw()), state.seed, state.offset, mean, std);
    SPOOL_CUDA_LAUNCHED("normal");
  });
}

void CudaBackend::unary(UnaryOp op, const Tensor& x, const Tensor& out, double a, double b) {
  dispatch_float(x.dtype(), "unary", [&](auto tag) {
    using T = decltype(tag);
    map1<T, T>(x, out, Unary<T>{op, T(a), T(b)}, "unary");
  });
}

void CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  dispatch_all(a.dtype(), "binary", [&](auto tag) {
    using T = decltype(tag);
    if (is_comparison(op))
      map2<uint8_t, T>(a, b, out, Compare<T>{op}, "binary");
    else
      map2<T, T>(a, b, out, Arith<T>{op}, "binary");
  });
}

void CudaBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  dispatch_all(a.dtype(), "where", [&](auto tag) {
    using T = decltype(tag);
    const int64_t n = out.numel();
    if (n == 0) return;
    const auto g = make_strides<4>(
        out.shape(), {&out.strides(), &cond.strides(), &a.strides(), &b.strides()}, "where");
    SPOOL_LAUNCH(where_kernel, grid_for(n), kThreads, 0, stream(), g, n, static_cast<T*>(out.raw()),
                 static_cast<const uint8_t*>(cond.raw()), static_cast<const T*>(a.raw()),
                 static_cast<const T*>(b.raw()));
    SPOOL_CUDA_LAUNCHED("where");
  });
}

}  // namespace spool::cuda
