// Policy evaluation, value iteration, policy iteration and truncated policy iteration.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/error.h"
#include "rl/model_based.h"
#include "rl/sampler.h"

namespace spool::rl {
namespace {

int64_t cell(int64_t row, int64_t col) { return (row - 1) * 5 + (col - 1); }  // 1-indexed

// A random layout: its size, forbidden cells, target, rewards, discount and slip.
GridWorld random_grid(uint64_t seed) {
  Sampler r(seed);
  GridWorld g;
  g.rows = 2 + r.below(5);
  g.cols = 2 + r.below(5);
  for (int64_t s = 0; s < g.rows * g.cols; ++s) g.forbidden.push_back(r.uniform() < 0.25);
  g.target = r.below(g.rows * g.cols);
  g.r_boundary = -r.uniform() * 2;
  g.r_forbidden = -r.uniform() * 3;
  g.r_target = 0.5 + r.uniform();
  g.r_other = -0.1 * r.uniform();
  g.gamma = 0.5 + 0.45 * r.uniform();
  g.slip = r.uniform() < 0.5 ? 0 : 0.3 * r.uniform();
  g.check();
  return g;
}

TEST(ModelBased, ClosedFormEvaluationEqualsIterativeEvaluation) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const GridWorld g = seed == 0 ? standard_grid() : random_grid(seed);
    // A random stochastic policy.
    Sampler r(seed + 100);
    Policy pi(size_t(g.states() * kActions));
    for (int64_t s = 0; s < g.states(); ++s) {
      double sum = 0;
      for (int a = 0; a < kActions; ++a) sum += pi[size_t(s * kActions + a)] = r.uniform() + 0.01;
      for (int a = 0; a < kActions; ++a) pi[size_t(s * kActions + a)] /= sum;
    }
    const Values exact = evaluate_closed_form(g, pi);
    const Solution it = evaluate_iteratively(g, pi, 1e-12);
    EXPECT_LT(sup_distance(exact, it.v), 1e-9) << "grid " << seed;
    // The closed form satisfies the Bellman equation v = r_pi + gamma P_pi v.
    const auto q = action_values(g, exact);
    for (int64_t s = 0; s < g.states(); ++s) {
      double rhs = 0;
      for (int a = 0; a < kActions; ++a)
        rhs += pi[size_t(s * kActions + a)] * q[size_t(s * kActions + a)];
      EXPECT_NEAR(exact[size_t(s)], rhs, 1e-10) << "grid " << seed << " state " << s;
    }
    EXPECT_LT(it.curve.back(), 1e-9);
  }
}

// Values worked out by hand from the rules (gamma 0.9): the target is worth staying in forever,
// 1 / (1 - 0.9) = 10; a cell one move from it 1 + 0.9 x 10 = 10, even a forbidden one; (5,4)
// steps left onto an ordinary cell beside the target, 0 + 0.9 x 10 = 9 (up is into a forbidden
// cell, -1 + 9 = 8); (4,5)'s best is into the forbidden (4,4), -1 + 0.9 x 10 = 8; (5,5) goes
// left, 0.9 x 9 = 8.1.
TEST(ModelBased, TheStandardGridsOptimalValuesMatchTheOnesWorkedOutByHand) {
  const GridWorld g = standard_grid();
  const Solution vi = value_iteration(g, 1e-12);
  const std::pair<int64_t, double> known[] = {
      {cell(4, 3), 10.0}, {cell(5, 3), 10.0}, {cell(3, 3), 10.0}, {cell(4, 2), 10.0},
      {cell(4, 4), 10.0}, {cell(5, 4), 9.0},  {cell(4, 5), 8.0},  {cell(5, 5), 8.1}};
  for (const auto& [s, v] : known) EXPECT_NEAR(vi.v[size_t(s)], v, 1e-9) << "state " << s;
  const auto actions = policy_actions(vi.pi);
  EXPECT_EQ(actions[size_t(cell(4, 3))], kStay);
  EXPECT_EQ(actions[size_t(cell(5, 3))], kUp);
  EXPECT_EQ(actions[size_t(cell(5, 4))], kLeft);
  EXPECT_EQ(actions[size_t(cell(5, 5))], kLeft);
  EXPECT_EQ(actions[size_t(cell(4, 5))], kLeft);
}

TEST(ModelBased, ValueIterationPolicyIterationAndTruncatedPolicyIterationAgree) {
  for (uint64_t seed = 0; seed < 30; ++seed) {
    const GridWorld g = seed == 0 ? standard_grid() : random_grid(seed);
    const Optimum best = optimum(g);
    const Solution vi = value_iteration(g, 1e-12), pi = policy_iteration(g);
    const Solution tpi1 = truncated_policy_iteration(g, 1, 1e-12),
                   tpi5 = truncated_policy_iteration(g, 5, 1e-12);
    for (const Solution* s : {&vi, &pi, &tpi1, &tpi5}) {
      EXPECT_LT(sup_distance(s->v, best.v), 1e-8) << "grid " << seed;
      // Policies may differ only where actions tie: each one's action is optimal.
      const auto actions = policy_actions(s->pi);
      for (int64_t st = 0; st < g.states(); ++st)
        EXPECT_TRUE(is_optimal_action(best, st, actions[size_t(st)]))
            << "grid " << seed << " state " << st;
      EXPECT_LT(s->curve.back(), 1e-8);
    }
    // Policy iteration needs the fewest iterations, value iteration the most; five sweeps
    // of evaluation sit between.
    EXPECT_LE(pi.iterations, tpi5.iterations) << "grid " << seed;
    EXPECT_LE(tpi5.iterations, vi.iterations) << "grid " << seed;
    EXPECT_NEAR(double(tpi1.iterations), double(vi.iterations), 1)
        << "one sweep is value iteration";
  }
}

TEST(ModelBased, ValueIterationsErrorShrinksByGammaEachIterationAtMost) {
  const GridWorld g = standard_grid();
  const Solution vi = value_iteration(g, 1e-12);
  ASSERT_GT(vi.curve.size(), 10u);
  // The Bellman optimality operator is a gamma-contraction in the sup norm.
  for (size_t k = 1; k < vi.curve.size(); ++k)
    EXPECT_LE(vi.curve[k], g.gamma * vi.curve[k - 1] + 1e-12) << "iteration " << k + 1;
}

TEST(ModelBased, APolicyThatIsNotADistributionIsRefused) {
  const GridWorld g = standard_grid();
  Policy pi = uniform_policy(g);
  pi[3] = 0.5;
  EXPECT_THROW(evaluate_closed_form(g, pi), Error);
  EXPECT_THROW(evaluate_closed_form(g, Policy(7, 0.2)), Error);
}

}  // namespace
}  // namespace spool::rl
