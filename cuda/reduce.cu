// CUDA reductions (sum / max / min over any dims, argmax), softmax and log_softmax, layer norm and
// batch norm, forward and backward. Float sums accumulate in double and integer sums in int64, as
// on the CPU; every sum is a fixed tree for a fixed launch, so results repeat run to run.
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

// Layer norm: one block per row; statistics in double.
template <class T>
__global__ void layer_norm_kernel(int64_t rows, int64_t d, const T* x, const T* w, const T* b,
                                  double eps, T* y, T* mean, T* rstd) {
  __shared__ double part[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * d;
    T* yr = y + r * d;
    double s = 0;
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) s += double(xr[i]);
    const double mu = block_sum(s, part) / double(d);
    double q = 0;
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
      const double dv = double(xr[i]) - mu;
      q += dv * dv;
    }
    const double rs = 1.0 / sqrt(block_sum(q, part) / double(d) + eps);
    if (threadIdx.x == 0) {
      mean[r] = T(mu);
      rstd[r] = T(rs);
    }
    const T tmu = T(mu), trs = T(rs);
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
      T h = (xr[i] - tmu) * trs;
      if (w) h *= w[i];
      if (b) h += b[i];
      yr[i] = h;
    }
  }
}

// gx of layer norm: one block per row.
template <class T>
__global__ void layer_norm_backward_kernel(int64_t rows, int64_t d, const T* x, const T* w,
                                           const T* mean, const T* rstd, const T* gy, T* gx) {
  __shared__ double part[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * d;
    const T* gr = gy + r * d;
    const double mu = mean[r], rs = rstd[r];
    double sg = 0, sgh = 0;
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
      const double h = (double(xr[i]) - mu) * rs;
      const double g = w ? double(gr[i]) * double(w[i]) : double(gr[i]);
      sg += g;
      sgh += g * h;
    }
    sg = block_sum(sg, part);
    sgh = block_sum(sgh, part);
    const T mg = T(sg / double(d)), mgh = T(sgh / double(d)), trs = T(rs), tmu = T(mu);
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
      const T h = (xr[i] - tmu) * trs;
      const T g = w ? gr[i] * w[i] : gr[i];
      gx[r * d + i] = trs * (g - mg - h * mgh);
    }
  }
}

// Partial column sums of gy * h and gy over row chunk blockIdx.y: part [chunks, 2, d].
template <class T>
__global__ void layer_norm_params_kernel(int64_t rows, int64_t d, int64_t chunk, const T* x,
                                         const T* mean, const T* rstd, const T* gy, double* part) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= d) return;
  const int64_t r0 = blockIdx.y * chunk, r1 = min(rows, r0 + chunk);
  double sw = 0, sb = 0;
  for (int64_t r = r0; r < r1; ++r) {
    const double g = gy[r * d + i];
    sw += g * ((double(x[r * d + i]) - double(mean[r])) * double(rstd[r]));
    sb += g;
  }
  part[(blockIdx.y * 2) * d + i] = sw;
  part[(blockIdx.y * 2 + 1) * d + i] = sb;
}

template <class T>
__global__ void layer_norm_params_finish_kernel(int64_t chunks, int64_t d, const double* part,
                                                T* gw, T* gb) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= d) return;
  double sw = 0, sb = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    sw += part[(c * 2) * d + i];
    sb += part[(c * 2 + 1) * d + i];
  }
  if (gw) gw[i] = T(sw);
  if (gb) gb[i] = T(sb);
}

