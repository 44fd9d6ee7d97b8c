// Model-free control and prediction on a grid world: the agent only samples transitions.
// Monte Carlo (MC Basic, MC Exploring Starts first- and every-visit, MC epsilon-greedy) and
// temporal difference (TD(0), Sarsa, n-step Sarsa, Q-learning on- and off-policy). Episodes
// have a fixed length (the grid world has no terminal state: the target is kept by staying);
// their returns are computed backwards. What they learn is compared with the model's exact
// answer (rl/model_based.h) only to report progress: the curve.
#pragma once
#include <cstdint>
#include <vector>

#include "rl/grid_world.h"
#include "rl/model_based.h"
#include "rl/sampler.h"

namespace spool::rl {

// A sampled transition of action a in state s (slip included).
Outcome sample_step(const GridWorld& g, int64_t s, int a, Sampler& rng);
// The epsilon-greedy action under q in s: with probability epsilon an action drawn uniformly
// from all five, else the greedy one (greedy_actions' choice); so the greedy action has
// probability 1 - 4 epsilon / 5 and each other one epsilon / 5.
int epsilon_greedy(const std::vector<double>& q, int64_t s, double epsilon, Sampler& rng);

// One point of a learning curve: after `episode` episodes (iterations for MC Basic), the
// discounted return of the last episode from its start, the sup-norm error of the learned state
// values (max_a q, or v for TD(0)) against the exact ones, and the share of states whose greedy
// action is optimal (control methods; TD(0): 0).
struct CurvePoint {
  int64_t episode;
  double episode_return, value_error, optimal_rate;
};

struct Learned {
  std::vector<double> q;  // [S * 5]; empty for TD(0)
  Values v;               // max_a q, or TD(0)'s estimate
  std::vector<CurvePoint> curve;
  int64_t steps = 0;  // transitions sampled
};

struct ModelFreeOptions {
  int64_t episodes = 1000;  // MC Basic: iterations of evaluation and improvement
  int64_t length = 100;     // steps an episode
  double epsilon = 0.1;
  // epsilon falls linearly from `epsilon` in the first episode to 0 after the last (GLIE: every
  // action keeps being tried while the policy becomes greedy), instead of staying constant.
  bool decay_epsilon = false;
  double alpha = 0.1;       // TD step size
  int64_t n = 1;            // n-step Sarsa
  bool first_visit = true;  // MC Exploring Starts / epsilon-greedy
  // MC Exploring Starts / epsilon-greedy: 0 averages every return of a pair (the textbook
  // form, whose average keeps the returns of earlier, worse policies); > 0 a constant step size,
  // which forgets them.
  double mc_alpha = 0;
  int64_t episodes_per_pair = 1;  // MC Basic: episodes averaged for each (s, a)
  int64_t curve_points = 1000;    // at most this many points (evenly spaced), and the last
  uint64_t seed = 0;
};

Learned mc_basic(const GridWorld& g, const ModelFreeOptions& o);
Learned mc_exploring_starts(const GridWorld& g, const ModelFreeOptions& o);
Learned mc_epsilon_greedy(const GridWorld& g, const ModelFreeOptions& o);
// TD(0) state values of `pi` (the curve's error is against its closed-form values).
Learned td0(const GridWorld& g, const Policy& pi, const ModelFreeOptions& o);
// TD(0) with a linear value function v(s) = phi(s) . w: phi(s) the monomials x^i y^j, i + j <=
// `degree`, of the cell's column and row scaled to [-1, 1] (degree 1: 1, x, y; degree 2 adds x^2,
// xy, y^2). Its values are the best the features allow, not v_pi: the curve shows the gap.
Learned td_linear(const GridWorld& g, const Policy& pi, int64_t degree, const ModelFreeOptions& o);
// The features of td_linear: [S][k].
std::vector<std::vector<double>> polynomial_features(const GridWorld& g, int64_t degree);
// n-step Sarsa with an epsilon-greedy policy (n = 1: Sarsa).
Learned sarsa(const GridWorld& g, const ModelFreeOptions& o);
// Q-learning. On-policy: the behaviour is epsilon-greedy in the learned q; off-policy: the
// behaviour is the uniform random policy, the target greedy.
Learned q_learning(const GridWorld& g, const ModelFreeOptions& o, bool off_policy);

}  // namespace spool::rl
