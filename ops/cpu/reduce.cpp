// CPU reductions (sum/max/min over any dims, argmax) and softmax / log_softmax.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "engine/geometry.h"
#include "engine/reduce_op.h"
#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"
#include "ops/cpu/vec_math.h"

namespace spool::cpu {

namespace {

// The reduced sub-space of one output element: sizes and strides after coalescing.
struct SubSpace {
  Shape size, stride;
  int64_t count = 1;
  // Calls f(offset) for every element of the sub-space in order.
  template <class F>
  void for_each(int64_t base, F&& f) const {
    if (size.size() == 1) {
      for (int64_t i = 0; i < size[0]; ++i) f(base + i * stride[0]);
      return;
    }
    Shape idx(size.size(), 0);
    for (int64_t k = 0; k < count; ++k) {
      int64_t off = base;
      for (size_t d = 0; d < size.size(); ++d) off += idx[d] * stride[d];
      f(off);
      for (size_t d = size.size(); d-- > 0;) {
        if (++idx[d] < size[d]) break;
        idx[d] = 0;
      }
    }
  }
};

// The reduction of x over the sub-space `sub` for each kept position, written to out.
template <ReduceOp OP, class T>
void reduce_typed(const Tensor& x, const Tensor& out, const Shape& kept_size, const Shape& kept_xs,
                  const Shape& kept_os, const SubSpace& sub) {
  using A = ReduceAcc<OP, T>;
  using R = Reducer<OP, A>;
  const T* px = static_cast<const T*>(x.raw());
  T* po = static_cast<T*>(out.raw());
  const int64_t n_out = numel(kept_size);
  auto offsets = [&](int64_t o, int64_t& xo, int64_t& oo) {
    xo = oo = 0;
    for (int64_t d = int64_t(kept_size.size()) - 1; d >= 0; --d) {
      int64_t i = o % kept_size[size_t(d)];
      o /= kept_size[size_t(d)];
      xo += i * kept_xs[size_t(d)];
      oo += i * kept_os[size_t(d)];
    }
  };

  // Column reduction: one kept run with unit stride in x and out, one reduced run outside it
  // ([rows, cols] -> [cols], the bias-gradient shape). Rows stream through a row of
  // accumulators, so memory is read in order.
  if (kept_size.size() == 1 && kept_xs[0] == 1 && kept_os[0] == 1 && sub.size.size() == 1 &&
      sub.count > 1) {
    const int64_t cols = kept_size[0], rows = sub.count, rs = sub.stride[0];
    constexpr int64_t block = 256;
    const int64_t blocks = (cols + block - 1) / block;
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelGrain)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t lo = b * block, w = std::min(block, cols - lo);
      A acc[block];
      for (int64_t j = 0; j < w; ++j) acc[j] = R::init();
      for (int64_t i = 0; i < rows; ++i) {
        const T* row = px + i * rs + lo;
        for (int64_t j = 0; j < w; ++j) acc[j] = R::combine(acc[j], A(row[j]));
      }
      for (int64_t j = 0; j < w; ++j) po[lo + j] = T(acc[j]);
    }
    return;
  }

  // Few outputs, long reductions: split each into fixed chunks and combine them in order, so
  // the result does not depend on the thread count.
  if (n_out < omp_get_max_threads() * 4 && sub.count >= kParallelGrain) {
    constexpr int64_t chunk = 8192;
    const int64_t n_chunks = (sub.count + chunk - 1) / chunk;
    std::vector<A> partial(static_cast<size_t>(n_chunks));
    auto sub_offset = [&](int64_t k) {
      int64_t off = 0;
      for (size_t d = sub.size.size(); d-- > 0;) {
        off += (k % sub.size[d]) * sub.stride[d];
        k /= sub.size[d];
      }
      return off;
    };
    for (int64_t o = 0; o < n_out; ++o) {
      int64_t xo, oo;
      offsets(o, xo, oo);
#pragma omp parallel for schedule(static)
      for (int64_t c = 0; c < n_chunks; ++c) {
        A acc = R::init();
        const int64_t lo = c * chunk, hi = std::min(sub.count, lo + chunk);
        if (sub.size.size() == 1 && sub.stride[0] == 1) {
          const T* p = px + xo;
          if constexpr (OP == ReduceOp::sum && std::is_floating_point_v<T>)
            acc = A(sum_contiguous(p + lo, hi - lo));
          else
            for (int64_t k = lo; k < hi; ++k) acc = R::combine(acc, A(p[k]));
        } else if (sub.size.size() == 1) {
          const T* p = px + xo;
          const int64_t st = sub.stride[0];
          for (int64_t k = lo; k < hi; ++k) acc = R::combine(acc, A(p[k * st]));
        } else {
          for (int64_t k = lo; k < hi; ++k) acc = R::combine(acc, A(px[xo + sub_offset(k)]));
        }
        partial[size_t(c)] = acc;
      }
      A acc = R::init();
      for (A p : partial) acc = R::combine(acc, p);
      po[oo] = T(acc);
    }
    return;
  }

