// Deep Q-learning (Mnih et al., 2015) through the autograd: a Q network Q(s, .) with one output an
// action, an epsilon-greedy behaviour (epsilon decaying linearly), a replay buffer of past
// transitions sampled uniformly, and a target network copied from the Q network every
// `target_every` steps, so the regression target r + gamma max_a' Q_target(s', a') (no
// bootstrap after a terminal state) holds still between copies. The loss is the mean squared
// error (the paper clips the error's gradient at 1, as a Huber loss does).
#pragma once
#include <cstdint>
#include <vector>

#include "nn/module.h"
#include "rl/environment.h"

namespace spool::rl {

struct DqnOptions {
  int64_t steps = 20000;  // environment steps
  int64_t buffer = 10000;
  int64_t batch = 64;
  double lr = 1e-3;  // Adam
  double epsilon_start = 1.0, epsilon_end = 0.05;
  int64_t epsilon_steps = 5000;  // steps over which epsilon falls from start to end
  int64_t target_every = 500;
  int64_t learn_start = 500;  // steps of experience before the first update
  uint64_t seed = 0;
};

struct DqnRun {
  std::vector<double> returns;   // undiscounted return of each finished episode
  std::vector<int64_t> lengths;  // its steps
  std::vector<double> losses;    // the loss of each update
};

// Trains `q` in place; `target` must have q's structure (its weights are overwritten).
DqnRun train_dqn(Environment& env, nn::Module& q, nn::Module& target, const DqnOptions& o);

}  // namespace spool::rl
