// CPU elementwise kernels: fill, copy, arange, random, unary, binary, where.
#include <cmath>

#include "engine/bf16.h"
#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"
#include "ops/cpu/vec_math.h"

namespace spool {

Backend& cpu_backend() {
  static cpu::CpuBackend b;
  return b;
}

namespace cpu {

namespace {

// out[i] = f(x[i]) over any strides.
template <class TO, class TX, class F>
void map1(const Tensor& x, const Tensor& out, F f) {
  const TX* px = static_cast<const TX*>(x.raw());
  TO* po = static_cast<TO*>(out.raw());
  for_each_run<2>(
      out.shape(), {&out.strides(), &x.strides()},
      [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& s) {
        TO* o = po + off[0];
        const TX* a = px + off[1];
        if (s[0] == 1 && s[1] == 1) {
          for (int64_t i = 0; i < n; ++i) o[i] = f(a[i]);
        } else {
          for (int64_t i = 0; i < n; ++i) o[i * s[0]] = f(a[i * s[1]]);
        }
      });
}

// out[i] = f(a[i], b[i]); the scalar-b case (stride 0) gets its own vectorisable loop.
template <class TO, class T, class F>
void map2(const Tensor& a, const Tensor& b, const Tensor& out, F f) {
  const T* pa = static_cast<const T*>(a.raw());
  const T* pb = static_cast<const T*>(b.raw());
  TO* po = static_cast<TO*>(out.raw());
  for_each_run<3>(
      out.shape(), {&out.strides(), &a.strides(), &b.strides()},
      [&](const std::array<int64_t, 3>& off, int64_t n, const std::array<int64_t, 3>& s) {
        TO* o = po + off[0];
        const T* x = pa + off[1];
        const T* y = pb + off[2];
        if (s[0] == 1 && s[1] == 1 && s[2] == 1) {
          for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]);
        } else if (s[0] == 1 && s[1] == 1 && s[2] == 0) {
          const T yv = *y;
          for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], yv);
        } else {
          for (int64_t i = 0; i < n; ++i) o[i * s[0]] = f(x[i * s[1]], y[i * s[2]]);
        }
      });
}

template <class T>
T gelu_exact(T x) {
  return T(0.5) * x * (T(1) + std::erf(x * T(M_SQRT1_2)));
}
template <class T>
T gelu_exact_grad(T x) {
  T cdf = T(0.5) * (T(1) + std::erf(x * T(M_SQRT1_2)));
  T pdf = std::exp(T(-0.5) * x * x) * T(0.3989422804014327);  // 1/sqrt(2 pi)
  return cdf + x * pdf;
}
constexpr double kSqrt2OverPi = 0.7978845608028654;
// 0.5 x (1 + tanh(u)) = x * sigmoid(2u): the same value without the cancellation of 1 + tanh(u)
// for very negative x, and through an exp that vectorises.
template <class T>
T gelu_tanh(T x) {
  T u = T(kSqrt2OverPi) * (x + T(0.044715) * x * x * x);
  return x / (T(1) + exp_fast(T(-2) * u));
}
template <class T>
T gelu_tanh_grad(T x) {
  // With s = sigmoid(2u): gelu = x s, and d/dx = s + 2 x s (1 - s) du/dx.
  T u = T(kSqrt2OverPi) * (x + T(0.044715) * x * x * x);
  T s = T(1) / (T(1) + exp_fast(T(-2) * u));
  T du = T(kSqrt2OverPi) * (T(1) + T(3 * 0.044715) * x * x);
  return s + T(2) * x * s * (T(1) - s) * du;
}

}  // namespace

void CpuBackend::fill(const Tensor& out, double value) {
  dispatch_all(out.dtype(), "fill", [&](auto tag) {
    using T = decltype(tag);
    const T v = T(value);
    map1<T, T>(out, out, [v](T) { return v; });
  });
}

