// Float math that the compiler can vectorise (libm calls stop vectorisation). Used by the f32
// paths of exp-bound kernels; f64 paths keep libm.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace spool::cpu {

// exp(x) for float with a relative error under 2e-7 (a degree-6 polynomial on
// [-ln2/2, ln2/2] scaled by 2^n). exp(-inf) = 0, exp(NaN) = NaN, overflow gives +inf.
inline float exp_f32(float x) {
  const float lo = -87.33654f, hi = 88.72283f;
  float xc = x < lo ? lo : (x > hi ? hi : x);
  float n = std::floor(xc * 1.44269504f + 0.5f);
  float r = xc - n * 0.693145752f - n * 1.42860677e-6f;
  float p =
      1.0f +
      r * (1.0f + r * (0.5f + r * (0.166666672f + r * (0.0416666679f + r * (0.00833333377f +
                                                                            r * 0.00138888892f)))));
  int32_t bits = (int32_t(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  float y = p * scale;
  y = x < lo ? 0.0f : y;
  y = x > hi ? INFINITY : y;
  return x != x ? x : y;
}

template <class T>
inline T exp_fast(T x) {
  if constexpr (sizeof(T) == 4)
    return exp_f32(x);
  else
    return std::exp(x);
}

// Sum of p[0..n) in double with eight independent accumulators, so the adds pipeline and
// vectorise (one accumulator is bound by the add latency). The order is fixed: deterministic.
template <class T>
inline double sum_contiguous(const T* p, int64_t n) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += double(p[i + k]);
  double s = 0;
  for (; i < n; ++i) s += double(p[i]);
  return s + ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// Sum of (p[i] - mu)^2 in double, pipelined like sum_contiguous.
template <class T>
inline double sum_sq_dev(const T* p, int64_t n, double mu) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) {
      const double d = double(p[i + k]) - mu;
      acc[k] += d * d;
    }
  double s = 0;
  for (; i < n; ++i) s += (double(p[i]) - mu) * (double(p[i]) - mu);
  return s + ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// Largest of p[0..n), n > 0 (NaN is not propagated; callers that care check separately).
template <class T>
inline T max_contiguous(const T* p, int64_t n) {
  T m[8];
  for (int k = 0; k < 8; ++k) m[k] = p[0];
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) m[k] = p[i + k] > m[k] ? p[i + k] : m[k];
  T r = m[0];
  for (int k = 1; k < 8; ++k) r = m[k] > r ? m[k] : r;
  for (; i < n; ++i) r = p[i] > r ? p[i] : r;
  return r;
}

}  // namespace spool::cpu
