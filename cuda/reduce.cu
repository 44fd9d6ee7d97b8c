// CUDA reductions (sum / max / min over any dims, argmax), softmax and log_softmax, forward and
// backward. Float sums accumulate in double and integer sums in int64, as on the CPU; every sum
// is a fixed tree for a fixed launch, so results repeat run to run.
#include <cmath>

#include "cuda/common.cuh"
#include "cuda/cuda_backend.h"
#include "engine/geometry.h"
#include "engine/reduce_op.h"

namespace spool::cuda {

namespace {

template <class A>
__device__ __forceinline__ A shfl_down(A v, int o) {
  return __shfl_down_sync(0xffffffffu, v, o);
}

// Kept dims (x offset, out offset) and reduced dims (x offset) of one output element.
struct ReduceGeo {
  Strides<2> kept;  // over the kept shape: [x, out]
  Strides<1> sub;   // over the reduced shape: [x]
  int64_t n_out, count;
};

// One block per output element: threads stride over the reduced elements, then a tree.
template <ReduceOp OP, class T>
__global__ void reduce_block_kernel(ReduceGeo g, const T* x, T* out) {
  using A = ReduceAcc<OP, T>;
  using R = Reducer<OP, A>;
  __shared__ A part[32];
  for (int64_t o = blockIdx.x; o < g.n_out; o += gridDim.x) {
    int64_t ko[2];
    g.kept.offsets(o, ko);
    A acc = R::init();
    for (int64_t r = threadIdx.x; r < g.count; r += blockDim.x) {
      int64_t so[1];
      g.sub.offsets(r, so);
      acc = R::combine(acc, A(x[ko[0] + so[0]]));
    }
    for (int off = 16; off > 0; off >>= 1) acc = R::combine(acc, shfl_down(acc, off));
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) part[warp] = acc;
    __syncthreads();
    if (warp == 0) {
      acc = lane < int(blockDim.x >> 5) ? part[lane] : R::init();
      for (int off = 16; off > 0; off >>= 1) acc = R::combine(acc, shfl_down(acc, off));
      if (lane == 0) out[ko[1]] = T(acc);
    }
    __syncthreads();
  }
}

// One thread per output element (short reductions).
template <ReduceOp OP, class T>
__global__ void reduce_thread_kernel(ReduceGeo g, const T* x, T* out) {
  using A = ReduceAcc<OP, T>;
  using R = Reducer<OP, A>;
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < g.n_out;
       o += int64_t(gridDim.x) * blockDim.x) {
    int64_t ko[2];
    g.kept.offsets(o, ko);
    A acc = R::init();
    for (int64_t r = 0; r < g.count; ++r) {
      int64_t so[1];
      g.sub.offsets(r, so);
      acc = R::combine(acc, A(x[ko[0] + so[0]]));
    }
    out[ko[1]] = T(acc);
  }
}

template <class T>
__global__ void argmax_kernel(Strides<2> outer, int64_t n_out, int64_t n, int64_t s, const T* x,
                              int64_t* out) {
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < n_out;
       o += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[2];
    outer.offsets(o, off);
    int64_t best = 0;
    T bv = x[off[0]];
    for (int64_t i = 1; i < n; ++i) {
      const T v = x[off[0] + i * s];
      if (v > bv) {
        bv = v;
        best = i;
      }
    }
    out[off[1]] = best;
  }
}

// Softmax of rows with unit stride: one block per row; the sum in double, as on the CPU.
template <class T>
__global__ void softmax_rows_kernel(int64_t rows, int64_t n, const T* x, T* out, bool log) {
  __shared__ T part[32];
  __shared__ double dpart[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* a = x + r * n;
    T* o = out + r * n;
    T mx = -INFINITY;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) mx = a[i] > mx ? a[i] : mx;
    mx = block_max(mx, part, T(-INFINITY));
    if (mx == T(-INFINITY)) mx = 0;  // an all -inf row stays finite
    double sum = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) sum += double(exp(a[i] - mx));
    sum = block_sum(sum, dpart);
    const T lse = mx + T(::log(sum)), inv = T(1.0 / sum);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
      o[i] = log ? a[i] - lse : exp(a[i] - mx) * inv;
  }
}

// Softmax along a strided dim: one thread per (outer, inner) line.
template <class T>
__global__ void softmax_lines_kernel(Around g, const T* x, T* out, bool log) {
  const int64_t lines = g.outer * g.inner;
  for (int64_t l = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; l < lines;
       l += int64_t(gridDim.x) * blockDim.x) {
    const int64_t base = (l / g.inner) * g.n * g.inner + l % g.inner, s = g.inner;
    T mx = -INFINITY;
    for (int64_t i = 0; i < g.n; ++i) mx = x[base + i * s] > mx ? x[base + i * s] : mx;
    if (mx == T(-INFINITY)) mx = 0;
    double sum = 0;
    for (int64_t i = 0; i < g.n; ++i) sum += double(exp(x[base + i * s] - mx));
    const T lse = mx + T(::log(sum)), inv = T(1.0 / sum);
    for (int64_t i = 0; i < g.n; ++i)
      out[base + i * s] = log ? x[base + i * s] - lse : exp(x[base + i * s] - mx) * inv;
  }
}

template <class T>
__global__ void softmax_backward_rows_kernel(int64_t rows, int64_t n, const T* y, const T* gy,
                                             T* gx, bool log) {
  __shared__ double part[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T *yr = y + r * n, *gr = gy + r * n;
    T* o = gx + r * n;
    double dot = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
      dot += log ? double(gr[i]) : double(gr[i]) * double(yr[i]);
    const T d = T(block_sum(dot, part));
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
      o[i] = log ? gr[i] - exp(yr[i]) * d : yr[i] * (gr[i] - d);
  }
}

