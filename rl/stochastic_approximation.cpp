#include "rl/stochastic_approximation.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "engine/error.h"
#include "rl/sampler.h"

namespace spool::rl {

double StepSize::at(int64_t k) const {
  switch (kind) {
    case kInverse:
      return c / double(k);
    case kInverseSquare:
      return c / (double(k) * double(k));
    case kInverseSqrt:
      return c / std::sqrt(double(k));
    default:
      return c;
  }
}

std::string StepSize::name() const {
  char buf[64];
  static const char* const forms[] = {"/k", "/k^2", "/sqrt(k)", ""};
  std::snprintf(buf, sizeof buf, "%g%s", c, forms[kind]);
  return buf;
}

StepSize parse_step_size(const std::string& text) {
  StepSize a;
  const size_t slash = text.find('/');
  const std::string head = slash == std::string::npos ? text : text.substr(0, slash);
  char* end = nullptr;
  a.c = std::strtod(head.c_str(), &end);
  SPOOL_CHECK(!head.empty() && *end == '\0' && std::isfinite(a.c) && a.c > 0, "step size '", text,
              "': expected 1/k, C/k, 1/k^2, 1/sqrt(k) or a positive number");
  if (slash == std::string::npos) {
    a.kind = StepSize::kConstant;
    return a;
  }
  const std::string tail = text.substr(slash + 1);
  if (tail == "k")
    a.kind = StepSize::kInverse;
  else if (tail == "k^2" || tail == "k2")
    a.kind = StepSize::kInverseSquare;
  else if (tail == "sqrt(k)" || tail == "sqrtk")
    a.kind = StepSize::kInverseSqrt;
  else
    SPOOL_CHECK(false, "step size '", text, "': after '/' comes k, k^2 or sqrt(k), not '", tail,
                "'");
  return a;
}

MeanEstimate incremental_mean(double mean, double sigma, int64_t n, uint64_t seed) {
  SPOOL_CHECK(n >= 1 && sigma >= 0 && std::isfinite(mean) && std::isfinite(sigma),
              "incremental mean: ", n, " samples of N(", mean, ", ", sigma, "^2)");
  Sampler rng(seed);
  MeanEstimate m;
  double w = 0;
  for (int64_t k = 1; k <= n; ++k) {
    const double x = mean + sigma * rng.normal();
    w -= (w - x) / double(k);
    m.samples.push_back(x);
    m.estimates.push_back(w);
  }
  return m;
}

std::vector<double> robbins_monro(const std::function<double(double)>& g,
                                  const RobbinsMonroOptions& o) {
  SPOOL_CHECK(o.iterations >= 1 && o.noise >= 0 && std::isfinite(o.w1) && o.lo <= o.hi,
              "robbins-monro: ", o.iterations, " iterations from w1 = ", o.w1, ", noise ", o.noise,
              ", bounds [", o.lo, ", ", o.hi, "]");
  Sampler rng(o.seed);
  std::vector<double> w{std::clamp(o.w1, o.lo, o.hi)};
  for (int64_t k = 1; k <= o.iterations; ++k) {
    const double observed = g(w.back()) + o.noise * rng.normal();
    const double next = std::clamp(w.back() - o.a.at(k) * observed, o.lo, o.hi);
    if (!std::isfinite(next)) break;
    w.push_back(next);
  }
  return w;
}

std::vector<std::array<double, 2>> mean_by_gradient_descent(
    const std::vector<std::array<double, 2>>& points, int64_t batch, int64_t iterations,
    std::array<double, 2> start, uint64_t seed) {
  const int64_t n = int64_t(points.size());
  SPOOL_CHECK(n >= 1 && batch >= 1 && batch <= n && iterations >= 1, "gradient descent: batch ",
              batch, " of ", n, " points, ", iterations, " iterations");
  Sampler rng(seed);
  std::vector<std::array<double, 2>> w{start};
  for (int64_t k = 1; k <= iterations; ++k) {
    double mx = 0, my = 0;
    for (int64_t i = 0; i < batch; ++i) {
      const auto& p = points[size_t(batch == n ? i : rng.below(n))];
      mx += p[0];
      my += p[1];
    }
    const double a = 1.0 / double(k);
    const auto& v = w.back();
    w.push_back({v[0] - a * (v[0] - mx / double(batch)), v[1] - a * (v[1] - my / double(batch))});
  }
  return w;
}

std::vector<std::array<double, 2>> uniform_square(int64_t n, double side, uint64_t seed) {
  Sampler rng(seed);
  std::vector<std::array<double, 2>> p(static_cast<size_t>(n));
  for (auto& x : p) x = {side * (rng.uniform() - 0.5), side * (rng.uniform() - 0.5)};
  return p;
}

}  // namespace spool::rl
