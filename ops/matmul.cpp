// matmul: one batched GEMM kernel; backward is two more matmuls.
#include "ops/matmul.h"

#include "ops/autocast.h"

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/factory.h"
#include "engine/geometry.h"
#include "ops/elementwise.h"
#include "ops/shape.h"

namespace spool {

namespace {

// A [..., r, c] tensor broadcast to batch shape `batch`, as a 3-D [B, r, c] tensor for the
// kernel: a view when the batch dims collapse to one stride and each matrix has a unit stride
// in one of its dims (what BLAS can describe), otherwise a contiguous copy.
Tensor as_batched(const Tensor& t, const Shape& batch) {
  Shape full = batch;
  full.push_back(t.size(-2));
  full.push_back(t.size(-1));
  Tensor v = detail::broadcast_view(t, full);
  const int64_t nb = numel(batch);
  int64_t stride = 0;
  bool collapses = true;
  // Walking the batch dims from the innermost: each must continue the previous one's stride.
  int64_t expect = -1;
  for (int64_t d = int64_t(batch.size()) - 1; d >= 0; --d) {
    int64_t n = batch[size_t(d)], s = v.strides()[size_t(d)];
    if (n == 1) continue;
    if (expect < 0) {
      stride = s;
      expect = s * n;
    } else if (s == expect) {
      expect = s * n;
    } else {
      collapses = false;
    }
  }
  if (!collapses || !matrix_layout(v.size(-2), v.size(-1), v.stride(-2), v.stride(-1)).ok) {
    Tensor c = empty(full, t.dtype(), t.device());
    backend(t.device()).copy(v, c);
    v = c;
    stride = v.size(-2) * v.size(-1);
  }
  return Tensor::make(v.storage(), v.offset(), {nb, v.size(-2), v.size(-1)},
                      {stride, v.stride(-2), v.stride(-1)}, v.dtype());
}

thread_local bool t_autocast = false;

// dA = dY @ B^T, dB = A^T @ dY, summed over broadcast batch dims (a, b, g in any one float
// dtype, or a, b and g bf16 under autocast: the gradients are then f32).
Tensors matmul_grads(const Tensor& a, const Tensor& b, const Tensor& g, const Needs& need) {
  Tensor ga, gb;
  if (need[0]) ga = detail::sum_to(matmul(g, transpose(b, -1, -2)), a.shape());
  if (need[1]) {
    if (b.dim() == 2 && a.dim() > 2)
      gb = matmul(transpose(reshape(a, {-1, a.size(-1)}), 0, 1), reshape(g, {-1, g.size(-1)}));
    else
      gb = detail::sum_to(matmul(transpose(a, -1, -2), g), b.shape());
  }
  return Tensors{ga, gb};
}

// Both operands at least 2-D.
Tensor matmul_nd(const Tensor& a_in, const Tensor& b_in) {
  // bf16 operands (autocast's) give an f32 result. The GPU multiplies them as they are (f32
  // accumulation); the CPU converts them to f32, exactly, for its f32 GEMM.
  const bool widen = a_in.dtype() == DType::bf16 && a_in.device().type == DeviceType::cpu;
  const Tensor a = widen ? to(a_in, DType::f32) : a_in;
  const Tensor b = widen ? to(b_in, DType::f32) : b_in;
  const DType out_dtype = a.dtype() == DType::bf16 ? DType::f32 : a.dtype();
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  SPOOL_CHECK(b.size(-2) == k, "matmul: a is ", str(a.shape()), ", b is ", str(b.shape()),
              ": inner dimensions ", k, " and ", b.size(-2), " differ");
  Shape batch = broadcast_shapes(Shape(a.shape().begin(), a.shape().end() - 2),
                                 Shape(b.shape().begin(), b.shape().end() - 2), "matmul");
  Shape out_shape = batch;
  out_shape.push_back(m);
  out_shape.push_back(n);
  Tensor y = empty(out_shape, out_dtype, a.device());
  const int64_t nb = numel(batch);
  if (k == 0) {
    backend(a.device()).fill(y, 0);  // an empty sum
  } else if (b.dim() == 2 && a.dim() > 2 && numel(out_shape) > 0) {
    // [..., M, K] @ [K, N]: fold the batch into M for a single GEMM when a allows it.
    Tensor a2 = a.is_contiguous()
                    ? Tensor::make(a.storage(), a.offset(), {1, nb * m, k}, {0, k, 1}, a.dtype())
                    : as_batched(a, batch);
    if (a.is_contiguous())
      backend(a.device())
          .matmul(a2, as_batched(b, {1}),
                  Tensor::make(y.storage(), 0, {1, nb * m, n}, {0, n, 1}, y.dtype()));
    else
      backend(a.device())
          .matmul(a2, as_batched(b, batch),
                  Tensor::make(y.storage(), 0, {nb, m, n}, {m * n, n, 1}, y.dtype()));
  } else if (numel(out_shape) > 0) {
    backend(a.device())
        .matmul(as_batched(a, batch), as_batched(b, batch),
                Tensor::make(y.storage(), 0, {nb, m, n}, {m * n, n, 1}, y.dtype()));
  }
  record("matmul", {a, b}, {y}, {a, b},
         [](const Tensors& s, const Tensors& g, const Needs& need) {
           return matmul_grads(s[0], s[1], g[0], need);
         },
         {2.0 * double(nb) * double(m) * double(n) * double(k)});
  return y;
}

// matmul under autocast: bf16 copies of the f32 operands are multiplied and kept for backward.
Tensor matmul_autocast(const Tensor& a, const Tensor& b) {
  Tensor a16, b16, y;
  {
    NoGrad no_grad;
    a16 = to(a, DType::bf16);
    b16 = to(b, DType::bf16);
    y = matmul(a16, b16);
  }
  record("matmul_bf16", {a, b}, {y}, {a16, b16},
         [](const Tensors& s, const Tensors& g, const Needs& need) {
           return matmul_grads(s[0], s[1], to(g[0], DType::bf16), need);
         },
         {2.0 * double(y.numel()) * double(a.size(-1))});
  return y;
}

}  // namespace

Autocast::Autocast(bool enabled) : previous_(t_autocast) { t_autocast = enabled; }
Autocast::~Autocast() { t_autocast = previous_; }
bool autocast_enabled() { return t_autocast; }

Tensor matmul(const Tensor& a, const Tensor& b) {
  detail::check_same_device(a, b, "matmul");
  SPOOL_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: a is ", str(a.shape()), ", b is ",
              str(b.shape()), ": both need at least one dimension");
  SPOOL_CHECK(a.dtype() == b.dtype() && (is_float(a.dtype()) || a.dtype() == DType::bf16),
              "matmul: a is ", describe(a), ", b is ", describe(b), ": need equal float dtypes");
  if (t_autocast && a.dtype() == DType::f32 && a.dim() >= 2 && b.dim() >= 2)
    return matmul_autocast(a, b);
  if (a.dim() == 1 && b.dim() == 1) {
    SPOOL_CHECK(a.size(0) == b.size(0), "matmul: a is ", str(a.shape()), ", b is ", str(b.shape()),
                ": inner dimensions ", a.size(0), " and ", b.size(0), " differ");
    return reshape(matmul_nd(unsqueeze(a, 0), unsqueeze(b, 1)), {});  // the dot product, 0-d
  }
  if (a.dim() == 1) return squeeze(matmul(unsqueeze(a, 0), b), -2);
  if (b.dim() == 1) return squeeze(matmul(a, unsqueeze(b, 1)), -1);
  return matmul_nd(a, b);
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  SPOOL_CHECK(w.dim() == 2, "linear: weight is ", str(w.shape()), "; expected [out, in]");
  SPOOL_CHECK(x.dim() >= 1 && x.size(-1) == w.size(1), "linear: input is ", str(x.shape()),
              ", weight is ", str(w.shape()), ": input features ", x.dim() >= 1 ? x.size(-1) : 0,
              " and weight's in-features ", w.size(1), " differ");
  Tensor y = matmul(x, transpose(w, 0, 1));
  if (b.defined()) {
    SPOOL_CHECK(b.dim() == 1 && b.size(0) == w.size(0), "linear: bias is ", str(b.shape()),
                "; expected [", w.size(0), "]");
    y = y + b;
  }
  return y;
}

}  // namespace spool
