// Inputs for gradient checks: small f64 leaves that require grad, with values chosen away from
// the points where an op's derivative jumps, and leaves that are non-contiguous views.
#pragma once
#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "ops/ops.h"

namespace spool::test {

// t detached and marked as a leaf that requires grad (keeps t's strides).
inline Tensor as_leaf(const Tensor& t) {
  Tensor x = t.detach();
  x.requires_grad_();
  return x;
}

inline Tensor leaf(const std::vector<double>& values, const Shape& shape) {
  return as_leaf(from_vector<double>(values, shape));
}

// Uniform in [lo, hi).
inline Tensor uniform_leaf(const Shape& shape, uint64_t seed, double lo = -1, double hi = 1) {
  Generator g(seed);
  return as_leaf(rand(shape, DType::f64, &g, lo, hi));
}

inline Tensor normal_leaf(const Shape& shape, uint64_t seed) {
  Generator g(seed);
  return as_leaf(randn(shape, DType::f64, &g));
}

// Magnitudes in [margin, 1 + margin) with random signs: for ops with a kink at 0 (relu, abs).
inline Tensor away_from_zero_leaf(const Shape& shape, uint64_t seed, double margin = 0.2) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> mag(margin, 1 + margin);
  std::vector<double> v(size_t(numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = (rng() & 1 ? 1 : -1) * mag(rng);
  return leaf(v, shape);
}

// Distinct values 0.1 apart in shuffled order: for max and min, whose gradient jumps at ties.
inline Tensor distinct_leaf(const Shape& shape, uint64_t seed) {
  std::vector<double> v(size_t(numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.1 * double(i) - 1.0;
  std::mt19937_64 rng(seed);
  std::shuffle(v.begin(), v.end(), rng);
  return leaf(v, shape);
}

// A [rows, cols] leaf that is the transpose of a contiguous [cols, rows] tensor.
inline Tensor transposed_leaf(int64_t rows, int64_t cols, uint64_t seed) {
  Generator g(seed);
  return as_leaf(permute(randn({cols, rows}, DType::f64, &g), {1, 0}));
}

// A leaf of `shape` that takes every second element of its last dim from a larger tensor.
inline Tensor strided_leaf(Shape shape, uint64_t seed) {
  Shape big = shape;
  big.back() *= 2;
  Generator g(seed);
  return as_leaf(slice(randn(big, DType::f64, &g), -1, 0, big.back(), 2));
}

inline Tensor indices(const std::vector<int64_t>& values, const Shape& shape) {
  return from_vector<int64_t>(values, shape);
}

}  // namespace spool::test
