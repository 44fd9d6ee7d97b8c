#include "rl/environment.h"

#include <cmath>

#include "engine/error.h"
#include "rl/model_free.h"

namespace spool::rl {

GridEnvironment::GridEnvironment(GridWorld g, int64_t length) : g_(std::move(g)), length_(length) {
  g_.check();
  SPOOL_CHECK(length >= 1, "grid environment: episodes of ", length, " steps");
}

std::vector<float> GridEnvironment::one_hot() const {
  std::vector<float> o(size_t(g_.states()), 0.0f);
  o[size_t(s_)] = 1.0f;
  return o;
}

std::vector<float> GridEnvironment::reset(Sampler& rng) {
  s_ = rng.below(g_.states());
  return one_hot();
}

EnvStep GridEnvironment::step(int action, Sampler& rng) {
  SPOOL_CHECK(action >= 0 && action < kActions, "grid environment: action ", action,
              " is not 0..4");
  const Outcome o = sample_step(g_, s_, action, rng);
  s_ = o.next;
  return {one_hot(), o.reward, false};
}

std::vector<float> CartPole::reset(Sampler& rng) {
  for (double& v : x_) v = rng.uniform() * 0.1 - 0.05;
  return observe();
}

std::vector<float> CartPole::observe() const {
  return {float(x_[0]), float(x_[1]), float(x_[2]), float(x_[3])};
}

EnvStep CartPole::step(int action, Sampler&) {
  SPOOL_CHECK(action == 0 || action == 1, "cart-pole: action ", action, " is not 0 (left) or 1");
  constexpr double g = 9.8, cart = 1.0, pole = 0.1, total = cart + pole, half = 0.5,
                   pole_moment = pole * half, force_mag = 10.0, tau = 0.02;
  const double force = action == 1 ? force_mag : -force_mag;
  const double c = std::cos(x_[2]), s = std::sin(x_[2]);
  const double temp = (force + pole_moment * x_[3] * x_[3] * s) / total;
  const double theta_acc = (g * s - c * temp) / (half * (4.0 / 3.0 - pole * c * c / total));
  const double x_acc = temp - pole_moment * theta_acc * c / total;
  x_[0] += tau * x_[1];
  x_[1] += tau * x_acc;
  x_[2] += tau * x_[3];
  x_[3] += tau * theta_acc;
  const bool done = std::abs(x_[0]) > 2.4 || std::abs(x_[2]) > 12 * 2 * M_PI / 360;
  return {observe(), 1.0, done};
}

}  // namespace spool::rl