void CpuBackend::copy(const Tensor& src, const Tensor& out) {
  // bf16 converts through f32 (exact one way, rounded to nearest even the other).
  if (out.dtype() == DType::bf16 && src.dtype() == DType::bf16)
    return map1<bf16, bf16>(src, out, [](bf16 v) { return v; });
  if (out.dtype() == DType::bf16)
    return dispatch_all(src.dtype(), "copy", [&](auto from) {
      using TF = decltype(from);
      map1<bf16, TF>(src, out, [](TF v) { return to_bf16(float(v)); });
    });
  if (src.dtype() == DType::bf16)
    return dispatch_all(out.dtype(), "copy", [&](auto to) {
      using TO = decltype(to);
      map1<TO, bf16>(src, out, [](bf16 v) { return TO(to_f32(v)); });
    });
  dispatch_all(out.dtype(), "copy", [&](auto to) {
    using TO = decltype(to);
    dispatch_all(src.dtype(), "copy", [&](auto from) {
      using TF = decltype(from);
      map1<TO, TF>(src, out, [](TF v) { return TO(v); });
    });
  });
}

void CpuBackend::arange(const Tensor& out, double start, double step) {
  dispatch_all(out.dtype(), "arange", [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(out.raw());
    for (int64_t i = 0; i < out.numel(); ++i) p[i] = T(start + double(i) * step);
  });
}

void CpuBackend::uniform(const Tensor& out, RngState state, double lo, double hi) {
  dispatch_float(out.dtype(), "uniform", [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(out.raw());
    const int64_t n = out.numel(), blocks = (n + 3) / 4;
#pragma omp parallel for schedule(static) if (n >= kParallelGrain / 8)
    for (int64_t b = 0; b < blocks; ++b) {
      auto u = uniform_block(state, b);
      for (int64_t k = 0; k < 4 && 4 * b + k < n; ++k)
        p[4 * b + k] = T(lo + (hi - lo) * u[size_t(k)]);
    }
  });
}

void CpuBackend::normal(const Tensor& out, RngState state, double mean, double std) {
  dispatch_float(out.dtype(), "normal", [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(out.raw());
    const int64_t n = out.numel(), blocks = (n + 3) / 4;
#pragma omp parallel for schedule(static) if (n >= kParallelGrain / 8)
    for (int64_t b = 0; b < blocks; ++b) {
      auto z = normal_block(state, b);
      for (int64_t k = 0; k < 4 && 4 * b + k < n; ++k) p[4 * b + k] = T(mean + std * z[size_t(k)]);
    }
  });
}

void CpuBackend::unary(UnaryOp op, const Tensor& x, const Tensor& out, double a, double b) {
  dispatch_float(x.dtype(), "unary", [&](auto tag) {
    using T = decltype(tag);
    const T ta = T(a), tb = T(b);
    switch (op) {
      case UnaryOp::neg:
        map1<T, T>(x, out, [](T v) { return -v; });
        break;
      case UnaryOp::exp:
        map1<T, T>(x, out, [](T v) { return exp_fast(v); });
        break;
      case UnaryOp::log:
        map1<T, T>(x, out, [](T v) { return std::log(v); });
        break;
      case UnaryOp::sqrt:
        map1<T, T>(x, out, [](T v) { return std::sqrt(v); });
        break;
      case UnaryOp::abs:
        map1<T, T>(x, out, [](T v) { return std::abs(v); });
        break;
      case UnaryOp::sign:
        map1<T, T>(x, out, [](T v) { return T((v > 0) - (v < 0)); });
        break;
      case UnaryOp::tanh:
        map1<T, T>(x, out, [](T v) { return std::tanh(v); });
        break;
      case UnaryOp::sigmoid:
        map1<T, T>(x, out, [](T v) { return T(1) / (T(1) + exp_fast(-v)); });
        break;
      case UnaryOp::log_sigmoid:  // exact for large |x|: no exp overflow, no log of 0
        map1<T, T>(x, out,
                   [](T v) { return (v < 0 ? v : T(0)) - std::log1p(std::exp(-std::abs(v))); });
        break;
      case UnaryOp::relu:
        map1<T, T>(x, out, [](T v) { return v > 0 ? v : T(0); });
        break;
      case UnaryOp::gelu:
        map1<T, T>(x, out, [](T v) { return gelu_exact(v); });
        break;
      case UnaryOp::gelu_tanh:
        map1<T, T>(x, out, [](T v) { return gelu_tanh(v); });
        break;
      case UnaryOp::gelu_grad:
        map1<T, T>(x, out, [](T v) { return gelu_exact_grad(v); });
        break;
      case UnaryOp::gelu_tanh_grad:
        map1<T, T>(x, out, [](T v) { return gelu_tanh_grad(v); });
        break;
      case UnaryOp::pow_scalar:
        if (a == 2)
          map1<T, T>(x, out, [](T v) { return v * v; });
        else
          map1<T, T>(x, out, [ta](T v) { return std::pow(v, ta); });
        break;
      case UnaryOp::clamp:
        map1<T, T>(x, out, [ta, tb](T v) { return v < ta ? ta : (v > tb ? tb : v); });
        break;
      case UnaryOp::affine:
        map1<T, T>(x, out, [ta, tb](T v) { return ta * v + tb; });
        break;
    }
  });
}

