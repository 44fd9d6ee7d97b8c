// bf16 and autocast: rounding to nearest even against values worked out by hand, conversions in
// both directions, and autocast's matmul against an f64 reference computed from the bf16-rounded
// operands (f32 accumulation), its gradients likewise, what it keeps for backward, and a gpt-tiny
// step under it beside the f32 step.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "engine/allocator.h"
#include "engine/bf16.h"
#include "engine/safetensors.h"
#include "models/gpt.h"
#include "nn/linear.h"
#include "ops/ops.h"
#include "tests/support/helpers.h"

namespace spool {
namespace {

float round_trip(float f) { return to_f32(to_bf16(f)); }

TEST(Bf16, RoundsToNearestTiesToEven) {
  EXPECT_EQ(round_trip(1.0f), 1.0f);
  // bf16 keeps 7 mantissa bits: the neighbours of 1 are 1 - 2^-8 and 1 + 2^-7.
  EXPECT_EQ(round_trip(1.0f + std::ldexp(1.0f, -8)), 1.0f);  // a tie: to the even 1
  EXPECT_EQ(round_trip(1.0f + 3 * std::ldexp(1.0f, -8)),
            1.0f + 2 * std::ldexp(1.0f, -7));  // a tie between 1 + 2^-7 (odd) and 1 + 2^-6
  EXPECT_EQ(round_trip(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -12)),
            1.0f + std::ldexp(1.0f, -7));  // above the tie: up
  EXPECT_EQ(round_trip(-2.5f), -2.5f);
  EXPECT_EQ(round_trip(3.14159265f), 3.140625f);
  EXPECT_EQ(to_bf16(0.0f).bits, 0x0000);
  EXPECT_EQ(to_bf16(-0.0f).bits, 0x8000);
  EXPECT_EQ(to_bf16(1.0f).bits, 0x3f80);
}

TEST(Bf16, KeepsNaNAndInfinitiesAndOverflowsToInfinity) {
  EXPECT_TRUE(std::isnan(round_trip(std::numeric_limits<float>::quiet_NaN())));
  // A NaN whose payload is only in the low 16 bits must not round to an infinity.
  uint32_t low_nan_bits = 0x7f800001u;
  float low_nan;
  std::memcpy(&low_nan, &low_nan_bits, 4);
  EXPECT_TRUE(std::isnan(round_trip(low_nan)));
  EXPECT_EQ(round_trip(std::numeric_limits<float>::infinity()),
            std::numeric_limits<float>::infinity());
  EXPECT_EQ(round_trip(-std::numeric_limits<float>::infinity()),
            -std::numeric_limits<float>::infinity());
  EXPECT_EQ(round_trip(std::numeric_limits<float>::max()), std::numeric_limits<float>::infinity());
}

TEST(Bf16, ConvertsBothWaysThroughTensors) {
  const Tensor x = from_vector(std::vector<float>{1.0f, 3.14159265f, -1e-3f, 65504.0f}, {4});
  const Tensor h = to(x, DType::bf16);
  EXPECT_EQ(h.dtype(), DType::bf16);
  EXPECT_EQ(h.nbytes(), 8);
  const auto back = to(h, DType::f32).to_vector<float>();
  for (size_t i = 0; i < back.size(); ++i)
    EXPECT_EQ(back[i], round_trip(x.to_vector<float>()[i])) << i;
  EXPECT_EQ(to(h, DType::f64).to_vector<double>()[1], 3.140625);
  EXPECT_EQ(h.to_vector<double>()[1], 3.140625);
  // A strided view converts element by element.
  const Tensor t =
      to(transpose(to(reshape(arange(int64_t(6), DType::f32), {2, 3}), DType::bf16), 0, 1),
         DType::f64);
  EXPECT_EQ(t.to_vector<double>(), (std::vector<double>{0, 3, 1, 4, 2, 5}));
}

TEST(Bf16, OtherOpsRefuseItByName) {
  const Tensor h = to(ones({3}), DType::bf16);
  const std::string msg = test_support::error_of([&] { (void)add(h, h); });
  EXPECT_NE(msg.find("bf16"), std::string::npos) << msg;
}

// f64 A B from bf16-rounded copies of a and b.
std::vector<double> reference(const Tensor& a, const Tensor& b, int64_t m, int64_t k, int64_t n) {
  const auto av = to(to(a.detach(), DType::bf16), DType::f64).to_vector<double>();
  const auto bv = to(to(b.detach(), DType::bf16), DType::f64).to_vector<double>();
  std::vector<double> y(size_t(m * n), 0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t p = 0; p < k; ++p)
        y[size_t(i * n + j)] += av[size_t(i * k + p)] * bv[size_t(p * n + j)];
  return y;
}

double max_rel(const std::vector<double>& got, const std::vector<double>& want) {
  double worst = 0, scale = 0;
  for (double w : want) scale = std::max(scale, std::abs(w));
  for (size_t i = 0; i < got.size(); ++i)
    worst = std::max(worst, std::abs(got[i] - want[i]) / std::max(std::abs(want[i]), 1e-3 * scale));
  return worst;
}

TEST(Autocast, MatmulMultipliesBf16OperandsWithF32Accumulation) {
  Generator gen(3);
  const int64_t m = 17, k = 300, n = 23;
  const Tensor a = randn({m, k}, DType::f32, &gen), b = randn({k, n}, DType::f32, &gen);
  Tensor y;
  {
    Autocast on;
    y = matmul(a, b);
  }
  EXPECT_EQ(y.dtype(), DType::f32);
  const auto want = reference(a, b, m, k, n);
  EXPECT_LE(max_rel(y.to_vector<double>(), want), 1e-5);
  // ... and differs from the f32 product by bf16's rounding of the operands.
  const auto f32 = matmul(a, b).to_vector<double>();
  EXPECT_GT(max_rel(f32, want), 1e-4);
  EXPECT_FALSE(autocast_enabled());
}

TEST(Autocast, GradientsAreF32FromBf16RoundedOperandsAndGradient) {
  Generator gen(4);
  const int64_t m = 9, k = 40, n = 7;
  Tensor a = randn({m, k}, DType::f32, &gen).requires_grad_();
  Tensor w = randn({n, k}, DType::f32, &gen).requires_grad_();
  const Tensor g = randn({m, n}, DType::f32, &gen);
  {
    Autocast on;
    backward(linear(a, w), g);
  }
  ASSERT_TRUE(a.grad().defined());
  EXPECT_EQ(a.grad().dtype(), DType::f32);
  EXPECT_EQ(w.grad().dtype(), DType::f32);
  // ga = round(g) round(w), gw = round(g)^T round(a).
  EXPECT_LE(max_rel(a.grad().to_vector<double>(), reference(g, w, m, n, k)), 1e-5);
  EXPECT_LE(max_rel(w.grad().to_vector<double>(),
                    reference(contiguous(transpose(g, 0, 1)), a.detach(), n, m, k)),
            1e-5);
}

TEST(Autocast, KeepsTheBf16CopiesForBackwardHalfTheF32Bytes) {
  Generator gen(5);
  Tensor x = randn({64, 256}, DType::f32, &gen).requires_grad_();
  Tensor w = randn({256, 256}, DType::f32, &gen).requires_grad_();
  const int64_t before = memory_stats().live_bytes;
  Tensor y;
  {
    Autocast on;
    y = matmul(x, w);
  }
  const int64_t kept = memory_stats().live_bytes - before - y.nbytes();
  EXPECT_EQ(kept, (x.nbytes() + w.nbytes()) / 2);
}

TEST(Autocast, Bf16TensorsTakeNoGradients) {
  Tensor h = to(ones({2, 2}), DType::bf16);
  const std::string msg = test_support::error_of([&] { h.requires_grad_(); });
  EXPECT_NE(msg.find("bf16"), std::string::npos) << msg;
}

Tensor rounded(const Tensor& x) { return to(to(x, DType::bf16), DType::f32); }

// Convolution and flash attention under autocast are the f32 kernels on bf16-rounded operands,
// with the gradient rounded too: the same values, bit for bit, as that computation by hand.
TEST(Autocast, ConvolutionIsTheF32KernelOnRoundedOperandsBothWays) {
  Generator gen(7);
  Tensor x = randn({2, 3, 9, 8}, DType::f32, &gen).requires_grad_();
  Tensor w = randn({4, 3, 3, 3}, DType::f32, &gen).requires_grad_();
  const Tensor g = randn({2, 4, 5, 4}, DType::f32, &gen);
  const ConvOptions o{.stride = {2}, .padding = {1}};
  Tensor y;
  {
    Autocast on;
    y = conv(x, w, {}, o);
    backward(y, g);
  }
  Tensor xr = rounded(x.detach()).requires_grad_(), wr = rounded(w.detach()).requires_grad_();
  Tensor yr = conv(xr, wr, {}, o);
  backward(yr, rounded(g));
  EXPECT_EQ(y.to_vector<float>(), yr.to_vector<float>());
  EXPECT_EQ(x.grad().to_vector<float>(), xr.grad().to_vector<float>());
  EXPECT_EQ(w.grad().to_vector<float>(), wr.grad().to_vector<float>());
  EXPECT_NE(y.to_vector<float>(), conv(x.detach(), w.detach(), {}, o).to_vector<float>());
}

TEST(Autocast, FlashAttentionIsTheF32KernelOnRoundedOperandsBothWays) {
  Generator gen(8);
  const Shape s = {1, 2, 19, 16};
  Tensor q = randn(s, DType::f32, &gen).requires_grad_();
  Tensor k = randn(s, DType::f32, &gen).requires_grad_();
  Tensor v = randn(s, DType::f32, &gen).requires_grad_();
  const Tensor g = randn(s, DType::f32, &gen);
  AttentionOptions o;
  o.causal = true;
  Tensor y;
  {
    Autocast on;
    y = flash_attention(q, k, v, o);
    backward(y, g);
  }
  Tensor qr = rounded(q.detach()).requires_grad_(), kr = rounded(k.detach()).requires_grad_(),
         vr = rounded(v.detach()).requires_grad_();
  Tensor yr = flash_attention(qr, kr, vr, o);
  backward(yr, rounded(g));
  EXPECT_EQ(y.to_vector<float>(), yr.to_vector<float>());
  EXPECT_EQ(q.grad().to_vector<float>(), qr.grad().to_vector<float>());
  EXPECT_EQ(k.grad().to_vector<float>(), kr.grad().to_vector<float>());
  EXPECT_EQ(v.grad().to_vector<float>(), vr.grad().to_vector<float>());
}

TEST(Autocast, ConvolutionKeepsBf16CopiesForBackward) {
  Generator gen(9);
  Tensor x = randn({4, 16, 20, 20}, DType::f32, &gen).requires_grad_();
  Tensor w = randn({16, 16, 3, 3}, DType::f32, &gen).requires_grad_();
  const int64_t before = memory_stats().live_bytes;
  Tensor y;
  {
    Autocast on;
    y = conv(x, w, {}, {.padding = {1}});
  }
  EXPECT_EQ(memory_stats().live_bytes - before - y.nbytes(), (x.nbytes() + w.nbytes()) / 2);
}

TEST(Bf16, ACopyOfATensorThatNeedsGradIsRefused) {
  Tensor x = ones({2}).requires_grad_();
  const std::string msg = test_support::error_of([&] { (void)to(x, DType::bf16); });
  EXPECT_NE(msg.find("Autocast"), std::string::npos) << msg;
  NoGrad no_grad;
  EXPECT_EQ(to(x, DType::bf16).dtype(), DType::bf16);
}

TEST(Bf16, WeightsLoadIntoF32ParametersAndNonFiniteValuesAreFound) {
  Generator gen(10);
  nn::Linear a(5, 3, true, &gen), b(5, 3, true, &gen);
  nn::NamedTensors half;
  {
    NoGrad no_grad;
    for (const auto& [n, t] : a.state_dict()) half.emplace_back(n, to(t, DType::bf16));
  }
  b.load_state_dict(half);
  const nn::NamedTensors sa = a.state_dict(), sb = b.state_dict();
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sb.size(); ++i) {
    ASSERT_EQ(sb[i].first, sa[i].first);
    ASSERT_EQ(sb[i].second.dtype(), DType::f32);
    EXPECT_EQ(sb[i].second.to_vector<float>(), rounded(sa[i].second.detach()).to_vector<float>())
        << sb[i].first;
  }
  TensorFile f;
  f.tensors.emplace_back(
      "w", to(from_vector(std::vector<float>{1, std::nanf(""), 2}, {3}), DType::bf16));
  EXPECT_NE(first_nonfinite(f).find("flat index 1"), std::string::npos) << first_nonfinite(f);
}

// gpt-tiny's loss under autocast stays within bf16's rounding of the f32 loss (training under it:
// tests/tools/test_cli.cpp).
TEST(Autocast, GptTinyLossIsCloseToTheF32Loss) {
  models::GptConfig c = models::gpt_tiny();
  c.layers = 2;
  Generator gen(6);
  models::Gpt model(c, &gen);
  std::vector<int64_t> tok(2 * 64), next(2 * 64);
  for (size_t i = 0; i < tok.size(); ++i) {
    tok[i] = int64_t((i * 37 + 11) % size_t(c.vocab));
    next[i] = int64_t((i * 37 + 48) % size_t(c.vocab));
  }
  const Tensor idx = from_vector(tok, {2, 64}), targets = from_vector(next, {128});
  auto loss = [&] { return cross_entropy(reshape(model.forward(idx), {128, c.vocab}), targets); };
  const double f32 = loss().item();
  double bf = 0;
  {
    Autocast on;
    bf = loss().item();
  }
  EXPECT_NE(bf, f32);
  EXPECT_NEAR(bf, f32, 1e-2 * std::abs(f32));
}

}  // namespace
}  // namespace spool