// Batch norm over contiguous x viewed as [N, C, S]: one block per channel, statistics in double.
template <class T>
__global__ void batch_norm_stats_kernel(int64_t n, int64_t c, int64_t s, const T* x, T* mean,
                                        T* var) {
  __shared__ double part[32];
  const int64_t ch = blockIdx.x, count = n * s;
  double sum = 0;
  for (int64_t k = threadIdx.x; k < count; k += blockDim.x)
    sum += double(x[((k / s) * c + ch) * s + k % s]);
  const double mu = block_sum(sum, part) / double(count);
  double sq = 0;
  for (int64_t k = threadIdx.x; k < count; k += blockDim.x) {
    const double dv = double(x[((k / s) * c + ch) * s + k % s]) - mu;
    sq += dv * dv;
  }
  sq = block_sum(sq, part);
  if (threadIdx.x == 0) {
    mean[ch] = T(mu);
    var[ch] = T(sq / double(count));
  }
}

template <class T>
__global__ void batch_norm_apply_kernel(int64_t total, int64_t c, int64_t s, const T* x,
                                        const T* mean, const T* invstd, const T* w, const T* b,
                                        T* y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ch = (i / s) % c;
    const T scale = invstd[ch] * (w ? w[ch] : T(1));
    const T shift = (b ? b[ch] : T(0)) - mean[ch] * scale;
    y[i] = x[i] * scale + shift;
  }
}

template <class T>
__global__ void batch_norm_backward_kernel(int64_t n, int64_t c, int64_t s, const T* x, const T* gy,
                                           const T* mean, const T* invstd, const T* w,
                                           bool batch_stats, T* gx, T* gw, T* gb) {
  __shared__ double part[32];
  const int64_t ch = blockIdx.x, count = n * s;
  const double mu = mean[ch], rs = invstd[ch], wc = w ? double(w[ch]) : 1.0;
  double sg = 0, sgx = 0;
  for (int64_t k = threadIdx.x; k < count; k += blockDim.x) {
    const int64_t at = ((k / s) * c + ch) * s + k % s;
    sg += double(gy[at]);
    sgx += double(gy[at]) * (double(x[at]) - mu) * rs;
  }
  sg = block_sum(sg, part);
  sgx = block_sum(sgx, part);
  if (threadIdx.x == 0) {
    if (gw) gw[ch] = T(sgx);
    if (gb) gb[ch] = T(sg);
  }
  if (!gx) return;
  const double mg = batch_stats ? sg / double(count) : 0,
               mgx = batch_stats ? sgx / double(count) : 0;
  for (int64_t k = threadIdx.x; k < count; k += blockDim.x) {
    const int64_t at = ((k / s) * c + ch) * s + k % s;
    gx[at] = T(wc * rs * (double(gy[at]) - mg - (double(x[at]) - mu) * rs * mgx));
  }
}

template <class T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.raw()) : nullptr;
}
template <class T>
T* mut_or_null(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.raw()) : nullptr;
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

void CudaBackend::layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, double eps,
                             const Tensor& y, const Tensor& mean, const Tensor& rstd) {
  const int64_t d = x.shape().back(), rows = d == 0 ? 0 : x.numel() / d;
  if (rows == 0) return;
  dispatch_float(x.dtype(), "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    SPOOL_LAUNCH(layer_norm_kernel, row_grid(rows), kThreads, 0, stream(), rows, d,
                 static_cast<const T*>(x.raw()), ptr_or_null<T>(w), ptr_or_null<T>(b), eps,
                 static_cast<T*>(y.raw()), static_cast<T*>(mean.raw()),
                 static_cast<T*>(rstd.raw()));
    SPOOL_CUDA_LAUNCHED("layer_norm");
  });
}

