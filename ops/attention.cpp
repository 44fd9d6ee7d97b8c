// Attention ops: the flash kernel's forward beside its backward, and the naive composition.
#include "ops/attention.h"

#include <cmath>
#include <limits>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/factory.h"
#include "ops/autocast.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/shape.h"
#include "ops/softmax.h"

namespace spool {

namespace {

void check_qkv(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& o,
               const char* op) {
  SPOOL_CHECK(q.dim() == 4, op, ": q is ", str(q.shape()), "; expected [B, H, T, D]");
  SPOOL_CHECK(k.shape() == q.shape() && v.shape() == q.shape(), op, ": q ", str(q.shape()), ", k ",
              str(k.shape()), " and v ", str(v.shape()), " must have the same shape");
  SPOOL_CHECK(o.dropout_p >= 0 && o.dropout_p < 1, op, ": dropout_p ", o.dropout_p,
              " is outside [0, 1)");
  if (o.segments.defined())
    SPOOL_CHECK(
        o.segments.dtype() == DType::i64 && o.segments.shape() == (Shape{q.size(0), q.size(2)}), op,
        ": segments are ", describe(o.segments), "; expected i64[", q.size(0), ", ", q.size(2),
        "]");
}

// The keys each query may see, as a b8 mask broadcastable to [B, H, T, T] (true = hidden).
Tensor hidden_mask(const Tensor& q, const AttentionOptions& o) {
  const int64_t t = q.size(2);
  const Tensor index = arange(0, double(t), 1, DType::i64, q.device());
  Tensor rows = reshape(index, {t, 1}), cols = reshape(index, {1, t});
  Tensor hidden = o.causal ? gt(cols, rows) : full({t, t}, 0, DType::b8, q.device());
  hidden = reshape(hidden, {1, 1, t, t});
  if (o.segments.defined()) {
    Tensor si = reshape(o.segments, {q.size(0), 1, t, 1}),
           sj = reshape(o.segments, {q.size(0), 1, 1, t});
    hidden = logical_or(hidden, ne(si, sj));
  }
  return hidden;
}

}  // namespace

Tensor flash_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                       const AttentionOptions& o) {
  check_qkv(q_in, k_in, v_in, o, "flash_attention");
  SPOOL_CHECK(
      q_in.dtype() == DType::f32 && k_in.dtype() == DType::f32 && v_in.dtype() == DType::f32,
      "flash_attention: q, k, v are ", describe(q_in), ", ", describe(k_in), ", ", describe(v_in),
      "; the kernel takes f32 (use naive_attention for f64)");
  Tensor q = contiguous(q_in), k = contiguous(k_in), v = contiguous(v_in);
  Tensor seg = o.segments.defined() ? contiguous(o.segments) : Tensor();
  AttentionParams p;
  p.causal = o.causal;
  p.scale = 1.0 / std::sqrt(double(q.size(3)));
  p.dropout_p = o.dropout_p;
  if (p.dropout_p > 0) {
    Generator& g = o.gen ? *o.gen : default_generator();
    p.rng = g.take(q.size(0) * q.size(1) * q.size(2) * q.size(2));
  }
  Tensor out = empty(q.shape(), q.dtype(), q.device());
  Tensor lse = empty({q.size(0), q.size(1), q.size(2)}, DType::f32, q.device());
  const double t = double(q.size(2)), flops = 4.0 * double(q.size(0) * q.size(1)) * t * t *
                                              double(q.size(3)) * (o.causal ? 0.5 : 1.0);
  if (autocast_enabled()) {
    // Autocast: bf16 copies of q, k, v are kept for backward (with out and lse, f32); the f32
    // kernels run on their exact f32 widening, and backward rounds the incoming gradient to bf16.
    Tensor q16, k16, v16;
    {
      NoGrad no_grad;
      q16 = to(q, DType::bf16);
      k16 = to(k, DType::bf16);
      v16 = to(v, DType::bf16);
      backend(q.device())
          .attention(to(q16, DType::f32), to(k16, DType::f32), to(v16, DType::f32), seg, p, out,
                     lse);
    }
    record("flash_attention", {q, k, v}, {out}, {q16, k16, v16, out, lse, seg},
           [p](const Tensors& s, const Tensors& g, const Needs&) {
             const Tensor q = to(s[0], DType::f32), k = to(s[1], DType::f32),
                          v = to(s[2], DType::f32);
             Tensor gq = empty_like(q), gk = empty_like(k), gv = empty_like(v);
             backend(q.device())
                 .attention_backward(q, k, v, s[5], p, s[3], s[4],
                                     to(to(contiguous(g[0]), DType::bf16), DType::f32), gq, gk, gv);
             return Tensors{gq, gk, gv};
           },
           {flops});
    return out;
  }
  backend(q.device()).attention(q, k, v, seg, p, out, lse);
  record("flash_attention", {q, k, v}, {out}, {q, k, v, out, lse, seg},
         [p](const Tensors& s, const Tensors& g, const Needs&) {
           Tensor gq = empty_like(s[0]), gk = empty_like(s[1]), gv = empty_like(s[2]);
           backend(s[0].device())
               .attention_backward(s[0], s[1], s[2], s[5], p, s[3], s[4], contiguous(g[0]), gq, gk,
                                   gv);
           return Tensors{gq, gk, gv};
         },
         {flops});
  return out;
}

Tensor naive_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                       const AttentionOptions& o) {
  check_qkv(q, k, v, o, "naive_attention");
  const double scale = 1.0 / std::sqrt(double(q.size(3)));
  Tensor scores = matmul(q, transpose(k, -1, -2)) * scale;  // [B, H, T, T]
  Tensor probs = softmax(masked_fill(scores, expand(hidden_mask(q, o), scores.shape()),
                                     -std::numeric_limits<double>::infinity()),
                         -1);
  if (o.dropout_p > 0) probs = dropout(probs, o.dropout_p, true, o.gen);
  return matmul(probs, v);
}

Tensor segments_from_cu_seqlens(const Tensor& cu, int64_t rows, int64_t row_length) {
  SPOOL_CHECK(cu.dtype() == DType::i64 && cu.dim() == 1 && cu.numel() >= 2,
              "cu_seqlens: expected i64 offsets [docs + 1], got ", describe(cu));
  auto off = cu.to_vector<int64_t>();
  const int64_t total = rows * row_length;
  SPOOL_CHECK(off.front() == 0, "cu_seqlens: must start at 0, starts at ", off.front());
  SPOOL_CHECK(off.back() == total, "cu_seqlens: ends at ", off.back(), " but the batch holds ",
              rows, " x ", row_length, " = ", total, " tokens");
  std::vector<int64_t> seg(static_cast<size_t>(total));
  for (size_t d = 0; d + 1 < off.size(); ++d) {
    SPOOL_CHECK(off[d + 1] > off[d], "cu_seqlens: offsets must increase strictly; offset ", d + 1,
                " is ", off[d + 1], " after ", off[d]);
    SPOOL_CHECK(off[d] / row_length == (off[d + 1] - 1) / row_length, "cu_seqlens: document ", d,
                " [", off[d], ", ", off[d + 1], ") crosses a row boundary (rows of ", row_length,
                " tokens)");
    for (int64_t i = off[d]; i < off[d + 1]; ++i) seg[size_t(i)] = off[d] % row_length;
  }
  return from_vector(seg, {rows, row_length});
}

}  // namespace spool
