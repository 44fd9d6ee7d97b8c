// CUDA indexing kernels: index_select / index_add (embedding forward and backward), gather /
// scatter_add. Accumulating kernels give each thread whole output lines and walk the indices in
// order, so repeated indices add up in the CPU's order, without atomics.
#include "cuda/common.cuh"
#include "cuda/cuda_backend.h"
#include "engine/geometry.h"

namespace spool::cuda {

namespace {

template <class T>
__global__ void index_select_kernel(int64_t outer, int64_t n, int64_t inner, int64_t k,
                                    const int64_t* idx, const T* x, T* out) {
  const int64_t total = outer * k * inner;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = e % inner, j = (e / inner) % k, o = e / (inner * k);
    out[e] = x[(o * n + idx[j]) * inner + c];
  }
}

// One thread per (outer, column): adds src rows in index order.
template <class T>
__global__ void index_add_kernel(int64_t outer, int64_t n, int64_t inner, int64_t k,
                                 const int64_t* idx, const T* src, T* out) {
  const int64_t total = outer * inner;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = e % inner, o = e / inner;
    for (int64_t j = 0; j < k; ++j) {
      T& dst = out[(o * n + idx[j]) * inner + c];
      dst = T(dst + src[(o * k + j) * inner + c]);
    }
  }
}

// Lines of idx along dim: g maps a line number to the line's start in [x or out, idx, other].
template <class T>
__global__ void gather_kernel(Strides<3> g, int64_t lines, int64_t len, int64_t xs, int64_t is,
                              int64_t os, const T* x, const int64_t* idx, T* out) {
  const int64_t total = lines * len;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t l = e / len, i = e % len;
    int64_t off[3];
    g.offsets(l, off);
    out[off[2] + i * os] = x[off[0] + idx[off[1] + i * is] * xs];
  }
}

template <class T>
__global__ void scatter_add_kernel(Strides<3> g, int64_t lines, int64_t len, int64_t os, int64_t is,
                                   int64_t ss, T* out, const int64_t* idx, const T* src) {
  for (int64_t l = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; l < lines;
       l += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    g.offsets(l, off);
    for (int64_t i = 0; i < len; ++i) {
      T& dst = out[off[0] + idx[off[1] + i * is] * os];
      dst = T(dst + src[off[2] + i * ss]);
    }
  }
}

// The shape of idx without dim, and the three operands' strides over it.
Strides<3> lines_of(const Tensor& idx, int64_t dim, const Tensor& a, const Tensor& b,
                    int64_t& lines) {
  Shape size, sa, si, sb;
  for (int64_t d = 0; d < idx.dim(); ++d) {
    if (d == dim) continue;
    size.push_back(idx.shape()[size_t(d)]);
    sa.push_back(a.strides()[size_t(d)]);
    si.push_back(idx.strides()[size_t(d)]);
    sb.push_back(b.strides()[size_t(d)]);
  }
  lines = numel(size);
  return make_strides<3>(size, {&sa, &si, &sb}, "gather/scatter");
}

}  // namespace

void CudaBackend::index_select(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& out) {
  const Around g(x.shape(), dim);
  const int64_t outer = g.outer, n = g.n, inner = g.inner;
  const int64_t k = idx.numel(), total = outer * k * inner;
  if (total == 0) return;
  dispatch_all(x.dtype(), "index_select", [&](auto tag) {
    using T = decltype(tag);
    SPOOL_LAUNCH(index_select_kernel, grid_for(total), kThreads, 0, stream(), outer, n, inner, k,
                 static_cast<const int64_t*>(idx.raw()), static_cast<const T*>(x.raw()),
                 static_cast<T*>(out.raw()));
    SPOOL_CUDA_LAUNCHED("index_select");
  });
}

void CudaBackend::index_add(const Tensor& out, int64_t dim, const Tensor& idx, const Tensor& src) {
  const Around g(out.shape(), dim);
  const int64_t outer = g.outer, n = g.n, inner = g.inner;
  const int64_t k = idx.numel();
  if (outer * inner == 0 || k == 0) return;
  dispatch_all(out.dtype(), "index_add", [&](auto tag) {
    using T = decltype(tag);
    SPOOL_LAUNCH(index_add_kernel, grid_for(outer * inner), kThreads, 0, stream(), outer, n, inner,
                 k, static_cast<const int64_t*>(idx.raw()), static_cast<const T*>(src.raw()),
                 static_cast<T*>(out.raw()));
    SPOOL_CUDA_LAUNCHED("index_add");
  });
}

void CudaBackend::gather(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& out) {
  int64_t lines = 0;
  const Strides<3> g = lines_of(idx, dim, x, out, lines);
  const int64_t len = idx.shape()[size_t(dim)];
  if (lines * len == 0) return;
  dispatch_all(x.dtype(), "gather", [&](auto tag) {
    using T = decltype(tag);
    SPOOL_LAUNCH(gather_kernel, grid_for(lines * len), kThreads, 0, stream(), g, lines, len,
                 x.strides()[size_t(dim)], idx.strides()[size_t(dim)], out.strides()[size_t(dim)],
                 static_cast<const T*>(x.raw()), static_cast<const int64_t*>(idx.raw()),
                 static_cast<T*>(out.raw()));
    SPOOL_CUDA_LAUNCHED("gather");
  });
}

void CudaBackend::scatter_add(const Tensor& out, int64_t dim, const Tensor& idx,
                              const Tensor& src) {
  int64_t lines = 0;
  const Strides<3> g = lines_of(idx, dim, out, src, lines);
  const int64_t len = idx.shape()[size_t(dim)];
  if (lines * len == 0) return;
  dispatch_all(out.dtype(), "scatter_add", [&](auto tag) {
    using T = decltype(tag);
    SPOOL_LAUNCH(scatter_add_kernel, grid_for(lines), kThreads, 0, stream(), g, lines, len,
                 out.strides()[size_t(dim)], idx.strides()[size_t(dim)], src.strides()[size_t(dim)],
                 static_cast<T*>(out.raw()), static_cast<const int64_t*>(idx.raw()),
                 static_cast<const T*>(src.raw()));
    SPOOL_CUDA_LAUNCHED("scatter_add");
  });
}

}  // namespace spool::cuda