  // General case: outputs spread over threads, each reduces its sub-space in order.
#pragma omp parallel for schedule(static) if (n_out * sub.count >= kParallelGrain)
  for (int64_t o = 0; o < n_out; ++o) {
    int64_t xo, oo;
    offsets(o, xo, oo);
    A acc = R::init();
    if (sub.size.size() == 1 && sub.stride[0] == 1) {
      const T* p = px + xo;
      if constexpr (OP == ReduceOp::sum && std::is_floating_point_v<T>)
        acc = A(sum_contiguous(p, sub.count));
      else
        for (int64_t k = 0; k < sub.count; ++k) acc = R::combine(acc, A(p[k]));
    } else {
      sub.for_each(xo, [&](int64_t off) { acc = R::combine(acc, A(px[off])); });
    }
    po[oo] = T(acc);
  }
}

}  // namespace

void CpuBackend::reduce(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims,
                        const Tensor& out) {
  std::vector<bool> reduced(size_t(x.dim()), false);
  for (int64_t d : dims) reduced[size_t(d)] = true;
  Shape kept_size, kept_xs, kept_os;
  SubSpace sub;
  for (int64_t d = 0; d < x.dim(); ++d) {
    const int64_t n = x.shape()[size_t(d)];
    if (n == 1) continue;
    if (reduced[size_t(d)]) {
      if (!sub.size.empty() && sub.stride.back() == x.strides()[size_t(d)] * n) {
        sub.size.back() *= n;
        sub.stride.back() = x.strides()[size_t(d)];
      } else {
        sub.size.push_back(n);
        sub.stride.push_back(x.strides()[size_t(d)]);
      }
      sub.count *= n;
    } else if (!kept_size.empty() && kept_xs.back() == x.strides()[size_t(d)] * n &&
               kept_os.back() == out.strides()[size_t(d)] * n) {
      kept_size.back() *= n;
      kept_xs.back() = x.strides()[size_t(d)];
      kept_os.back() = out.strides()[size_t(d)];
    } else {
      kept_size.push_back(n);
      kept_xs.push_back(x.strides()[size_t(d)]);
      kept_os.push_back(out.strides()[size_t(d)]);
    }
  }
  if (sub.size.empty()) {
    sub.size = {1};
    sub.stride = {0};
  }
  if (numel(x.shape()) == 0) {  // an empty reduction: sums are 0; max/min were refused by the op
    fill(out, 0);
    return;
  }
  dispatch_all(x.dtype(), "reduce", [&](auto tag) {
    using T = decltype(tag);
    switch (op) {
      case ReduceOp::sum:
        reduce_typed<ReduceOp::sum, T>(x, out, kept_size, kept_xs, kept_os, sub);
        break;
      case ReduceOp::max:
        reduce_typed<ReduceOp::max, T>(x, out, kept_size, kept_xs, kept_os, sub);
        break;
      case ReduceOp::min:
        reduce_typed<ReduceOp::min, T>(x, out, kept_size, kept_xs, kept_os, sub);
        break;
    }
  });
}

