// Policy gradient, actor-critic and DQN through the autograd. The gradient checks compare each
// method's sampled gradient estimate with finite differences of the exact objective J(theta):
// the mean over start cells of v_pi, which the model gives in closed form for a tabular softmax
// policy.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/autograd.h"
#include "engine/factory.h"
#include "nn/linear.h"
#include "rl/dqn.h"
#include "rl/model_based.h"
#include "rl/policy_gradient.h"

namespace spool::rl {
namespace {

// A 2 x 3 grid with gamma 0.5, so 30 steps leave 1e-9 of the return out.
GridWorld small_grid() {
  GridWorld g = parse_grid("gamma 0.5\n.#T\n...\n", "small");
  return g;
}

// pi(a | s) = softmax over a of W[a][s] (W: the Linear's weight [5, S]).
Policy softmax_policy(const std::vector<double>& W, int64_t states) {
  Policy pi(size_t(states * kActions));
  for (int64_t s = 0; s < states; ++s) {
    double m = -1e300, z = 0;
    for (int a = 0; a < kActions; ++a) m = std::max(m, W[size_t(a * states + s)]);
    for (int a = 0; a < kActions; ++a) z += std::exp(W[size_t(a * states + s)] - m);
    for (int a = 0; a < kActions; ++a)
      pi[size_t(s * kActions + a)] = std::exp(W[size_t(a * states + s)] - m) / z;
  }
  return pi;
}

double objective(const GridWorld& g, const std::vector<double>& W) {
  const Values v = evaluate_closed_form(g, softmax_policy(W, g.states()));
  double j = 0;
  for (double x : v) j += x / double(v.size());
  return j;
}

// d J / d W by central differences in f64.
std::vector<double> exact_gradient(const GridWorld& g, std::vector<double> W) {
  std::vector<double> grad(W.size());
  for (size_t i = 0; i < W.size(); ++i) {
    const double w = W[i], h = 1e-5;
    W[i] = w + h;
    const double up = objective(g, W);
    W[i] = w - h;
    const double down = objective(g, W);
    W[i] = w;
    grad[i] = (up - down) / (2 * h);
  }
  return grad;
}

double relative_error(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0, n = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    d += (a[i] - b[i]) * (a[i] - b[i]);
    n += b[i] * b[i];
  }
  return std::sqrt(d / n);
}

struct TabularPolicy {
  GridWorld g = small_grid();
  GridEnvironment env{small_grid(), 30};
  Generator gen{5};
  std::shared_ptr<nn::Sequential> policy = policy_network(6, 0, kActions, &gen);
  std::vector<double> weights() {
    const auto w = (*policy)[0]->named_parameters()[0].second.to_vector<float>();
    return {w.begin(), w.end()};
  }
  std::vector<Episode> episodes(int64_t n, uint64_t seed) {
    Sampler rng(seed);
    std::vector<Episode> out;
    for (int64_t i = 0; i < n; ++i) out.push_back(run_episode(env, *policy, rng));
    return out;
  }
  // The gradient of the surrogate loss with respect to the policy's weight, negated: the
  // estimate of dJ/dW.
  std::vector<double> estimate(const Tensor& loss) {
    for (auto p : policy->parameters()) p.set_grad(Tensor());
    backward(loss);
    const auto g = policy->parameters()[0].grad().to_vector<float>();
    std::vector<double> out;
    for (float x : g) out.push_back(-double(x));
    return out;
  }
};

TEST(PolicyGradient, ReinforcesEstimateIsTheGradientOfTheDiscountedObjective) {
  TabularPolicy s;
  const auto exact = exact_gradient(s.g, s.weights());
  const auto eps = s.episodes(6000, 1);
  const auto est = s.estimate(reinforce_loss(*s.policy, eps, s.g.gamma, 0.0, true));
  EXPECT_LT(relative_error(est, exact), 0.1);
  // Without the gamma^t weights the estimate follows another direction (late steps weigh as
  // much as early ones): the check can tell them apart.
  const auto undiscounted = s.estimate(reinforce_loss(*s.policy, eps, s.g.gamma, 0.0, false));
  EXPECT_GT(relative_error(undiscounted, exact), 0.3);
}

TEST(PolicyGradient, ActorCriticWithTheExactCriticEstimatesTheSameGradient) {
  TabularPolicy s;
  const auto exact = exact_gradient(s.g, s.weights());
  // A tabular critic holding v_pi: delta_t is then an unbiased sample of the advantage.
  auto critic = policy_network(6, 0, 1, &s.gen);
  const Values v = evaluate_closed_form(s.g, softmax_policy(s.weights(), 6));
  std::vector<float> vf(v.begin(), v.end());
  critic->load_state_dict({{"0.weight", from_vector(vf, {1, 6})}});
  const auto eps = s.episodes(6000, 2);
  const A2cLosses l = a2c_losses(*s.policy, *critic, eps, s.g.gamma, true);
  EXPECT_LT(relative_error(s.estimate(l.actor), exact), 0.1);
  // The exact v_pi makes delta zero in expectation in every state, so the critic's gradient is
  // small next to the one a critic of zeros gets.
  auto critic_grad_norm = [&](nn::Module& c) {
    for (auto p : c.parameters()) p.set_grad(Tensor());
    backward(a2c_losses(*s.policy, c, eps, s.g.gamma, true).critic);
    double n = 0;
    for (float x : c.parameters()[0].grad().to_vector<float>()) n += double(x) * x;
    return std::sqrt(n);
  };
  auto zero_critic = policy_network(6, 0, 1, &s.gen);
  zero_critic->load_state_dict({{"0.weight", zeros({1, 6})}});
  EXPECT_LT(critic_grad_norm(*critic), 0.1 * critic_grad_norm(*zero_critic));
}

TEST(PolicyGradient, ReinforceAndA2cLearnTheSmallGrid) {
  for (bool actor_critic : {false, true}) {
    TabularPolicy s;
    PolicyGradientOptions o;
    o.episodes = 2000;
    o.batch = 4;
    o.lr = 0.1;
    o.critic_lr = 0.1;
    auto critic = policy_network(6, 0, 1, &s.gen);
    const PolicyGradientRun run = actor_critic ? train_a2c(s.env, *s.policy, *critic, o)
                                               : train_reinforce(s.env, *s.policy, o);
    // The greedy action of the learned policy is optimal in every cell.
    const Optimum best = optimum(s.g);
    const auto actions = policy_actions(softmax_policy(s.weights(), 6));
    for (int64_t st = 0; st < 6; ++st)
      EXPECT_TRUE(is_optimal_action(best, st, actions[size_t(st)]))
          << (actor_critic ? "A2C" : "REINFORCE") << ": cell " << st;
    ASSERT_EQ(run.returns.size(), 2000u);
  }
}

TEST(CartPole, ARandomPolicyKeepsThePoleUpForAboutTwentySteps) {
  CartPole env;
  Sampler rng(3);
  int64_t total = 0;
  for (int e = 0; e < 2000; ++e) {
    env.reset(rng);
    int64_t t = 0;
    while (t < env.max_steps()) {
      ++t;
      if (env.step(int(rng.below(2)), rng).done) break;
    }
    total += t;
  }
  const double mean = double(total) / 2000;
  EXPECT_GT(mean, 15);
  EXPECT_LT(mean, 30);
}

TEST(CartPole, APushMovesTheCartItsWayAndTipsThePoleTheOther) {
  CartPole env;
  Sampler rng(0);
  env.set_state({0, 0, 0, 0});
  env.step(1, rng);
  env.step(1, rng);
  EXPECT_GT(env.state()[1], 0);  // cart velocity
  EXPECT_LT(env.state()[3], 0);  // pole angular velocity: it tips back
  // Left alone at a small angle the pole falls further (alternating pushes average out).
  env.set_state({0, 0, 0.05, 0});
  for (int t = 0; t < 20; ++t) env.step(t % 2, rng);
  EXPECT_GT(env.state()[2], 0.05);
}

TEST(Dqn, LearnsTheOptimalPolicyOfTheSmallGrid) {
  GridEnvironment env(small_grid(), 30);
  Generator gen(1);
  auto q = policy_network(6, 32, kActions, &gen), target = policy_network(6, 32, kActions, &gen);
  DqnOptions o;
  o.steps = 4000;
  o.epsilon_steps = 2000;
  o.learn_start = 200;
  o.target_every = 200;
  o.batch = 32;
  const DqnRun run = train_dqn(env, *q, *target, o);
  ASSERT_FALSE(run.losses.empty());
  const Optimum best = optimum(small_grid());
  NoGrad no_grad;
  std::vector<float> eye(36, 0.0f);
  for (int i = 0; i < 6; ++i) eye[size_t(i * 7)] = 1.0f;
  const auto values = q->forward(from_vector(eye, {6, 6})).to_vector<float>();
  std::vector<double> qv(values.begin(), values.end());
  EXPECT_EQ(optimal_policy_rate(best, qv), 1.0);
}

}  // namespace
}  // namespace spool::rl
