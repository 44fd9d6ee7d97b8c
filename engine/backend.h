// The kernels a device must provide. The CPU backend (ops/cpu/) and the CUDA backend (cuda/)
// implement this interface; ops call backend(device) and never branch on the device themselves.
//
// Rules for every kernel: arguments are already checked by the op (shapes agree, dtypes agree,
// indices are in range); `out` tensors are allocated by the caller; inputs may be any strided
// view unless a comment says "contiguous"; kernels are deterministic for a fixed thread count.
#pragma once
#include <string>
#include <vector>

#include "engine/allocator.h"
#include "engine/rng.h"
#include "engine/tensor.h"

namespace spool {

enum class UnaryOp {
  neg,
  exp,
  log,
  sqrt,
  abs,
  sign,
  tanh,
  sigmoid,
  log_sigmoid,  // log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|))
  relu,
  gelu,            // x * Phi(x)
  gelu_tanh,       // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  gelu_grad,       // d gelu / dx
  gelu_tanh_grad,  // d gelu_tanh / dx
  pow_scalar,      // x ^ a
  clamp,           // min(max(x, a), b)
  affine,          // a * x + b
};

// relu_grad: relu's backward, a where b > 0, else 0 (a the output's gradient, b relu's output),
// without a mask tensor.
enum class BinaryOp {
  add,
  sub,
  mul,
  div,
  pow,
  maximum,
  minimum,
  relu_grad,
  eq,
  ne,
  lt,
  le,
  gt,
  ge
};

constexpr bool is_comparison(BinaryOp op) { return op >= BinaryOp::eq; }

enum class ReduceOp { sum, max, min };

// Geometry of a convolution or pooling window over 1, 2 or 3 spatial dims (one entry per dim).
struct WindowParams {
  std::vector<int64_t> kernel, stride, padding, dilation;
  int64_t groups = 1;             // convolution only
  bool ceil_mode = false;         // pooling only
  bool count_include_pad = true;  // average pooling only
  // Output size of spatial dim d for an input of size `in`.
  int64_t out_size(size_t d, int64_t in) const;
};

// Scaled dot-product attention: which keys a query sees, and dropout on the probabilities.
struct AttentionParams {
  bool causal = true;
  double scale = 1;      // usually 1/sqrt(head dim)
  double dropout_p = 0;  // probability of zeroing an attention weight
  RngState rng;          // element (b, h, i, j) keeps its weight iff
                         // uniform_at(rng, ((b * H + h) * T + i) * T + j) >= dropout_p
};

// One Adam / AdamW update (PyTorch's formulas); c1 and c2 are the bias corrections
// 1 - beta1^t and 1 - beta2^t.
struct AdamParams {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled;  // AdamW: p *= 1 - lr * weight_decay; Adam: g += weight_decay * p
  double c1, c2;
};

// RoIAlign's settings (engine/geometry.h roi_bins).
struct RoiAlignParams {
  double spatial_scale = 1.0;
  int64_t out_h = 7, out_w = 7, sampling_ratio = 2;
  bool aligned = true;
};

// Every method is forwarded by engine/trace_backend.cpp's TracingBackend (a span per call while
// a trace is on): a method added here must be added there too.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // Copies between this device and host memory: src / dst are contiguous tensors of this device,
  // the host side holds nbytes() bytes. Both return when the copy is complete.
  virtual void to_host(const Tensor& src, void* dst) = 0;
  virtual void from_host(const void* src, const Tensor& dst) = 0;
  // Waits for all work queued on this device (a no-op on the CPU).
  virtual void synchronize() {}

  virtual void fill(const Tensor& out, double value) = 0;
  // out = src converted to out's dtype; equal shapes.
  virtual void copy(const Tensor& src, const Tensor& out) = 0;
  // out (contiguous) = start, start + step, ...
  virtual void arange(const Tensor& out, double start, double step) = 0;
  // out (contiguous) = lo + (hi - lo) * U[0,1) or mean + std * N(0,1), element i from counter i.
  virtual void uniform(const Tensor& out, RngState state, double lo, double hi) = 0;
  virtual void normal(const Tensor& out, RngState state, double mean, double std) = 0;

