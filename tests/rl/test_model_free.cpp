// Monte Carlo and temporal-difference learning on the standard grid, with fixed seeds: the
// control methods reach an optimal policy in every state, TD(0) the policy's values.
#include <gtest/gtest.h>

#include "engine/error.h"
#include "rl/model_free.h"

namespace spool::rl {
namespace {

ModelFreeOptions options(int64_t episodes, int64_t length) {
  ModelFreeOptions o;
  o.episodes = episodes;
  o.length = length;
  o.seed = 1;
  return o;
}

void expect_optimal_everywhere(const GridWorld& g, const Learned& l, const char* what) {
  const Optimum best = optimum(g);
  const auto actions = greedy_actions(l.q);
  for (int64_t s = 0; s < g.states(); ++s)
    EXPECT_TRUE(is_optimal_action(best, s, actions[size_t(s)]))
        << what << ": state " << s << " takes " << action_name(actions[size_t(s)]);
  ASSERT_FALSE(l.curve.empty());
  EXPECT_EQ(l.curve.back().optimal_rate, 1.0) << what;
}

TEST(ModelFree, MonteCarloBasicReachesTheOptimalPolicyAndValues) {
  const GridWorld g = standard_grid();
  const Learned l = mc_basic(g, options(20, 100));
  expect_optimal_everywhere(g, l, "MC Basic");
  // Deterministic world and policy: one episode a pair is the exact (truncated) return.
  EXPECT_LT(l.curve.back().value_error, 1e-3);
}

// With a constant step size, q forgets the returns of the earlier policies and MC Exploring
// Starts ends optimal in every cell, first-visit or every-visit. The textbook average keeps those
// returns: after as many episodes it is optimal in most cells (0.88 to 1 over seeds 0-3), the
// misses where two actions' values differ by 0.1.
TEST(ModelFree, MonteCarloExploringStartsReachesTheOptimalPolicy) {
  const GridWorld g = standard_grid();
  for (bool first_visit : {true, false}) {
    ModelFreeOptions o = options(100000, 100);
    o.first_visit = first_visit;
    o.mc_alpha = 0.1;
    expect_optimal_everywhere(g, mc_exploring_starts(g, o),
                              first_visit ? "MC ES first-visit" : "MC ES every-visit");
    o.mc_alpha = 0;
    const Learned averaged = mc_exploring_starts(g, o);
    EXPECT_GE(averaged.curve.back().optimal_rate, 0.88);
    EXPECT_LT(averaged.curve.front().optimal_rate, averaged.curve.back().optimal_rate);
  }
}

// The epsilon-greedy methods learn the values of the epsilon-greedy policy, which avoids cells
// next to forbidden ones; with epsilon falling to 0 over the run (GLIE) they end greedy and
// optimal. Short episodes (20 steps) keep them from spending their steps staying in the target.
TEST(ModelFree, SarsaAndQLearningReachTheOptimalPolicy) {
  const GridWorld g = standard_grid();
  ModelFreeOptions o = options(400000, 20);
  o.epsilon = 0.5;
  o.decay_epsilon = true;
  expect_optimal_everywhere(g, sarsa(g, o), "Sarsa");
  o.episodes = 100000;
  expect_optimal_everywhere(g, q_learning(g, o, false), "Q-learning on-policy");
  // Off-policy: the uniform random behaviour, the greedy target; q converges to q*.
  const Learned off = q_learning(g, options(100, 1000), true);
  expect_optimal_everywhere(g, off, "Q-learning off-policy");
  EXPECT_LT(off.curve.back().value_error, 0.5);
}

// 3-step Sarsa under the same schedule ends optimal in most cells but not all (0.92 to 1 of them
// over seeds 1-3): the check is that it learns, not that it ends exact.
TEST(ModelFree, NStepSarsaLearnsMostOfTheOptimalPolicy) {
  const GridWorld g = standard_grid();
  ModelFreeOptions o = options(400000, 20);
  o.epsilon = 0.5;
  o.decay_epsilon = true;
  o.n = 3;
  const Learned l = sarsa(g, o);
  ASSERT_FALSE(l.curve.empty());
  EXPECT_GT(l.curve.front().value_error, 2.0);
  EXPECT_GE(l.curve.back().optimal_rate, 0.88);
  EXPECT_LT(l.curve.back().value_error, 0.5);
}

TEST(ModelFree, TdZeroEstimatesThePolicysValues) {
  const GridWorld g = standard_grid();
  ModelFreeOptions o = options(2000, 100);
  o.alpha = 0.02;
  const Learned l = td0(g, uniform_policy(g), o);
  ASSERT_FALSE(l.curve.empty());
  EXPECT_GT(l.curve.front().value_error, 1.0);
  EXPECT_LT(l.curve.back().value_error, 0.3);
}

TEST(ModelFree, RunsRepeatExactlyFromTheirSeed) {
  const GridWorld g = standard_grid();
  const ModelFreeOptions o = options(50, 50);
  EXPECT_EQ(sarsa(g, o).q, sarsa(g, o).q);
  ModelFreeOptions other = o;
  other.seed = 2;
  EXPECT_NE(sarsa(g, o).q, sarsa(g, other).q);
}

TEST(ModelFree, BadOptionsAreRefusedByName) {
  const GridWorld g = standard_grid();
  ModelFreeOptions o = options(10, 10);
  o.epsilon = 1.5;
  EXPECT_THROW(sarsa(g, o), Error);
  o = options(10, 10);
  o.alpha = 0;
  EXPECT_THROW(q_learning(g, o, false), Error);
  o = options(0, 10);
  EXPECT_THROW(mc_basic(g, o), Error);
}

}  // namespace
}  // namespace spool::rl