void CudaBackend::layer_norm_backward(const Tensor& x, const Tensor& w, const Tensor& mean,
                                      const Tensor& rstd, const Tensor& gy, const Tensor& gx,
                                      const Tensor& gw, const Tensor& gb) {
  const int64_t d = x.shape().back(), rows = d == 0 ? 0 : x.numel() / d;
  if (rows == 0) {
    if (gw.defined()) fill(gw, 0);
    if (gb.defined()) fill(gb, 0);
    return;
  }
  dispatch_float(x.dtype(), "layer_norm_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.raw());
    const T* pm = static_cast<const T*>(mean.raw());
    const T* pr = static_cast<const T*>(rstd.raw());
    const T* pg = static_cast<const T*>(gy.raw());
    SPOOL_LAUNCH(layer_norm_backward_kernel, row_grid(rows), kThreads, 0, stream(), rows, d, px,
                 ptr_or_null<T>(w), pm, pr, pg, static_cast<T*>(gx.raw()));
    SPOOL_CUDA_LAUNCHED("layer_norm_backward");
    if (!gw.defined() && !gb.defined()) return;
    const int64_t chunks = std::min<int64_t>(rows, 128), chunk = (rows + chunks - 1) / chunks;
    auto* part = static_cast<double*>(scratch(size_t(chunks * 2 * d) * sizeof(double)));
    const dim3 grid(unsigned((d + kThreads - 1) / kThreads), unsigned(chunks));
    SPOOL_LAUNCH(layer_norm_params_kernel, grid, kThreads, 0, stream(), rows, d, chunk, px, pm, pr,
                 pg, part);
    SPOOL_CUDA_LAUNCHED("layer_norm_backward (parameters)");
    SPOOL_LAUNCH(layer_norm_params_finish_kernel, unsigned((d + kThreads - 1) / kThreads), kThreads,
                 0, stream(), chunks, d, part, mut_or_null<T>(gw), mut_or_null<T>(gb));
    SPOOL_CUDA_LAUNCHED("layer_norm_backward (parameters)");
  });
}

void CudaBackend::batch_norm_stats(const Tensor& x, const Tensor& mean, const Tensor& var) {
  const NCS g(x);
  if (g.c == 0) return;
  dispatch_float(x.dtype(), "batch_norm", [&](auto tag) {
    using T = decltype(tag);
    SPOOL_LAUNCH(batch_norm_stats_kernel, unsigned(g.c), kThreads, 0, stream(), g.n, g.c, g.s,
                 static_cast<const T*>(x.raw()), static_cast<T*>(mean.raw()),
                 static_cast<T*>(var.raw()));
    SPOOL_CUDA_LAUNCHED("batch_norm_stats");
  });
}

void CudaBackend::batch_norm_apply(const Tensor& x, const Tensor& mean, const Tensor& invstd,
                                   const Tensor& w, const Tensor& b, const Tensor& y) {
  const NCS g(x);
  const int64_t total = x.numel();
  if (total == 0) return;
  dispatch_float(x.dtype(), "batch_norm", [&](auto tag) {
    using T = decltype(tag);
    SPOOL_LAUNCH(batch_norm_apply_kernel, grid_for(total), kThreads, 0, stream(), total, g.c, g.s,
                 static_cast<const T*>(x.raw()), static_cast<const T*>(mean.raw()),
                 static_cast<const T*>(invstd.raw()), ptr_or_null<T>(w), ptr_or_null<T>(b),
                 static_cast<T*>(y.raw()));
    SPOOL_CUDA_LAUNCHED("batch_norm_apply");
  });
}

void CudaBackend::batch_norm_backward(const Tensor& x, const Tensor& gy, const Tensor& mean,
                                      const Tensor& invstd, const Tensor& w, bool batch_stats,
                                      const Tensor& gx, const Tensor& gw, const Tensor& gb) {
  const NCS g(x);
  if (g.c == 0) return;
  dispatch_float(x.dtype(), "batch_norm_backward", [&](auto tag) {
    using T = decltype(tag);
    SPOOL_LAUNCH(batch_norm_backward_kernel, unsigned(g.c), kThreads, 0, stream(), g.n, g.c, g.s,
                 static_cast<const T*>(x.raw()), static_cast<const T*>(gy.raw()),
                 static_cast<const T*>(mean.raw()), static_cast<const T*>(invstd.raw()),
                 ptr_or_null<T>(w), batch_stats, mut_or_null<T>(gx), mut_or_null<T>(gw),
                 mut_or_null<T>(gb));
    SPOOL_CUDA_LAUNCHED("batch_norm_backward");
  });
}

}  // namespace spool::cuda
