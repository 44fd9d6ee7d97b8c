// Model-based dynamic programming on a grid world whose model is known: policy evaluation in
// closed form and by iteration, value iteration, policy iteration and truncated policy iteration.
// Values v are [S]; action values q are [S * 5] (state-major); a policy is [S * 5] action
// probabilities.
#pragma once
#include <cstdint>
#include <vector>

#include "rl/grid_world.h"

namespace spool::rl {

using Values = std::vector<double>;
using Policy = std::vector<double>;

Policy uniform_policy(const GridWorld& g);
// The deterministic policy taking `actions[s]` in s.
Policy deterministic_policy(const GridWorld& g, const std::vector<int>& actions);
// q(s, a) = sum over outcomes of p (r + gamma v(s')).
std::vector<double> action_values(const GridWorld& g, const Values& v);
// The greedy action of each state under q: the first action whose value is within `tie` of the
// best (so ties go to the lowest-numbered action, and rounding does not break them).
std::vector<int> greedy_actions(const std::vector<double>& q, double tie = 1e-9);
int greedy_action(const double* q_row, double tie = 1e-9);  // one state's: q_row [5]
// The most probable action of each state of a policy (the first on ties).
std::vector<int> policy_actions(const Policy& pi);

// max over s of |a(s) - b(s)|.
double sup_distance(const Values& a, const Values& b);

// v_pi = (I - gamma P_pi)^-1 r_pi, by Gaussian elimination with partial pivoting.
Values evaluate_closed_form(const GridWorld& g, const Policy& pi);

// What the iterative methods return: the values, the greedy (or final) policy, the iterations
// they took to the tolerance (the sup-norm change of v between iterations below `tol`), and the
// curve: after each iteration, the sup-norm distance of v from the exact values of the final
// policy (v*, for the optimal-control methods), computed in closed form.
struct Solution {
  Values v;
  Policy pi;
  int64_t iterations = 0;
  std::vector<double> curve;
};

Solution evaluate_iteratively(const GridWorld& g, const Policy& pi, double tol = 1e-10,
                              int64_t max_iterations = 100000);
Solution value_iteration(const GridWorld& g, double tol = 1e-10, int64_t max_iterations = 100000);
// Evaluates each policy exactly (closed form), improves greedily; stops when the greedy policy
// repeats. Starts from "stay" everywhere.
Solution policy_iteration(const GridWorld& g, int64_t max_iterations = 1000);
// Each evaluation is `sweeps` Bellman expectation sweeps from the previous values (1: value
// iteration; many: policy iteration). Stops as value iteration does.
Solution truncated_policy_iteration(const GridWorld& g, int64_t sweeps, double tol = 1e-10,
                                    int64_t max_iterations = 100000);

// The optimal values and action values (value iteration to 1e-12, then the greedy policy's
// exact values): what the model-free methods are measured against.
struct Optimum {
  Values v;
  std::vector<double> q;
};
Optimum optimum(const GridWorld& g);
// Whether action a is optimal in s: q*(s, a) within `tol` of v*(s).
bool is_optimal_action(const Optimum& o, int64_t s, int a, double tol = 1e-6);
// The share of states whose greedy action under q is optimal.
double optimal_policy_rate(const Optimum& o, const std::vector<double>& q);

}  // namespace spool::rl
