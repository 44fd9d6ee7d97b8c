// Environments for the deep RL methods (rl/policy_gradient.h, rl/dqn.h): observations are float
// vectors, actions 0 .. actions() - 1. An episode ends when step() says done (a terminal state:
// nothing follows it, so its value is 0) or when it reaches max_steps() (a time limit: the state
// goes on, and learners bootstrap from it).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rl/grid_world.h"
#include "rl/sampler.h"

namespace spool::rl {

struct EnvStep {
  std::vector<float> observation;
  double reward = 0;
  bool done = false;
};

class Environment {
 public:
  virtual ~Environment() = default;
  virtual std::string name() const = 0;
  virtual int64_t observation_size() const = 0;
  virtual int actions() const = 0;
  virtual int64_t max_steps() const = 0;
  virtual double gamma() const = 0;
  virtual std::vector<float> reset(Sampler& rng) = 0;
  virtual EnvStep step(int action, Sampler& rng) = 0;
};

// The grid world seen through a one-hot observation of the cell [S]; every episode starts in a
// uniformly drawn cell and lasts `length` steps (the grid has no terminal state).
class GridEnvironment : public Environment {
 public:
  GridEnvironment(GridWorld g, int64_t length);
  std::string name() const override { return "grid"; }
  int64_t observation_size() const override { return g_.states(); }
  int actions() const override { return kActions; }
  int64_t max_steps() const override { return length_; }
  double gamma() const override { return g_.gamma; }
  std::vector<float> reset(Sampler& rng) override;
  EnvStep step(int action, Sampler& rng) override;
  const GridWorld& world() const { return g_; }
  int64_t state() const { return s_; }

 private:
  std::vector<float> one_hot() const;
  GridWorld g_;
  int64_t length_, s_ = 0;
};

// Cart-pole (Barto, Sutton and Anderson, 1983), with the corrected equations of motion of
// Florian (2007) integrated by Euler steps of 0.02 s: a pole of half-length 0.5 m and mass 0.1 kg
// on a cart of 1 kg, pushed by 10 N left (action 0) or right (1). The state (x, x', theta,
// theta') starts uniform in [-0.05, 0.05]^4; reward 1 a step; the episode ends when |x| > 2.4 m
// or |theta| > 12 degrees, and is cut at 500 steps. gamma 0.99.
class CartPole : public Environment {
 public:
  std::string name() const override { return "cartpole"; }
  int64_t observation_size() const override { return 4; }
  int actions() const override { return 2; }
  int64_t max_steps() const override { return 500; }
  double gamma() const override { return 0.99; }
  std::vector<float> reset(Sampler& rng) override;
  EnvStep step(int action, Sampler& rng) override;
  const std::array<double, 4>& state() const { return x_; }
  void set_state(const std::array<double, 4>& x) { x_ = x; }

 private:
  std::vector<float> observe() const;
  std::array<double, 4> x_{};
};

}  // namespace spool::rl