void CpuBackend::argmax(const Tensor& x, int64_t dim, const Tensor& out) {
  dispatch_all(x.dtype(), "argmax", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.raw());
    int64_t* po = static_cast<int64_t*>(out.raw());
    const int64_t n = x.shape()[dim], s = x.strides()[dim];
    Shape outer_size, xs, os;
    for (int64_t d = 0; d < x.dim(); ++d) {
      if (d == dim) continue;
      outer_size.push_back(x.shape()[d]);
      xs.push_back(x.strides()[d]);
      os.push_back(out.strides()[d]);
    }
    const int64_t n_out = numel(outer_size);
#pragma omp parallel for schedule(static) if (n_out * n >= kParallelGrain)
    for (int64_t o = 0; o < n_out; ++o) {
      int64_t xo = 0, oo = 0, rem = o;
      for (int64_t d = int64_t(outer_size.size()) - 1; d >= 0; --d) {
        int64_t i = rem % outer_size[size_t(d)];
        rem /= outer_size[size_t(d)];
        xo += i * xs[size_t(d)];
        oo += i * os[size_t(d)];
      }
      int64_t best = 0;
      T bv = px[xo];
      for (int64_t i = 1; i < n; ++i)
        if (px[xo + i * s] > bv) bv = px[xo + (best = i) * s];
      po[oo] = best;
    }
  });
}

void CpuBackend::softmax(const Tensor& x, int64_t dim, bool log, const Tensor& out) {
  Around g(x.shape(), dim);
  dispatch_float(x.dtype(), "softmax", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.raw());
    T* po = static_cast<T*>(out.raw());
    const int64_t rows = g.outer * g.inner;
#pragma omp parallel for schedule(static) if (rows * g.n >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t base = (r / g.inner) * g.n * g.inner + r % g.inner, s = g.inner;
      const T* a = px + base;
      T* o = po + base;
      T mx = -std::numeric_limits<T>::infinity();
      if (s == 1)
        mx = max_contiguous(a, g.n);
      else
        for (int64_t i = 0; i < g.n; ++i) mx = std::max(mx, a[i * s]);
      if (mx == -std::numeric_limits<T>::infinity()) mx = 0;  // an all -inf row stays finite
      double sum = 0;
      if (s == 1) {
        // exp into the output, then one pipelined sum over it.
        for (int64_t i = 0; i < g.n; ++i) o[i] = exp_fast(a[i] - mx);
        sum = sum_contiguous(o, g.n);
        if (log)
          for (int64_t i = 0; i < g.n; ++i) o[i] = a[i];  // overwritten below
      } else {
        for (int64_t i = 0; i < g.n; ++i) {
          T e = exp_fast(a[i * s] - mx);
          if (!log) o[i * s] = e;
          sum += e;
        }
      }
      if (log) {
        T lse = mx + T(std::log(sum));
        for (int64_t i = 0; i < g.n; ++i) o[i * s] = a[i * s] - lse;
      } else {
        T inv = T(1.0 / sum);
        for (int64_t i = 0; i < g.n; ++i) o[i * s] *= inv;
      }
    }
  });
}

void CpuBackend::softmax_backward(const Tensor& y, const Tensor& gy, int64_t dim, bool log,
                                  const Tensor& gx) {
  Around g(y.shape(), dim);
  dispatch_float(y.dtype(), "softmax_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* py = static_cast<const T*>(y.raw());
    const T* pg = static_cast<const T*>(gy.raw());
    T* po = static_cast<T*>(gx.raw());
    const int64_t rows = g.outer * g.inner;
#pragma omp parallel for schedule(static) if (rows * g.n >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t base = (r / g.inner) * g.n * g.inner + r % g.inner, s = g.inner;
      const T *yr = py + base, *gr = pg + base;
      T* o = po + base;
      double dot = 0;
      if (log) {
        // d log_softmax: gx = gy - softmax * sum(gy)
        for (int64_t i = 0; i < g.n; ++i) dot += gr[i * s];
        for (int64_t i = 0; i < g.n; ++i) o[i * s] = gr[i * s] - exp_fast(yr[i * s]) * T(dot);
      } else {
        // d softmax: gx = y * (gy - sum(gy * y))
        for (int64_t i = 0; i < g.n; ++i) dot += double(gr[i * s]) * yr[i * s];
        for (int64_t i = 0; i < g.n; ++i) o[i * s] = yr[i * s] * (gr[i * s] - T(dot));
      }
    }
  });
}

}  // namespace spool::cpu
