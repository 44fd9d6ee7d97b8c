// Stochastic approximation, the ground under TD and Q-learning: incremental mean estimation,
// Robbins-Monro root finding from noisy observations, and mean estimation by batch, mini-batch
// and stochastic gradient descent.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

namespace spool::rl {

// Step sizes a_k, k = 1, 2, ...: c / k, c / k^2, c / sqrt(k) or a constant c.
struct StepSize {
  enum Kind { kInverse, kInverseSquare, kInverseSqrt, kConstant } kind = kInverse;
  double c = 1;
  double at(int64_t k) const;
  std::string name() const;
  // The Robbins-Monro conditions on the schedule: sum a_k diverges (the iterates can travel any
  // distance) and sum a_k^2 converges (the noise they add is finite). Known in closed form.
  bool sum_diverges() const { return kind != kInverseSquare; }
  bool square_sum_converges() const { return kind == kInverse || kind == kInverseSquare; }
};
// "1/k", "C/k", "1/k^2", "C/k^2", "1/sqrt(k)", "C/sqrt(k)" or a positive number (constant).
StepSize parse_step_size(const std::string& text);

// The running mean of n draws of N(mean, sigma^2), w_{k+1} = w_k - (1/k)(w_k - x_k): returns
// w_2 .. w_{n+1} (the estimate after each sample) and the draws.
struct MeanEstimate {
  std::vector<double> estimates, samples;
};
MeanEstimate incremental_mean(double mean, double sigma, int64_t n, uint64_t seed);

struct RobbinsMonroOptions {
  double w1 = 0;
  StepSize a;
  double noise = 0;  // standard deviation of the Gaussian noise on each observation of g
  int64_t iterations = 1000;
  uint64_t seed = 0;
  // Projection onto [lo, hi] after each step (projected Robbins-Monro; infinite: none).
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
};
// w_{k+1} = clamp(w_k - a_k (g(w_k) + eta_k), lo, hi): returns w_1 .. w_{N+1}. An iterate that
// is no longer finite ends the sequence there (divergence is a result, not an error).
std::vector<double> robbins_monro(const std::function<double(double)>& g,
                                  const RobbinsMonroOptions& o);

// Mean estimation as the minimiser of J(w) = E ||w - X||^2 / 2 over n points of the plane:
// each iteration steps w_{k+1} = w_k - (1/k)(w_k - mean of a batch), the batch drawn with
// replacement (`batch` points; batch = n: batch gradient descent over all of them, no draw).
// Returns w_1 .. w_{N+1}, w_1 = `start`.
std::vector<std::array<double, 2>> mean_by_gradient_descent(
    const std::vector<std::array<double, 2>>& points, int64_t batch, int64_t iterations,
    std::array<double, 2> start, uint64_t seed);
// n points uniform in the square [-side/2, side/2]^2.
std::vector<std::array<double, 2>> uniform_square(int64_t n, double side, uint64_t seed);

}  // namespace spool::rl