template <class T>
__global__ void softmax_backward_lines_kernel(Around g, const T* y, const T* gy, T* gx, bool log) {
  const int64_t lines = g.outer * g.inner;
  for (int64_t l = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; l < lines;
       l += int64_t(gridDim.x) * blockDim.x) {
    const int64_t base = (l / g.inner) * g.n * g.inner + l % g.inner, s = g.inner;
    double dot = 0;
    for (int64_t i = 0; i < g.n; ++i)
      dot += log ? double(gy[base + i * s]) : double(gy[base + i * s]) * y[base + i * s];
    const T d = T(dot);
    for (int64_t i = 0; i < g.n; ++i) {
      const int64_t k = base + i * s;
      gx[k] = log ? gy[k] - exp(y[k]) * d : y[k] * (gy[k] - d);
    }
  }
}

}  // namespace

void CudaBackend::reduce(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims,
                         const Tensor& out) {
  if (x.numel() == 0) {  // an empty reduction: sums are 0; max/min were refused by the op
    fill(out, 0);
    return;
  }
  std::vector<bool> reduced(size_t(x.dim()), false);
  for (int64_t d : dims) reduced[size_t(d)] = true;
  Shape kept_size, kept_xs, kept_os, sub_size, sub_xs;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (reduced[size_t(d)]) {
      sub_size.push_back(x.shape()[size_t(d)]);
      sub_xs.push_back(x.strides()[size_t(d)]);
    } else {
      kept_size.push_back(x.shape()[size_t(d)]);
      kept_xs.push_back(x.strides()[size_t(d)]);
      kept_os.push_back(out.strides()[size_t(d)]);
    }
  }
  ReduceGeo g;
  g.kept = make_strides<2>(kept_size, {&kept_xs, &kept_os}, "reduce");
  g.sub = make_strides<1>(sub_size, {&sub_xs}, "reduce");
  g.n_out = numel(kept_size);
  g.count = numel(sub_size);
  dispatch_all(x.dtype(), "reduce", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.raw());
    T* po = static_cast<T*>(out.raw());
    auto launch = [&](auto red) {
      constexpr ReduceOp OP = decltype(red)::value;
      if (g.count >= 256) {
        const unsigned grid = unsigned(std::min<int64_t>(g.n_out, int64_t(sm_count()) * 64));
        SPOOL_LAUNCH((reduce_block_kernel<OP, T>), grid, kThreads, 0, stream(), g, px, po);
      } else {
        SPOOL_LAUNCH((reduce_thread_kernel<OP, T>), grid_for(g.n_out), kThreads, 0, stream(), g, px,
                     po);
      }
      SPOOL_CUDA_LAUNCHED("reduce");
    };
    switch (op) {
      case ReduceOp::sum:
        launch(std::integral_constant<ReduceOp, ReduceOp::sum>{});
        break;
      case ReduceOp::max:
        launch(std::integral_constant<ReduceOp, ReduceOp::max>{});
        break;
      case ReduceOp::min:
        launch(std::integral_constant<ReduceOp, ReduceOp::min>{});
        break;
    }
  });
}

void CudaBackend::argmax(const Tensor& x, int64_t dim, const Tensor& out) {
  Shape outer_size, xs, os;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d == dim) continue;
    outer_size.push_back(x.shape()[size_t(d)]);
    xs.push_back(x.strides()[size_t(d)]);
    os.push_back(out.strides()[size_t(d)]);
  }
  const int64_t n_out = numel(outer_size), n = x.shape()[size_t(dim)];
  if (n_out == 0 || n == 0) return;
  const auto g = make_strides<2>(outer_size, {&xs, &os}, "argmax");
  dispatch_all(x.dtype(), "argmax", [&](auto tag) {
    using T = decltype(tag);
    SPOOL_LAUNCH(argmax_kernel, grid_for(n_out), kThreads, 0, stream(), g, n_out, n,
                 x.strides()[size_t(dim)], static_cast<const T*>(x.raw()),
                 static_cast<int64_t*>(out.raw()));
    SPOOL_CUDA_LAUNCHED("argmax");
  });
}

void CudaBackend::softmax(const Tensor& x, int64_t dim, bool log, const Tensor& out) {
  const Around g(x.shape(), dim);
  if (x.numel() == 0) return;
  dispatch_float(x.dtype(), "softmax", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.raw());
    T* po = static_cast<T*>(out.raw());
    if (g.inner == 1)
      SPOOL_LAUNCH(softmax_rows_kernel, row_grid(g.outer), kThreads, 0, stream(), g.outer, g.n, px,
                   po, log);
    else
      SPOOL_LAUNCH(softmax_lines_kernel, grid_for(g.outer * g.inner), kThreads, 0, stream(), g, px,
                   po, log);
    SPOOL_CUDA_LAUNCHED("softmax");
  });
}

void CudaBackend::softmax_backward(const Tensor& y, const Tensor& gy, int64_t dim, bool log,
                                   const Tensor& gx) {
  const Around g(y.shape(), dim);
  if (y.numel() == 0) return;
  dispatch_float(y.dtype(), "softmax_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* py = static_cast<const T*>(y.raw());
    const T* pg = static_cast<const T*>(gy.raw());
    T* po = static_cast<T*>(gx.raw());
    if (g.inner == 1)
      SPOOL_LAUNCH(softmax_backward_rows_kernel, row_grid(g.outer), kThreads, 0, stream(), g.outer,
                   g.n, py, pg, po, log);
    else
      SPOOL_LAUNCH(softmax_backward_lines_kernel, grid_for(g.outer * g.inner), kThreads, 0,
                   stream(), g, py, pg, po, log);
    SPOOL_CUDA_LAUNCHED("softmax_backward");
  });
}

}  // namespace spool::cuda
