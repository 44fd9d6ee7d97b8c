// Elementwise ops: arithmetic with NumPy broadcasting, math functions, activations, comparisons,
// where / masked_fill / clamp, dtype conversion and dropout. Binary ops need equal dtypes (a
// double scalar takes the tensor's dtype); convert explicitly with to().
#pragma once
#include "engine/rng.h"
#include "engine/tensor.h"

namespace spool {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& x, double exponent);
Tensor add(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);

Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
// log(sigmoid(x)), computed without overflow or log(0) for any finite x; gradient sigmoid(-x).
Tensor log_sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
enum class GeluApprox { none, tanh };
Tensor gelu(const Tensor& x, GeluApprox approx = GeluApprox::none);
// matmul(gelu(x), w), keeping x instead of gelu(x) for the backward, which recomputes gelu(x)
// (llm.c's GELU recompute): an MLP's hidden activation is then held once, not twice, for the
// price of one elementwise pass. Values and gradients equal the unfused ops' bit for bit.
Tensor gelu_matmul(const Tensor& x, const Tensor& w, GeluApprox approx = GeluApprox::none);
// Bounds may be +-infinity for a one-sided clamp.
Tensor clamp(const Tensor& x, double lo, double hi);

// cond (b8) picks from a where true, from b where false; all three broadcast.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
// relu's gradient from its output y and the output's gradient g: g where y > 0, else 0 (a new
// tensor).
Tensor relu_backward(const Tensor& y, const Tensor& g);
namespace detail {
// As relu_backward, written over g when g is the only handle on its buffer (sole_owner): for a
// backward function, whose incoming gradients the autograd hands over to it. Not for callers
// whose g is their own.
Tensor relu_backward_over(const Tensor& y, const Tensor& g);
// Records relu's tape entry for y = relu(x), computed by the caller (in x's own buffer, when y
// is a new handle on it: batch_norm_relu); y is saved for the mask.
void record_relu(const Tensor& x, const Tensor& y);
}  // namespace detail
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

// Comparisons (not differentiable) give b8.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, double b);
Tensor ne(const Tensor& a, double b);
Tensor gt(const Tensor& a, double b);
Tensor lt(const Tensor& a, double b);

// Element-wise or / and of b8 masks.
Tensor logical_or(const Tensor& a, const Tensor& b);
Tensor logical_and(const Tensor& a, const Tensor& b);

// Conversion; differentiable between float dtypes.
Tensor to(const Tensor& x, DType dtype);
// x on another device (x itself when it is there already); gradients flow back across.
Tensor to(const Tensor& x, Device device);
// A copy with its own storage (differentiable).
Tensor clone(const Tensor& x);

// Zeroes each element with probability p and scales the rest by 1 / (1 - p). The mask comes from
// the counter-based generator, so replaying the op with the same generator state repeats it.
Tensor dropout(const Tensor& x, double p, bool training = true, Generator* gen = nullptr);

// In place, for optimizers and initialisers: refused on tensors that require grad unless under
// NoGrad. Each bumps the storage's version counter.
void fill_(const Tensor& x, double value);
void copy_(const Tensor& dst, const Tensor& src);               // src broadcasts to dst
void add_(const Tensor& x, const Tensor& y, double alpha = 1);  // x += alpha * y
void mul_(const Tensor& x, double s);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);

// Internal helpers shared by the op families.
namespace detail {
// A stride-0 view of t broadcast to shape (no autograd).
Tensor broadcast_view(const Tensor& t, const Shape& shape);
// Sums a gradient down to the shape its input had before broadcasting.
Tensor sum_to(const Tensor& g, const Shape& shape);
void check_same_device(const Tensor& a, const Tensor& b, const char* op);
}  // namespace detail

}  // namespace spool
