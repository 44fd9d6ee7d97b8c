// CPU indexing kernels: index_select / index_add (embedding), gather / scatter_add.
// Indices were range-checked by the op.
#include <algorithm>

#include "engine/geometry.h"
#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"

namespace spool::cpu {

namespace {
// Calls f(offset_in_a, offset_in_b, offset_in_idx_out, ...) for every position of idx, with the
// dim coordinate looped innermost and serially so scatters into one output line never race.
template <class F>
void for_each_index_line(const Tensor& idx, int64_t dim, F&& f) {
  Shape outer_size;
  std::vector<int64_t> outer_dims;
  for (int64_t d = 0; d < idx.dim(); ++d)
    if (d != dim) {
      outer_size.push_back(idx.shape()[d]);
      outer_dims.push_back(d);
    }
  const int64_t lines = numel(outer_size), len = idx.shape()[dim];
#pragma omp parallel for schedule(static) if (lines * len >= kParallelGrain)
  for (int64_t l = 0; l < lines; ++l) {
    Shape coord(size_t(idx.dim()), 0);
    int64_t rem = l;
    for (int64_t k = int64_t(outer_size.size()) - 1; k >= 0; --k) {
      coord[size_t(outer_dims[size_t(k)])] = rem % outer_size[size_t(k)];
      rem /= outer_size[size_t(k)];
    }
    f(coord, len);
  }
}

int64_t offset_of(const Tensor& t, const Shape& coord, int64_t skip_dim) {
  int64_t off = 0;
  for (int64_t d = 0; d < t.dim(); ++d)
    if (d != skip_dim) off += coord[size_t(d)] * t.strides()[d];
  return off;
}
}  // namespace

void CpuBackend::index_select(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& out) {
  const Around g(x.shape(), dim);
  const int64_t outer = g.outer, n = g.n, inner = g.inner;
  const int64_t k = idx.numel();
  const int64_t* pi = static_cast<const int64_t*>(idx.raw());
  dispatch_all(x.dtype(), "index_select", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.raw());
    T* po = static_cast<T*>(out.raw());
#pragma omp parallel for collapse(2) schedule(static) if (outer * k * inner >= kParallelGrain)
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < k; ++j)
        std::copy_n(px + (o * n + pi[j]) * inner, inner, po + (o * k + j) * inner);
  });
}

void CpuBackend::index_add(const Tensor& out, int64_t dim, const Tensor& idx, const Tensor& src) {
  const Around g(out.shape(), dim);
  const int64_t outer = g.outer, n = g.n, inner = g.inner;
  const int64_t k = idx.numel();
  const int64_t* pi = static_cast<const int64_t*>(idx.raw());
  // Parallel over (outer, column blocks): each thread owns whole output columns, so repeated
  // indices accumulate in index order without races.
  constexpr int64_t block = 64;
  const int64_t blocks = (inner + block - 1) / block;
  dispatch_all(out.dtype(), "index_add", [&](auto tag) {
    using T = decltype(tag);
    const T* ps = static_cast<const T*>(src.raw());
    T* po = static_cast<T*>(out.raw());
#pragma omp parallel for collapse(2) schedule(static) if (outer * k * inner >= kParallelGrain)
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t bl = 0; bl < blocks; ++bl) {
        const int64_t lo = bl * block, hi = std::min(inner, lo + block);
        for (int64_t j = 0; j < k; ++j) {
          T* dst = po + (o * n + pi[j]) * inner;
          const T* s = ps + (o * k + j) * inner;
          for (int64_t c = lo; c < hi; ++c) dst[c] = T(dst[c] + s[c]);
        }
      }
  });
}

void CpuBackend::gather(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& out) {
  const int64_t* pi = static_cast<const int64_t*>(idx.raw());
  dispatch_all(x.dtype(), "gather", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.raw());
    T* po = static_cast<T*>(out.raw());
    const int64_t xs = x.strides()[dim], is = idx.strides()[dim], os = out.strides()[dim];
    for_each_index_line(idx, dim, [&](const Shape& c, int64_t len) {
      const int64_t xo = offset_of(x, c, dim), io = offset_of(idx, c, dim),
                    oo = offset_of(out, c, dim);
      for (int64_t i = 0; i < len; ++i) po[oo + i * os] = px[xo + pi[io + i * is] * xs];
    });
  });
}

void CpuBackend::scatter_add(const Tensor& out, int64_t dim, const Tensor& idx, const Tensor& src) {
  const int64_t* pi = static_cast<const int64_t*>(idx.raw());
  dispatch_all(out.dtype(), "scatter_add", [&](auto tag) {
    using T = decltype(tag);
    const T* ps = static_cast<const T*>(src.raw());
    T* po = static_cast<T*>(out.raw());
    const int64_t os = out.strides()[dim], is = idx.strides()[dim], ss = src.strides()[dim];
    for_each_index_line(idx, dim, [&](const Shape& c, int64_t len) {
      const int64_t oo = offset_of(out, c, dim), io = offset_of(idx, c, dim),
                    so = offset_of(src, c, dim);
      for (int64_t i = 0; i < len; ++i) {
        T& dst = po[oo + pi[io + i * is] * os];
        dst = T(dst + ps[so + i * ss]);
      }
    });
  });
}

}  // namespace spool::cpu
