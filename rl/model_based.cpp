#include "rl/model_based.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"

namespace spool::rl {

namespace {

// One Bellman expectation sweep: v'(s) = sum_a pi(a|s) q_v(s, a).
Values expectation_sweep(const GridWorld& g, const Policy& pi, const Values& v) {
  const auto q = action_values(g, v);
  Values out(v.size(), 0.0);
  for (size_t i = 0; i < q.size(); ++i) out[i / kActions] += pi[i] * q[i];
  return out;
}

Values optimality_sweep(const GridWorld& g, const Values& v) {
  const auto q = action_values(g, v);
  Values out(v.size());
  for (size_t s = 0; s < v.size(); ++s)
    out[s] = *std::max_element(q.begin() + ptrdiff_t(s * kActions),
                               q.begin() + ptrdiff_t((s + 1) * kActions));
  return out;
}

// The curve of an optimal-control method: each iterate's distance from the exact values of the
// greedy policy it ends with.
void finish(const GridWorld& g, Solution& sol, const std::vector<Values>& iterates) {
  sol.pi = deterministic_policy(g, greedy_actions(action_values(g, sol.v)));
  const Values exact = evaluate_closed_form(g, sol.pi);
  for (const auto& v : iterates) sol.curve.push_back(sup_distance(v, exact));
}

void check_policy(const GridWorld& g, const Policy& pi) {
  SPOOL_CHECK(int64_t(pi.size()) == g.states() * kActions, "rl: a policy of ", pi.size(),
              " probabilities for ", g.states(), " states x 5 actions");
  for (int64_t s = 0; s < g.states(); ++s) {
    double sum = 0;
    for (int a = 0; a < kActions; ++a) {
      const double p = pi[size_t(s * kActions + a)];
      SPOOL_CHECK(p >= 0 && p <= 1, "rl: the policy's probability ", p, " in state ", s,
                  " is not in [0, 1]");
      sum += p;
    }
    SPOOL_CHECK(std::abs(sum - 1) < 1e-9, "rl: the policy's probabilities in state ", s, " sum to ",
                sum, ", not 1");
  }
}

}  // namespace

double sup_distance(const Values& a, const Values& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

Policy uniform_policy(const GridWorld& g) {
  return Policy(size_t(g.states() * kActions), 1.0 / kActions);
}

Policy deterministic_policy(const GridWorld& g, const std::vector<int>& actions) {
  SPOOL_CHECK(int64_t(actions.size()) == g.states(), "rl: ", actions.size(), " actions for ",
              g.states(), " states");
  Policy pi(size_t(g.states() * kActions), 0.0);
  for (size_t s = 0; s < actions.size(); ++s) {
    SPOOL_CHECK(actions[s] >= 0 && actions[s] < kActions, "rl: action ", actions[s],
                " is not 0..4");
    pi[s * kActions + size_t(actions[s])] = 1.0;
  }
  return pi;
}

std::vector<double> action_values(const GridWorld& g, const Values& v) {
  std::vector<double> q(size_t(g.states() * kActions));
  for (int64_t s = 0; s < g.states(); ++s)
    for (int a = 0; a < kActions; ++a) {
      double x = 0;
      for (const Outcome& o : g.outcomes(s, a)) x += o.p * (o.reward + g.gamma * v[size_t(o.next)]);
      q[size_t(s * kActions + a)] = x;
    }
  return q;
}

int greedy_action(const double* row, double tie) {
  const double best = *std::max_element(row, row + kActions);
  int a = 0;
  while (row[a] < best - tie * (1 + std::abs(best))) ++a;
  return a;
}

std::vector<int> greedy_actions(const std::vector<double>& q, double tie) {
  std::vector<int> out(q.size() / kActions);
  for (size_t s = 0; s < out.size(); ++s) out[s] = greedy_action(q.data() + s * kActions, tie);
  return out;
}

std::vector<int> policy_actions(const Policy& pi) {
  std::vector<int> out(pi.size() / kActions);
  for (size_t s = 0; s < out.size(); ++s)
    out[s] = int(std::max_element(pi.begin() + ptrdiff_t(s * kActions),
                                  pi.begin() + ptrdiff_t((s + 1) * kActions)) -
                 (pi.begin() + ptrdiff_t(s * kActions)));
  return out;
}

Values evaluate_closed_form(const GridWorld& g, const Policy& pi) {
  g.check();
  check_policy(g, pi);
  const int64_t n = g.states();
  // A = I - gamma P_pi, b = r_pi; gamma < 1 and P_pi's rows summing to 1 make A strictly
  // diagonally dominant by rows, so it is invertible.
  std::vector<double> A(size_t(n * n), 0.0), b(size_t(n), 0.0);
  for (int64_t s = 0; s < n; ++s) {
    A[size_t(s * n + s)] = 1.0;
    for (int a = 0; a < kActions; ++a) {
      const double p_a = pi[size_t(s * kActions + a)];
      if (p_a == 0) continue;
      for (const Outcome& o : g.outcomes(s, a)) {
        A[size_t(s * n + o.next)] -= g.gamma * p_a * o.p;
        b[size_t(s)] += p_a * o.p * o.reward;
      }
    }
  }
  for (int64_t c = 0; c < n; ++c) {
    int64_t pivot = c;
    for (int64_t r = c + 1; r < n; ++r)
      if (std::abs(A[size_t(r * n + c)]) > std::abs(A[size_t(pivot * n + c)])) pivot = r;
    if (pivot != c) {
      for (int64_t k = 0; k < n; ++k) std::swap(A[size_t(c * n + k)], A[size_t(pivot * n + k)]);
      std::swap(b[size_t(c)], b[size_t(pivot)]);
    }
    const double d = A[size_t(c * n + c)];
    for (int64_t r = c + 1; r < n; ++r) {
      const double f = A[size_t(r * n + c)] / d;
      if (f == 0) continue;
      for (int64_t k = c; k < n; ++k) A[size_t(r * n + k)] -= f * A[size_t(c * n + k)];
      b[size_t(r)] -= f * b[size_t(c)];
    }
  }
  Values v(static_cast<size_t>(n));
  for (int64_t r = n - 1; r >= 0; --r) {
    double x = b[size_t(r)];
    for (int64_t k = r + 1; k < n; ++k) x -= A[size_t(r * n + k)] * v[size_t(k)];
    v[size_t(r)] = x / A[size_t(r * n + r)];
  }
  return v;
}

Solution evaluate_iteratively(const GridWorld& g, const Policy& pi, double tol,
                              int64_t max_iterations) {
  g.check();
  check_policy(g, pi);
  const Values exact = evaluate_closed_form(g, pi);
  Solution sol;
  sol.v.assign(size_t(g.states()), 0.0);
  sol.pi = pi;
  while (sol.iterations < max_iterations) {
    Values next = expectation_sweep(g, pi, sol.v);
    const double change = sup_distance(next, sol.v);
    sol.v = std::move(next);
    ++sol.iterations;
    sol.curve.push_back(sup_distance(sol.v, exact));
    if (change < tol) break;
  }
  return sol;
}

namespace {

// Applies `step` to the values from 0 until they change by less than `tol` (sup norm).
template <typename Step>
Solution iterate_values(const GridWorld& g, double tol, int64_t max_iterations, Step step) {
  g.check();
  Solution sol;
  sol.v.assign(size_t(g.states()), 0.0);
  std::vector<Values> iterates;
  while (sol.iterations < max_iterations) {
    Values next = step(sol.v);
    const double change = sup_distance(next, sol.v);
    sol.v = std::move(next);
    ++sol.iterations;
    iterates.push_back(sol.v);
    if (change < tol) break;
  }
  finish(g, sol, iterates);
  return sol;
}

}  // namespace

Solution value_iteration(const GridWorld& g, double tol, int64_t max_iterations) {
  return iterate_values(g, tol, max_iterations,
                        [&](const Values& v) { return optimality_sweep(g, v); });
}

Solution policy_iteration(const GridWorld& g, int64_t max_iterations) {
  g.check();
  Solution sol;
  std::vector<int> actions(size_t(g.states()), kStay);
  std::vector<Values> iterates;
  while (sol.iterations < max_iterations) {
    sol.v = evaluate_closed_form(g, deterministic_policy(g, actions));
    ++sol.iterations;
    iterates.push_back(sol.v);
    const std::vector<int> next = greedy_actions(action_values(g, sol.v));
    if (next == actions) break;
    actions = next;
  }
  finish(g, sol, iterates);
  return sol;
}

Solution truncated_policy_iteration(const GridWorld& g, int64_t sweeps, double tol,
                                    int64_t max_iterations) {
  SPOOL_CHECK(sweeps >= 1, "rl: truncated policy iteration needs at least 1 sweep, not ", sweeps);
  return iterate_values(g, tol, max_iterations, [&](const Values& v) {
    const Policy pi = deterministic_policy(g, greedy_actions(action_values(g, v)));
    Values next = v;
    for (int64_t j = 0; j < sweeps; ++j) next = expectation_sweep(g, pi, next);
    return next;
  });
}

Optimum optimum(const GridWorld& g) {
  const Solution s = value_iteration(g, 1e-12);
  Optimum o;
  o.v = evaluate_closed_form(g, s.pi);
  o.q = action_values(g, o.v);
  return o;
}

bool is_optimal_action(const Optimum& o, int64_t s, int a, double tol) {
  return o.q[size_t(s * kActions + a)] >= o.v[size_t(s)] - tol;
}

double optimal_policy_rate(const Optimum& o, const std::vector<double>& q) {
  const auto actions = greedy_actions(q);
  int64_t right = 0;
  for (size_t s = 0; s < actions.size(); ++s) right += is_optimal_action(o, int64_t(s), actions[s]);
  return double(right) / double(actions.size());
}

}  // namespace spool::rl