void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  dispatch_all(a.dtype(), "binary", [&](auto tag) {
    using T = decltype(tag);
    using U = uint8_t;
    switch (op) {
      case BinaryOp::add:
        map2<T, T>(a, b, out, [](T x, T y) { return T(x + y); });
        break;
      case BinaryOp::sub:
        map2<T, T>(a, b, out, [](T x, T y) { return T(x - y); });
        break;
      case BinaryOp::mul:
        map2<T, T>(a, b, out, [](T x, T y) { return T(x * y); });
        break;
      case BinaryOp::div:
        map2<T, T>(a, b, out, [](T x, T y) { return T(x / y); });
        break;
      case BinaryOp::pow:
        map2<T, T>(a, b, out, [](T x, T y) { return T(std::pow(x, y)); });
        break;
      case BinaryOp::maximum:
        map2<T, T>(a, b, out, [](T x, T y) { return x > y ? x : y; });
        break;
      case BinaryOp::minimum:
        map2<T, T>(a, b, out, [](T x, T y) { return x < y ? x : y; });
        break;
      case BinaryOp::relu_grad:
        map2<T, T>(a, b, out, [](T g, T y) { return y > T(0) ? g : T(0); });
        break;
      case BinaryOp::eq:
        map2<U, T>(a, b, out, [](T x, T y) { return U(x == y); });
        break;
      case BinaryOp::ne:
        map2<U, T>(a, b, out, [](T x, T y) { return U(x != y); });
        break;
      case BinaryOp::lt:
        map2<U, T>(a, b, out, [](T x, T y) { return U(x < y); });
        break;
      case BinaryOp::le:
        map2<U, T>(a, b, out, [](T x, T y) { return U(x <= y); });
        break;
      case BinaryOp::gt:
        map2<U, T>(a, b, out, [](T x, T y) { return U(x > y); });
        break;
      case BinaryOp::ge:
        map2<U, T>(a, b, out, [](T x, T y) { return U(x >= y); });
        break;
    }
  });
}

void CpuBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  dispatch_all(a.dtype(), "where", [&](auto tag) {
    using T = decltype(tag);
    const uint8_t* pc = static_cast<const uint8_t*>(cond.raw());
    const T* pa = static_cast<const T*>(a.raw());
    const T* pb = static_cast<const T*>(b.raw());
    T* po = static_cast<T*>(out.raw());
    for_each_run<4>(
        out.shape(), {&out.strides(), &cond.strides(), &a.strides(), &b.strides()},
        [&](const std::array<int64_t, 4>& off, int64_t n, const std::array<int64_t, 4>& s) {
          for (int64_t i = 0; i < n; ++i)
            po[off[0] + i * s[0]] =
                pc[off[1] + i * s[1]] ? pa[off[2] + i * s[2]] : pb[off[3] + i * s[3]];
        });
  });
}

}  // namespace cpu
}  // namespace spool
