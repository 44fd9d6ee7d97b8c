// Flash attention against the naive softmax(q k^T) v: forward, backward, dropout and packed
// documents; the naive form itself is gradchecked in f64.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "engine/autograd.h"
#include "engine/factory.h"
#include "ops/ops.h"
#include "tests/support/helpers.h"

using namespace spool;

namespace {

double max_abs_diff(const Tensor& a, const Tensor& b) {
  auto x = a.to_vector<double>(), y = b.to_vector<double>();
  EXPECT_EQ(x.size(), y.size());
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

struct Qkv {
  Tensor q, k, v;
};

Qkv make_qkv(Shape shape, uint64_t seed) {
  Generator g(seed);
  Qkv r{randn(shape, DType::f32, &g), randn(shape, DType::f32, &g), randn(shape, DType::f32, &g)};
  for (Tensor* t : {&r.q, &r.k, &r.v}) t->requires_grad_();
  return r;
}

// Runs attention and backward with a fixed upstream gradient; returns out, dq, dk, dv.
Tensors run(bool flash, const Qkv& x, const AttentionOptions& o, const Tensor& gout) {
  for (const Tensor* t : {&x.q, &x.k, &x.v}) t->impl().grad.reset();
  Tensor out = flash ? flash_attention(x.q, x.k, x.v, o) : naive_attention(x.q, x.k, x.v, o);
  backward(out, gout);
  return {out.detach(), x.q.grad(), x.k.grad(), x.v.grad()};
}

void expect_flash_equals_naive(Shape shape, AttentionOptions o, uint64_t seed = 1) {
  Qkv x = make_qkv(shape, seed);
  Generator gg(seed + 100);
  Tensor gout = randn(shape, DType::f32, &gg);
  Generator g1(9), g2(9);
  o.gen = &g1;
  Tensors f = run(true, x, o, gout);
  o.gen = &g2;
  Tensors n = run(false, x, o, gout);
  const char* what[] = {"out", "dq", "dk", "dv"};
  for (int i = 0; i < 4; ++i)
    EXPECT_LE(max_abs_diff(f[size_t(i)], n[size_t(i)]), 1e-5) << what[i] << " for " << str(shape);
}

}  // namespace

TEST(FlashAttention, CausalMatchesNaiveForwardAndBackward) {
  expect_flash_equals_naive({2, 3, 64, 16}, {});
  expect_flash_equals_naive({1, 2, 130, 32}, {});  // T not a multiple of the 64-row tile
}

TEST(FlashAttention, NonCausalMatchesNaive) {
  expect_flash_equals_naive({2, 2, 100, 8}, {.causal = false});
}

TEST(FlashAttention, DropoutDrawsTheSameMaskAsNaiveAttention) {
  expect_flash_equals_naive({1, 2, 70, 8}, {.dropout_p = 0.3});
}

TEST(FlashAttention, PackedDocumentsMatchNaiveWithTheSameMask) {
  // Row 0: documents of 30, 50 and 20 tokens; row 1: 70 and 30.
  Tensor cu = from_vector(std::vector<int64_t>{0, 30, 80, 100, 170, 200});
  Tensor seg = segments_from_cu_seqlens(cu, 2, 100);
  expect_flash_equals_naive({2, 2, 100, 16}, {.segments = seg});
  expect_flash_equals_naive({2, 2, 100, 16}, {.causal = false, .segments = seg});
}

TEST(FlashAttention, APackedRowEqualsEachDocumentAlone) {
  Qkv x = make_qkv({1, 2, 90, 8}, 3);
  Tensor cu = from_vector(std::vector<int64_t>{0, 25, 90});
  Tensor packed = flash_attention(x.q, x.k, x.v, {.segments = segments_from_cu_seqlens(cu, 1, 90)});
  for (auto [start, len] : {std::pair<int64_t, int64_t>{0, 25}, {25, 65}}) {
    auto part = [&](const Tensor& t) { return narrow(t, 2, start, len); };
    Tensor alone = flash_attention(part(x.q), part(x.k), part(x.v));
    EXPECT_LE(max_abs_diff(part(packed), alone), 1e-6) << "document at " << start;
  }
}

TEST(FlashAttention, SavesOnlyInputsOutputAndLogSumExp) {
  Qkv x = make_qkv({1, 2, 256, 16}, 4);
  Tensor out = flash_attention(x.q, x.k, x.v);
  const int64_t qkv_out = 4 * 2 * 256 * 16 * 4, lse = 2 * 256 * 4;
  EXPECT_EQ(out.grad_fn()->saved_bytes(), qkv_out + lse);
}

TEST(NaiveAttention, GradcheckInDoublePrecision) {
  Generator g(5);
  Tensors in;
  for (int i = 0; i < 3; ++i) in.push_back(randn({1, 2, 5, 3}, DType::f64, &g).requires_grad_());
  Tensor seg = segments_from_cu_seqlens(from_vector(std::vector<int64_t>{0, 2, 5}), 1, 5);
  for (bool causal : {true, false})
    EXPECT_EQ(gradcheck(
                  [&](const Tensors& t) {
                    return naive_attention(t[0], t[1], t[2], {.causal = causal, .segments = seg});
                  },
                  in),
              "");
}

TEST(FlashAttention, BadArgumentsAreNamed) {
  using spool::test_support::error_of;
  using ::testing::HasSubstr;
  Tensor q = randn({1, 1, 4, 2});
  EXPECT_THAT(error_of([&] {
                flash_attention(q, randn({1, 1, 5, 2}), q);
              }),
              HasSubstr("flash_attention: q [1, 1, 4, 2], k [1, 1, 5, 2]"));
  EXPECT_THAT(error_of([&] {
                segments_from_cu_seqlens(from_vector(std::vector<int64_t>{0, 3, 2, 8}), 2, 4);
              }),
              HasSubstr("increase strictly"));
  EXPECT_THAT(error_of([&] {
                segments_from_cu_seqlens(from_vector(std::vector<int64_t>{0, 3, 7}), 2, 4);
              }),
              HasSubstr("ends at 7 but the batch holds 2 x 4 = 8 tokens"));
  EXPECT_THAT(error_of([&] {
                segments_from_cu_seqlens(from_vector(std::vector<int64_t>{0, 3, 8}), 2, 4);
              }),
              HasSubstr("crosses a row boundary"));
  EXPECT_THAT(error_of([&] { flash_attention(q, q, q, {.dropout_p = 1.0}); }),
              HasSubstr("dropout_p 1 is outside [0, 1)"));
}
