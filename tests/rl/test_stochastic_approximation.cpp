// Stochastic approximation: incremental means, Robbins-Monro, and gradient descent on a mean.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/error.h"
#include "rl/stochastic_approximation.h"

namespace spool::rl {
namespace {

TEST(StochasticApproximation, TheIncrementalMeanIsTheSampleMean) {
  const MeanEstimate m = incremental_mean(2.0, 3.0, 500, 4);
  double sum = 0;
  for (size_t k = 0; k < m.samples.size(); ++k) {
    sum += m.samples[k];
    EXPECT_NEAR(m.estimates[k], sum / double(k + 1), 1e-12 * (1 + std::abs(sum)));
  }
}

TEST(StochasticApproximation, RobbinsMonroFindsTheCubeRootOfFive) {
  RobbinsMonroOptions o;
  o.noise = 1.0;
  o.iterations = 10000;
  o.lo = 0;
  o.hi = 3;
  for (uint64_t seed = 0; seed < 5; ++seed) {
    o.seed = seed;
    const auto w = robbins_monro([](double x) { return x * x * x - 5; }, o);
    ASSERT_EQ(w.size(), 10001u);
    EXPECT_NEAR(w.back(), std::cbrt(5.0), 1e-2) << "seed " << seed;
  }
}

TEST(StochasticApproximation, RobbinsMonroOnTanhConvergesFromAfar) {
  RobbinsMonroOptions o;
  o.w1 = 3;
  o.noise = 1.0;
  o.iterations = 100000;
  const auto w = robbins_monro([](double x) { return std::tanh(x - 1); }, o);
  EXPECT_NEAR(w.back(), 1.0, 1e-2);
}

// w^3 - 5 grows faster than linearly, outside what the theorem allows: from w1 = 0 with
// a_1 = 1 the first steps overshoot ever further and the iterates leave the doubles.
TEST(StochasticApproximation, UnprojectedRobbinsMonroOnTheCubicDivergesAndSaysSo) {
  RobbinsMonroOptions o;
  o.iterations = 100;
  const auto w = robbins_monro([](double x) { return x * x * x - 5; }, o);
  EXPECT_LT(w.size(), 101u);
  EXPECT_GT(std::abs(w.back()), 1e10);
}

TEST(StochasticApproximation, StepSizesAndTheirConditions) {
  const StepSize a = parse_step_size("1/k"), b = parse_step_size("0.5/k^2"),
                 c = parse_step_size("1/sqrt(k)"), d = parse_step_size("0.01");
  EXPECT_EQ(a.at(4), 0.25);
  EXPECT_EQ(b.at(2), 0.125);
  EXPECT_EQ(c.at(4), 0.5);
  EXPECT_EQ(d.at(1000), 0.01);
  EXPECT_TRUE(a.sum_diverges() && a.square_sum_converges());
  EXPECT_FALSE(b.sum_diverges());
  EXPECT_FALSE(c.square_sum_converges());
  EXPECT_FALSE(d.square_sum_converges());
  EXPECT_EQ(b.name(), "0.5/k^2");
  EXPECT_THROW(parse_step_size("1/j"), Error);
  EXPECT_THROW(parse_step_size("-1/k"), Error);
  EXPECT_THROW(parse_step_size(""), Error);
}

TEST(StochasticApproximation, LargerBatchesEstimateTheMeanFasterAndTheFullBatchInOneStep) {
  const auto points = uniform_square(400, 60, 3);
  double mx = 0, my = 0;
  for (const auto& p : points) {
    mx += p[0] / 400;
    my += p[1] / 400;
  }
  const auto full = mean_by_gradient_descent(points, 400, 5, {50, 50}, 0);
  EXPECT_NEAR(full[1][0], mx, 1e-9);  // a_1 = 1: one step lands on the mean
  EXPECT_NEAR(full[1][1], my, 1e-9);
  // Averaged over seeds, the distance after 50 iterations falls with the batch.
  double d1 = 0, d5 = 0, d50 = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    auto dist = [&](int64_t batch) {
      const auto w = mean_by_gradient_descent(points, batch, 50, {50, 50}, seed);
      return std::hypot(w.back()[0] - mx, w.back()[1] - my);
    };
    d1 += dist(1);
    d5 += dist(5);
    d50 += dist(50);
  }
  EXPECT_GT(d1, d5);
  EXPECT_GT(d5, d50);
}

}  // namespace
}  // namespace spool::rl
