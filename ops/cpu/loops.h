// Helpers shared by the CPU kernels: dtype dispatch and a parallel strided loop.
#pragma once
#include <omp.h>

#include <array>
#include <cstdint>

#include "engine/dispatch.h"
#include "engine/geometry.h"
#include "engine/shape.h"

namespace spool::cpu {

// Below this many elements a kernel runs on one thread: the fork costs more than it saves.
constexpr int64_t kParallelGrain = 32768;

// Iterates over `shape` for N operands with their own strides. Dimensions are coalesced where
// every operand allows it; then f(offsets, n, inner_strides) is called once per run of the
// innermost dimension, runs spread over threads. Offsets and strides are in elements.
template <size_t N, class F>
void for_each_run(const Shape& shape, const std::array<const Shape*, N>& strides, F&& f) {
  if (numel(shape) == 0) return;
  const Coalesced<N> c = coalesce<N>(shape, strides);
  Shape sz = c.size;
  std::array<Shape, N> st = c.stride;
  if (sz.empty()) {  // a single element
    sz.push_back(1);
    for (size_t k = 0; k < N; ++k) st[k].push_back(0);
  }
  const int64_t inner = sz.back();
  std::array<int64_t, N> inner_stride;
  for (size_t k = 0; k < N; ++k) inner_stride[k] = st[k].back();
  const int64_t outer_dims = int64_t(sz.size()) - 1;
  int64_t runs = 1;
  for (int64_t d = 0; d < outer_dims; ++d) runs *= sz[size_t(d)];
  const int64_t total = runs * inner;

  auto run = [&](int64_t r) {
    std::array<int64_t, N> off{};
    int64_t rem = r;
    for (int64_t d = outer_dims - 1; d >= 0; --d) {
      int64_t i = rem % sz[size_t(d)];
      rem /= sz[size_t(d)];
      for (size_t k = 0; k < N; ++k) off[k] += i * st[k][size_t(d)];
    }
    f(off, inner, inner_stride);
  };
  if (runs == 1 && total >= kParallelGrain) {
    // One long run: split it into equal pieces instead.
    int nt = omp_get_max_threads();
    int64_t chunk = (inner + nt - 1) / nt;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < nt; ++t) {
      int64_t lo = t * chunk, hi = std::min(inner, lo + chunk);
      if (lo >= hi) continue;
      std::array<int64_t, N> off;
      for (size_t k = 0; k < N; ++k) off[k] = lo * inner_stride[k];
      f(off, hi - lo, inner_stride);
    }
    return;
  }
#pragma omp parallel for schedule(static) if (total >= kParallelGrain)
  for (int64_t r = 0; r < runs; ++r) run(r);
}

// Splits [0, n) into one range per thread (fixed by the thread count, so sums that combine
// per-range partials in order are deterministic).
struct Ranges {
  int64_t n;
  int parts;
  int64_t begin(int p) const { return n * p / parts; }
  int64_t end(int p) const { return n * (p + 1) / parts; }
};
inline Ranges split_ranges(int64_t n, int64_t grain = kParallelGrain) {
  int parts = n >= grain ? omp_get_max_threads() : 1;
  return {n, parts};
}

}  // namespace spool::cpu