  virtual void unary(UnaryOp op, const Tensor& x, const Tensor& out, double a = 0,
                     double b = 0) = 0;
  // a and b have out's shape (broadcast operands arrive as stride-0 views). Comparisons write
  // b8; the others write a's dtype.
  virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) = 0;
  // out = cond ? a : b, all of out's shape; cond is b8.
  virtual void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) = 0;
  // out has x's shape with each of `dims` set to 1.
  virtual void reduce(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims,
                      const Tensor& out) = 0;
  // out (i64, x's shape with dim set to 1) = index of the first maximum along dim.
  virtual void argmax(const Tensor& x, int64_t dim, const Tensor& out) = 0;

  // out[i] = a[i] @ b[i]: a [B, M, K], b [B, K, N], out [B, M, N] contiguous, float dtypes,
  // K > 0; each matrix of a and b has a unit stride in one of its two dims (matrix_layout in
  // engine/geometry.h is ok), any batch stride (0 for a broadcast operand).
  virtual void matmul(const Tensor& a, const Tensor& b, const Tensor& out) = 0;

  // Softmax along dim of a contiguous x; log selects log_softmax.
  virtual void softmax(const Tensor& x, int64_t dim, bool log, const Tensor& out) = 0;
  // gx from the forward's output y and the output gradient gy (all contiguous).
  virtual void softmax_backward(const Tensor& y, const Tensor& gy, int64_t dim, bool log,
                                const Tensor& gx) = 0;

  // Layer norm over the last dim of contiguous x [R, D]; w, b [D] may be undefined.
  // mean and rstd [R] are saved for backward.
  virtual void layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, double eps,
                          const Tensor& y, const Tensor& mean, const Tensor& rstd) = 0;
  // Writes gx; gw and gb (when defined) are written, not accumulated.
  virtual void layer_norm_backward(const Tensor& x, const Tensor& w, const Tensor& mean,
                                   const Tensor& rstd, const Tensor& gy, const Tensor& gx,
                                   const Tensor& gw, const Tensor& gb) = 0;

  // Convolution: x [N, C, *in], w [Cout, C / groups, *kernel], y [N, Cout, *out], contiguous.
  virtual void conv(const Tensor& x, const Tensor& w, const WindowParams& p, const Tensor& y) = 0;
  // gx (written) from gy and w; gw (written) from gy and x.
  virtual void conv_backward_input(const Tensor& gy, const Tensor& w, const WindowParams& p,
                                   const Tensor& gx) = 0;
  virtual void conv_backward_weight(const Tensor& gy, const Tensor& x, const WindowParams& p,
                                    const Tensor& gw) = 0;

  // Pooling over the spatial dims of contiguous x [N, C, *in]; max_pool records in `indices`
  // (i64, y's shape) the flat spatial index of each maximum. Padding counts as -inf for max.
  virtual void max_pool(const Tensor& x, const WindowParams& p, const Tensor& y,
                        const Tensor& indices) = 0;
  // p is the forward's window (the CPU scatters through indices alone; CUDA gathers per input).
  virtual void max_pool_backward(const Tensor& gy, const Tensor& indices, const WindowParams& p,
                                 const Tensor& gx) = 0;
  virtual void avg_pool(const Tensor& x, const WindowParams& p, const Tensor& y) = 0;
  virtual void avg_pool_backward(const Tensor& gy, const WindowParams& p, const Tensor& gx) = 0;

  // Batch norm over contiguous x viewed as [N, C, S]: per-channel mean and biased variance.
  virtual void batch_norm_stats(const Tensor& x, const Tensor& mean, const Tensor& var) = 0;
  // y = (x - mean) * invstd * w + b per channel (w, b may be undefined).
  virtual void batch_norm_apply(const Tensor& x, const Tensor& mean, const Tensor& invstd,
                                const Tensor& w, const Tensor& b, const Tensor& y) = 0;
  // Gradients given the statistics used in forward. `batch_stats`: mean and invstd came from
  // this batch (training), so gx includes their dependence on x. gw, gb may be undefined.
  virtual void batch_norm_backward(const Tensor& x, const Tensor& gy, const Tensor& mean,
                                   const Tensor& invstd, const Tensor& w, bool batch_stats,
                                   const Tensor& gx, const Tensor& gw, const Tensor& gb) = 0;

  // Flash attention over contiguous q, k, v [B, H, T, D] (f32): tiles of keys stream past tiles
  // of queries with an online softmax, so only out [B, H, T, D] and the per-row log-sum-exp
  // lse [B, H, T] are written. seg (i64 [B, T], may be undefined) gives each token's document
  // start: a query sees only keys of its own document.
  virtual void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& seg,
                         const AttentionParams& p, const Tensor& out, const Tensor& lse) = 0;
  // Gradients (written) from the forward's inputs, out, lse and the output gradient, recomputing
  // the probabilities tile by tile.
  virtual void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& seg, const AttentionParams& p, const Tensor& out,
                                  const Tensor& lse, const Tensor& gout, const Tensor& gq,
                                  const Tensor& gk, const Tensor& gv) = 0;

  // Softmax and cross-entropy in one pass over the rows of contiguous x [N, C] (f32, f64) with
  // contiguous i64 targets [N] (already checked to be in [0, C) or ignore_index): writes
  //   lse[i] = log sum_c exp x[i, c]
  //   loss[i] = lse[i] - (1 - eps) x[i, t_i] - eps / C sum_c x[i, c]   (0 where t_i is ignored)
  // with eps the label smoothing; loss and lse are [N] of x's dtype.
  virtual void cross_entropy(const Tensor& x, const Tensor& targets, int64_t ignore_index,
                             double smoothing, const Tensor& loss, const Tensor& lse) = 0;
  // gx[i, c] = gloss[i] (exp(x[i, c] - lse[i]) - (1 - eps) [c == t_i] - eps / C), and 0 on the
  // rows of ignored targets; gloss [N], gx [N, C] contiguous.
  virtual void cross_entropy_backward(const Tensor& x, const Tensor& targets, const Tensor& lse,
                                      const Tensor& gloss, int64_t ignore_index, double smoothing,
                                      const Tensor& gx) = 0;

  // TSM's temporal shift from contiguous x [frames, C, ...] (clips of `segments` consecutive
  // frames) into contiguous out of the same shape: each plane (the dims after C) is copied from
  // the frame engine/geometry.h's shift_source names, or zeroed. f32 and f64.
  virtual void temporal_shift(const Tensor& x, int64_t segments, int64_t fold, bool online,
                              bool reverse, const Tensor& out) = 0;

  // RoIAlign (engine/geometry.h): contiguous x [N, C, H, W] and rois [R, 5] of x's dtype (batch
  // indices checked by the caller) into contiguous out [R, C, out_h, out_w]. f32 and f64.
  virtual void roi_align(const Tensor& x, const Tensor& rois, const RoiAlignParams& p,
                         const Tensor& out) = 0;
  // Its transpose: gx [N, C, H, W] (contiguous, zeroed by the caller) += each bin's gradient
  // spread over the pixels its points read, with their bilinear weights / count.
  virtual void roi_align_backward(const Tensor& gout, const Tensor& rois, const RoiAlignParams& p,
                                  const Tensor& gx) = 0;

  // In place on contiguous p, m, v with gradient g (all the same shape):
  //   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  p -= lr (m / c1) / (sqrt(v / c2) + eps)
  virtual void adam_step(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v,
                         const AdamParams& a) = 0;

  // out = x.index_select(dim, idx): idx is 1-D i64, out contiguous.
  virtual void index_select(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& out) = 0;
  // out.index_select(dim, idx) += src (repeated indices accumulate).
  virtual void index_add(const Tensor& out, int64_t dim, const Tensor& idx, const Tensor& src) = 0;
  // out[..i..] = x[..idx[..i..]..] along dim; idx and out have the same shape.
  virtual void gather(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& out) = 0;
  // out[..idx[..i..]..] += src[..i..] along dim.
  virtual void scatter_add(const Tensor& out, int64_t dim, const Tensor& idx,
                           const Tensor& src) = 0;
};

Backend& backend(Device device);
Backend& cpu_backend();  // defined by ops/cpu

// The CUDA backend and its allocator, defined by cuda/ and made on first use. Null, with the reason
// in *why, when this build has no CUDA backend or the machine has no usable GPU.
Backend* cuda_backend(std::string* why = nullptr);
Allocator* cuda_allocator(std::string* why = nullptr);
namespace detail {
// *make(&why) for a GPU device, or an error naming the device and why it is not available.
template <class T>
T& require_gpu(Device device, T* (*make)(std::string*)) {
  std::string why;
  T* made = make(&why);
  SPOOL_CHECK(made, "device ", device.str(), " is not available: ", why);
  SPOOL_CHECK(device.index == 0, "device ", device.str(),
              " is not available: spool uses one GPU, cuda:0");
  return *made;
}
}  // namespace detail

// Copies src to dst across devices (or within one): equal shapes and dtypes, any strides.
void copy_across(const Tensor& src, const Tensor& dst);

}  // namespace spool
