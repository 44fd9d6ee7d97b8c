// Policy gradient through the autograd: REINFORCE and advantage actor-critic (A2C) with a softmax
// policy network. Each loss is a surrogate whose gradient is the method's estimate of -grad J,
// J = E[sum_t gamma^t r_t] from the environment's start distribution.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/tensor.h"
#include "nn/container.h"
#include "rl/environment.h"

namespace spool::rl {

// One episode: s_0 .. s_{T-1}, a_t, r_t (the reward after a_t), the state after the last step,
// and whether that state is terminal (else the episode was cut by the time limit).
struct Episode {
  std::vector<std::vector<float>> observations;
  std::vector<int> actions;
  std::vector<double> rewards;
  std::vector<float> last_observation;
  bool terminal = false;
  double total_reward() const;
};

// The policy network: Linear(inputs, hidden), tanh, Linear(hidden, actions) giving the logits;
// hidden = 0: one Linear(inputs, actions) without bias (on one-hot observations, a tabular
// softmax policy, one logit per state and action). The critic: the same with one output.
std::shared_ptr<nn::Sequential> policy_network(int64_t inputs, int64_t hidden, int64_t outputs,
                                               Generator* gen);

// An episode sampled from the policy's softmax (recording nothing on the tape).
Episode run_episode(Environment& env, nn::Module& policy, Sampler& rng);

// REINFORCE: -(1/E) sum_e sum_t w_t (G_t - b) log pi(a_t | s_t), with G_t the discounted return
// from t and w_t = gamma^t when `discount_weights` (the exact gradient of J; without it, the
// common form that weighs late steps as much as early ones). b is a baseline.
Tensor reinforce_loss(nn::Module& policy, const std::vector<Episode>& episodes, double gamma,
                      double baseline, bool discount_weights);

// A2C with one-step advantages delta_t = r_t + gamma V(s_{t+1}) - V(s_t) (V(s_{t+1}) = 0 after a
// terminal step): actor -(1/E) sum w_t delta_t log pi(a_t | s_t) with delta_t held constant;
// critic (1/2E) sum delta_t^2 with the target r_t + gamma V(s_{t+1}) held constant.
struct A2cLosses {
  Tensor actor, critic;
};
A2cLosses a2c_losses(nn::Module& policy, nn::Module& critic, const std::vector<Episode>& episodes,
                     double gamma, bool discount_weights);

struct PolicyGradientOptions {
  int64_t episodes = 500;
  int64_t batch = 1;        // episodes an update
  double lr = 0.01;         // Adam, the policy
  double critic_lr = 0.01;  // Adam, the critic (A2C)
  bool discount_weights = false;
  uint64_t seed = 0;
};

// The undiscounted return and length of every training episode.
struct PolicyGradientRun {
  std::vector<double> returns;
  std::vector<int64_t> lengths;
};
// REINFORCE with the batch's mean return-to-go as its baseline.
PolicyGradientRun train_reinforce(Environment& env, nn::Module& policy,
                                  const PolicyGradientOptions& o);
PolicyGradientRun train_a2c(Environment& env, nn::Module& policy, nn::Module& critic,
                            const PolicyGradientOptions& o);

}  // namespace spool::rl
