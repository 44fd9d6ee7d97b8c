// Optimizers against updates computed by hand, schedules, clipping and optimizer state.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "engine/autograd.h"
#include "engine/factory.h"
#include "nn/optim.h"
#include "ops/ops.h"

using namespace spool;

namespace {
Tensor param(std::vector<float> v) {
  Tensor p = from_vector(v);
  p.requires_grad_();
  return p;
}
void set_grad(Tensor& p, std::vector<float> g) { p.set_grad(from_vector(g)); }
}  // namespace

TEST(Optim, SgdWithMomentumFollowsPyTorchsUpdateRule) {
  Tensor p = param({1.0f});
  nn::SGD opt({p}, {.lr = 0.1, .momentum = 0.9});
  set_grad(p, {2.0f});
  opt.step();  // v = 2, p = 1 - 0.2
  EXPECT_FLOAT_EQ(p.at({0}), 0.8f);
  set_grad(p, {1.0f});
  opt.step();  // v = 0.9 * 2 + 1 = 2.8, p = 0.8 - 0.28
  EXPECT_FLOAT_EQ(p.at({0}), 0.52f);
}

TEST(Optim, SgdNesterovAndWeightDecay) {
  Tensor p = param({1.0f});
  nn::SGD opt({p}, {.lr = 0.1, .momentum = 0.5, .weight_decay = 0.1, .nesterov = true});
  set_grad(p, {1.0f});
  opt.step();  // g = 1 + 0.1 = 1.1, v = 1.1, step = g + 0.5 v = 1.65
  EXPECT_NEAR(p.at({0}), 1.0 - 0.165, 1e-6);
}

TEST(Optim, AdamWFirstStepsMatchTheFormula) {
  Tensor p = param({1.0f, -2.0f});
  const double lr = 0.01, wd = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  nn::AdamW opt({p}, {.lr = lr, .weight_decay = wd});
  double ref[2] = {1.0, -2.0}, m[2] = {0, 0}, v[2] = {0, 0};
  const float grads[2][2] = {{0.5f, -1.0f}, {0.25f, 3.0f}};
  for (int t = 1; t <= 2; ++t) {
    set_grad(p, {grads[t - 1][0], grads[t - 1][1]});
    opt.step();
    for (int i = 0; i < 2; ++i) {
      const double g = grads[t - 1][i];
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      ref[i] *= 1 - lr * wd;
      ref[i] -=
          lr * (m[i] / (1 - std::pow(b1, t))) / (std::sqrt(v[i] / (1 - std::pow(b2, t))) + eps);
    }
    EXPECT_NEAR(p.at({0}), ref[0], 1e-6) << "step " << t;
    EXPECT_NEAR(p.at({1}), ref[1], 1e-6) << "step " << t;
  }
}

TEST(Optim, AdamCouplesWeightDecayIntoTheGradient) {
  Tensor p = param({1.0f});
  nn::Adam opt({p}, {.lr = 0.1, .weight_decay = 1.0});
  set_grad(p, {0.0f});  // the decay alone gives g = 1, so the first Adam step is -lr
  opt.step();
  EXPECT_NEAR(p.at({0}), 0.9, 1e-6);
}

TEST(Optim, ParameterGroupsOverrideWeightDecay) {
  Tensor w = param({1.0f}), b = param({1.0f});
  nn::AdamW opt({{{w}, {}}, {{b}, 0.0}}, {.lr = 0.1, .weight_decay = 0.5});
  set_grad(w, {0.0f});
  set_grad(b, {0.0f});
  opt.step();  // zero gradient: only decoupled decay moves w
  EXPECT_NEAR(w.at({0}), 1.0 - 0.1 * 0.5, 1e-6);
  EXPECT_FLOAT_EQ(b.at({0}), 1.0f);
}

TEST(Optim, ParametersWithoutGradientsAreSkipped) {
  Tensor p = param({3.0f});
  nn::AdamW opt({p}, {});
  opt.step();
  EXPECT_FLOAT_EQ(p.at({0}), 3.0f);
}

TEST(Optim, StateRoundTripsAndContinuesIdentically) {
  Tensor p = param({1.0f, 2.0f}), q = param({1.0f, 2.0f});
  nn::AdamW a({p}, {.lr = 0.1}), b({q}, {.lr = 0.1});
  set_grad(p, {0.3f, -0.2f});
  a.step();
  b.load_state(a.state());
  {
    NoGrad ng;
    copy_(q, p);
  }
  set_grad(p, {0.1f, 0.4f});
  set_grad(q, {0.1f, 0.4f});
  a.step();
  b.step();
  EXPECT_EQ(p.to_vector<float>(), q.to_vector<float>());
  EXPECT_EQ(b.steps(), 2);
}

TEST(Optim, BadOptionsAreRefusedWithTheirNames) {
  Tensor p = param({1.0f});
  EXPECT_THROW(nn::SGD({p}, {.lr = -1}), Error);
  EXPECT_THROW(nn::SGD({p}, {.lr = 0.1, .nesterov = true}), Error);
  try {
    nn::AdamW({p}, {.beta1 = 1.5});
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("AdamW: betas (1.5"));
  }
  EXPECT_THROW(nn::AdamW({from_vector(std::vector<int64_t>{1})}, {}), Error);
}

TEST(Optim, ClipGradNormScalesToTheLimitAndReturnsTheNorm) {
  Tensor p = param({0, 0}), q = param({0});
  set_grad(p, {3.0f, 0.0f});
  set_grad(q, {4.0f});
  EXPECT_NEAR(nn::clip_grad_norm({p, q}, 1.0), 5.0, 1e-6);
  EXPECT_NEAR(p.grad().at({0}), 0.6, 1e-5);
  EXPECT_NEAR(q.grad().at({0}), 0.8, 1e-5);
  EXPECT_NEAR(nn::clip_grad_norm({p, q}, 10.0), 1.0, 1e-5);  // under the limit: unchanged
  EXPECT_NEAR(p.grad().at({0}), 0.6, 1e-5);
}

// The exact sum of squares: the same bits in any order and any split (the norm of data
// parallel's shards is the whole gradients' norm), exact where a double holds the sum, and a
// float sum's inf and NaN.
TEST(Optim, SquareSumIsExactAndTheSameInAnyOrderAndSplit) {
  std::mt19937 rng(5);
  std::vector<float> x(10007);
  for (float& v : x) {  // magnitudes over 60 binades, denormals among them
    const float m = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
    v = std::ldexp(m, int(rng() % 60) - 40);
  }
  x[3] = 1e-40f;
  nn::SquareSum whole;
  whole.add(x.data(), int64_t(x.size()));
  std::vector<float> shuffled = x;
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  nn::SquareSum a, b, c;
  a.add(shuffled.data(), 5000);
  b.add(shuffled.data() + 5000, 3000);
  c.add(shuffled.data() + 8000, int64_t(shuffled.size()) - 8000);
  nn::SquareSum parts = c;
  parts.add(a);
  parts.add(b);
  EXPECT_EQ(parts.value(), whole.value());
  // Through limbs, as between processes: two halves' limbs added as an all-reduce would.
  const std::vector<double> la = a.limbs(), lbc = [&] {
    nn::SquareSum bc = b;
    bc.add(c);
    return bc.limbs();
  }();
  std::vector<double> summed(la.size());
  for (size_t i = 0; i < la.size(); ++i) summed[i] = la[i] + lbc[i];
  EXPECT_EQ(nn::SquareSum::from_limbs(summed.data()).value(), whole.value());
  // Against a long double sum of the squares (64-bit significand): equal to within its rounding.
  long double ref = 0;
  for (float v : x) ref += (long double)v * (long double)v;
  EXPECT_NEAR(whole.value() / double(ref), 1.0, 1e-15);
  // Small integers: exact.
  const std::vector<float> ints = {3, -4, 12, 0, 1};
  nn::SquareSum s;
  s.add(ints.data(), int64_t(ints.size()));
  EXPECT_EQ(s.value(), 9.0 + 16.0 + 144.0 + 1.0);
  const float inf = INFINITY, nan = NAN;
  nn::SquareSum si = s, sn = s;
  si.add(&inf, 1);
  sn.add(&nan, 1);
  EXPECT_EQ(si.value(), INFINITY);
  EXPECT_TRUE(std::isnan(sn.value()));
}

TEST(Optim, CosineScheduleWarmsUpLinearlyThenDecaysToTheMinimum) {
  nn::CosineSchedule s{1.0, 4, 14, 0.1};
  EXPECT_DOUBLE_EQ(s.at(0), 0.25);
  EXPECT_DOUBLE_EQ(s.at(3), 1.0);
  EXPECT_DOUBLE_EQ(s.at(4), 1.0);
  EXPECT_NEAR(s.at(9), 0.55, 1e-12);  // half way: min + (base - min) / 2
  EXPECT_DOUBLE_EQ(s.at(14), 0.1);
  EXPECT_DOUBLE_EQ(s.at(100), 0.1);
}

// Time-bounded runs: the warm-up still counts steps, the cosine follows the share of the run.
TEST(Optim, CosineScheduleByProgressWarmsUpByStepsAndDecaysByShare) {
  nn::CosineSchedule s{1.0, 4, 1000000, 0.1};
  EXPECT_DOUBLE_EQ(s.at_progress(0, 0.0), 0.25);
  EXPECT_DOUBLE_EQ(s.at_progress(3, 0.0), 1.0);
  EXPECT_NEAR(s.at_progress(50, 0.5), 0.55, 1e-12);
  EXPECT_NEAR(s.at_progress(1, 0.5), 0.55 * 0.5, 1e-12);  // still warming up
  EXPECT_DOUBLE_EQ(s.at_progress(50, 1.0), 0.1);
  EXPECT_DOUBLE_EQ(s.at_progress(50, 7.0), 0.1);  // past the end: clamped
}

// Time-bounded runs whose whole schedule follows the share of time (the video schedule): with a
// million steps asked for and a few hundred made, the warm-up still ends at 1/20 of the time.
TEST(Optim, CosineScheduleByShareReadsWarmUpAndCosineAtTheShareOfTheRun) {
  nn::CosineSchedule s{1.0, 50000, 1000000, 0.0};
  EXPECT_DOUBLE_EQ(s.at_share(0, 0.0), s.at(0));
  EXPECT_DOUBLE_EQ(s.at_share(10, 0.06), s.at(60000));  // past the warm-up after 6 % of the time
  EXPECT_GT(s.at_share(10, 0.06), 0.95);
  EXPECT_LT(s.at_progress(10, 0.06), 0.001);       // counting steps, the warm-up is barely begun
  EXPECT_NEAR(s.at_share(10, 0.525), 0.5, 1e-12);  // half way through the cosine
  EXPECT_LT(s.at_share(10, 0.999), 1e-5);
  EXPECT_DOUBLE_EQ(s.at_share(10, 3.0), s.at(999999));      // past the end: clamped
  EXPECT_DOUBLE_EQ(s.at_share(700000, 0.1), s.at(700000));  // the steps further on than time
}

TEST(Optim, StepScheduleDecaysEveryStepSize) {
  nn::StepSchedule s{1.0, 10, 0.5};
  EXPECT_DOUBLE_EQ(s.at(9), 1.0);
  EXPECT_DOUBLE_EQ(s.at(10), 0.5);
  EXPECT_DOUBLE_EQ(s.at(25), 0.25);
}
