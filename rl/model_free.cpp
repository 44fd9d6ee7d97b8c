#include "rl/model_free.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"

namespace spool::rl {

Outcome sample_step(const GridWorld& g, int64_t s, int a, Sampler& rng) {
  if (g.slip == 0) return g.move(s, a);
  const auto outs = g.outcomes(s, a);
  double u = rng.uniform(), acc = 0;
  for (size_t i = 0; i + 1 < outs.size(); ++i)
    if (u < (acc += outs[i].p)) return outs[i];
  return outs.back();
}

int epsilon_greedy(const std::vector<double>& q, int64_t s, double epsilon, Sampler& rng) {
  const int best = greedy_action(q.data() + s * kActions);
  if (rng.uniform() >= epsilon) return best;
  return int(rng.below(kActions));  // epsilon / 5 each, the greedy one included
}

namespace {

Values max_values(const std::vector<double>& q) {
  Values v(q.size() / kActions);
  for (size_t s = 0; s < v.size(); ++s)
    v[s] = *std::max_element(q.begin() + ptrdiff_t(s * kActions),
                             q.begin() + ptrdiff_t((s + 1) * kActions));
  return v;
}

void check_options(const GridWorld& g, const ModelFreeOptions& o) {
  g.check();
  SPOOL_CHECK(o.episodes >= 1 && o.length >= 1, "rl: ", o.episodes, " episodes of ", o.length,
              " steps; both must be at least 1");
  SPOOL_CHECK(o.epsilon >= 0 && o.epsilon <= 1, "rl: epsilon ", o.epsilon, " is not a probability");
  SPOOL_CHECK(o.alpha > 0 && o.alpha <= 1, "rl: the step size alpha ", o.alpha,
              " must be in (0, 1]");
  SPOOL_CHECK(o.n >= 1, "rl: n-step Sarsa needs n >= 1, not ", o.n);
  SPOOL_CHECK(o.episodes_per_pair >= 1, "rl: MC Basic needs at least 1 episode a pair");
  SPOOL_CHECK(o.mc_alpha >= 0 && o.mc_alpha <= 1, "rl: the MC step size ", o.mc_alpha,
              " must be 0 (averages) or in (0, 1]");
  SPOOL_CHECK(o.curve_points >= 1, "rl: the curve needs at least 1 point");
}

// Episode e's epsilon (1-based).
double epsilon_at(const ModelFreeOptions& o, int64_t e) {
  return o.decay_epsilon ? o.epsilon * (1.0 - double(e - 1) / double(o.episodes)) : o.epsilon;
}

// Records curve points at evenly spaced episodes (and the last). Control methods are measured
// against the optimal values; TD(0) (`evaluated` set) against its policy's exact values.
class Recorder {
 public:
  Recorder(const GridWorld& g, const ModelFreeOptions& o, const Policy* evaluated = nullptr)
      : total_(o.episodes),
        stride_(std::max<int64_t>(1, (o.episodes + o.curve_points - 1) / o.curve_points)),
        control_(evaluated == nullptr) {
    if (control_) {
      optimum_ = optimum(g);
      exact_ = optimum_.v;
    } else {
      exact_ = evaluate_closed_form(g, *evaluated);
    }
  }
  void add(Learned& l, int64_t episode, double episode_return) {
    if (episode % stride_ != 0 && episode != total_) return;
    const Values v = control_ ? max_values(l.q) : l.v;
    l.curve.push_back({episode, episode_return, sup_distance(v, exact_),
                       control_ ? optimal_policy_rate(optimum_, l.q) : 0.0});
  }

 private:
  int64_t total_, stride_;
  bool control_;
  Values exact_;
  Optimum optimum_;
};

struct Transition {
  int64_t s;
  int a;
  double r;
};

// The discounted return of an episode's rewards from its start.
double episode_return(const GridWorld& g, const std::vector<Transition>& ep) {
  double G = 0;
  for (size_t t = ep.size(); t-- > 0;) G = ep[t].r + g.gamma * G;
  return G;
}

// The Monte Carlo update of q from one episode: returns computed backwards, averaged per pair
// (counts in `visits`); first-visit skips all but a pair's first occurrence. The episode is a
// cut of a task that goes on, so a return from step t leaves out gamma^(L - t) of the future:
// only steps with at least `tail` steps after them count (gamma^tail < 1 %), unless the episode
// is too short to have any.
void mc_update(const GridWorld& g, const std::vector<Transition>& ep, bool first_visit,
               double alpha, std::vector<double>& q, std::vector<int64_t>& visits) {
  int64_t tail = 0;
  for (double d = 1; d >= 0.01 && tail < int64_t(ep.size()); d *= g.gamma) ++tail;
  const size_t counted = ep.size() > size_t(tail) ? ep.size() - size_t(tail) : ep.size();
  std::vector<int64_t> first(q.size(), -1);
  if (first_visit)
    for (size_t t = counted; t-- > 0;) first[size_t(ep[t].s * kActions + ep[t].a)] = int64_t(t);
  double G = 0;
  for (size_t t = ep.size(); t-- > 0;) {
    G = ep[t].r + g.gamma * G;
    if (t >= counted) continue;
    const size_t i = size_t(ep[t].s * kActions + ep[t].a);
    if (first_visit && first[i] != int64_t(t)) continue;
    ++visits[i];
    q[i] += (G - q[i]) * (alpha > 0 ? alpha : 1.0 / double(visits[i]));
  }
}

}  // namespace

Learned mc_basic(const GridWorld& g, const ModelFreeOptions& o) {
  check_options(g, o);
  Sampler rng(o.seed);
  Recorder rec(g, o);
  Learned l;
  l.q.assign(size_t(g.states() * kActions), 0.0);
  std::vector<int> actions(size_t(g.states()), kStay);
  double last = 0;
  for (int64_t it = 1; it <= o.episodes; ++it) {
    // Evaluation: each (s, a) from episodes that start with it and then follow the policy.
    for (int64_t s0 = 0; s0 < g.states(); ++s0)
      for (int a0 = 0; a0 < kActions; ++a0) {
        double sum = 0;
        for (int64_t e = 0; e < o.episodes_per_pair; ++e) {
          std::vector<Transition> ep;
          int64_t s = s0;
          int a = a0;
          for (int64_t t = 0; t < o.length; ++t) {
            const Outcome out = sample_step(g, s, a, rng);
            ep.push_back({s, a, out.reward});
            s = out.next;
            a = actions[size_t(s)];
          }
          l.steps += o.length;
          last = episode_return(g, ep);
          sum += last;
        }
        l.q[size_t(s0 * kActions + a0)] = sum / double(o.episodes_per_pair);
      }
    actions = greedy_actions(l.q);  // improvement
    rec.add(l, it, last);
  }
  l.v = max_values(l.q);
  return l;
}

namespace {

// MC control from episodes whose first pair is `start(s, a)` and whose later actions follow
// `behave(q, s, epsilon)`; the policy is greedy (or epsilon-greedy) in q after every episode.
template <typename Start, typename Behave>
Learned mc_control(const GridWorld& g, const ModelFreeOptions& o, Start start, Behave behave) {
  check_options(g, o);
  Sampler rng(o.seed);
  Recorder rec(g, o);
  Learned l;
  l.q.assign(size_t(g.states() * kActions), 0.0);
  std::vector<int64_t> visits(l.q.size(), 0);
  std::vector<Transition> ep;
  for (int64_t e = 1; e <= o.episodes; ++e) {
    ep.clear();
    const double epsilon = epsilon_at(o, e);
    auto [s, a] = start(l.q, epsilon, rng);
    for (int64_t t = 0; t < o.length; ++t) {
      const Outcome out = sample_step(g, s, a, rng);
      ep.push_back({s, a, out.reward});
      s = out.next;
      a = behave(l.q, s, epsilon, rng);
    }
    l.steps += o.length;
    mc_update(g, ep, o.first_visit, o.mc_alpha, l.q, visits);
    rec.add(l, e, episode_return(g, ep));
  }
  l.v = max_values(l.q);
  return l;
}

}  // namespace

Learned mc_exploring_starts(const GridWorld& g, const ModelFreeOptions& o) {
  return mc_control(
      g, o,
      [&](const std::vector<double>&, double, Sampler& rng) {
        const int64_t s = rng.below(g.states());
        return std::pair<int64_t, int>{s, int(rng.below(kActions))};
      },
      [](const std::vector<double>& q, int64_t s, double, Sampler&) {
        return greedy_action(q.data() + s * kActions);
      });
}

Learned mc_epsilon_greedy(const GridWorld& g, const ModelFreeOptions& o) {
  return mc_control(
      g, o,
      [&](const std::vector<double>& q, double epsilon, Sampler& rng) {
        const int64_t s = rng.below(g.states());
        return std::pair<int64_t, int>{s, epsilon_greedy(q, s, epsilon, rng)};
      },
      [](const std::vector<double>& q, int64_t s, double epsilon, Sampler& rng) {
        return epsilon_greedy(q, s, epsilon, rng);
      });
}

namespace {

// TD(0) on the values phi(s) . w of a policy's states: w += alpha delta phi(s). One-hot features
// make w the table of values (TD(0) itself).
Learned linear_td(const GridWorld& g, const Policy& pi, const std::vector<std::vector<double>>& phi,
                  const ModelFreeOptions& o) {
  check_options(g, o);
  Sampler rng(o.seed);
  Recorder rec(g, o, &pi);
  Learned l;
  std::vector<double> w(phi[0].size(), 0.0);
  auto value = [&](int64_t s) {
    double v = 0;
    for (size_t k = 0; k < w.size(); ++k) v += phi[size_t(s)][k] * w[k];
    return v;
  };
  l.v.assign(size_t(g.states()), 0.0);
  std::vector<Transition> ep;
  for (int64_t e = 1; e <= o.episodes; ++e) {
    ep.clear();
    int64_t s = rng.below(g.states());
    for (int64_t t = 0; t < o.length; ++t) {
      const int a = rng.pick(pi.data() + s * kActions, kActions);
      const Outcome out = sample_step(g, s, a, rng);
      const double delta = out.reward + g.gamma * value(out.next) - value(s);
      for (size_t k = 0; k < w.size(); ++k) w[k] += o.alpha * delta * phi[size_t(s)][k];
      ep.push_back({s, a, out.reward});
      s = out.next;
    }
    l.steps += o.length;
    for (int64_t st = 0; st < g.states(); ++st) l.v[size_t(st)] = value(st);
    rec.add(l, e, episode_return(g, ep));
  }
  return l;
}

}  // namespace

Learned td0(const GridWorld& g, const Policy& pi, const ModelFreeOptions& o) {
  g.check();
  std::vector<std::vector<double>> one_hot(size_t(g.states()),
                                           std::vector<double>(size_t(g.states()), 0.0));
  for (size_t s = 0; s < one_hot.size(); ++s) one_hot[s][s] = 1.0;
  return linear_td(g, pi, one_hot, o);
}

std::vector<std::vector<double>> polynomial_features(const GridWorld& g, int64_t degree) {
  SPOOL_CHECK(degree >= 0 && degree <= 10, "rl: polynomial features of degree ", degree,
              "; 0 to 10");
  std::vector<std::vector<double>> phi(size_t(g.states()));
  for (int64_t s = 0; s < g.states(); ++s) {
    const double x = g.cols > 1 ? 2.0 * double(s % g.cols) / double(g.cols - 1) - 1 : 0;
    const double y = g.rows > 1 ? 2.0 * double(s / g.cols) / double(g.rows - 1) - 1 : 0;
    for (int64_t d = 0; d <= degree; ++d)
      for (int64_t i = d; i >= 0; --i)
        phi[size_t(s)].push_back(std::pow(x, double(i)) * std::pow(y, double(d - i)));
  }
  return phi;
}

Learned td_linear(const GridWorld& g, const Policy& pi, int64_t degree, const ModelFreeOptions& o) {
  g.check();
  return linear_td(g, pi, polynomial_features(g, degree), o);
}

Learned sarsa(const GridWorld& g, const ModelFreeOptions& o) {
  check_options(g, o);
  Sampler rng(o.seed);
  Recorder rec(g, o);
  Learned l;
  l.q.assign(size_t(g.states() * kActions), 0.0);
  const int64_t L = o.length, n = o.n;
  std::vector<int64_t> S(size_t(L + 1));
  std::vector<int> A(size_t(L + 1));
  std::vector<double> R(size_t(L + 1));  // R[t]: the reward after step t - 1
  std::vector<Transition> ep;
  for (int64_t e = 1; e <= o.episodes; ++e) {
    ep.clear();
    const double epsilon = epsilon_at(o, e);
    S[0] = rng.below(g.states());
    A[0] = epsilon_greedy(l.q, S[0], epsilon, rng);
    // Step t samples the transition and chooses A[t + 1]; the pair of time tau = t + 1 - n is
    // then updated with the n rewards after it and q of the pair n steps on. The episode's cut
    // at L is a time limit, not an end: the last updates bootstrap from q(S[L], A[L]).
    auto update = [&](int64_t tau, int64_t horizon) {
      double G = 0, discount = 1;
      for (int64_t i = tau + 1; i <= horizon; ++i, discount *= g.gamma)
        G += discount * R[size_t(i)];
      G += discount * l.q[size_t(S[size_t(horizon)] * kActions + A[size_t(horizon)])];
      double& q = l.q[size_t(S[size_t(tau)] * kActions + A[size_t(tau)])];
      q += o.alpha * (G - q);
    };
    for (int64_t t = 0; t < L; ++t) {
      const Outcome out = sample_step(g, S[size_t(t)], A[size_t(t)], rng);
      ep.push_back({S[size_t(t)], A[size_t(t)], out.reward});
      R[size_t(t + 1)] = out.reward;
      S[size_t(t + 1)] = out.next;
      A[size_t(t + 1)] = epsilon_greedy(l.q, out.next, epsilon, rng);
      const int64_t tau = t + 1 - n;
      if (tau >= 0) update(tau, tau + n);
    }
    for (int64_t tau = std::max<int64_t>(0, L - n + 1); tau < L; ++tau) update(tau, L);
    l.steps += L;
    rec.add(l, e, episode_return(g, ep));
  }
  l.v = max_values(l.q);
  return l;
}

Learned q_learning(const GridWorld& g, const ModelFreeOptions& o, bool off_policy) {
  check_options(g, o);
  Sampler rng(o.seed);
  Recorder rec(g, o);
  Learned l;
  l.q.assign(size_t(g.states() * kActions), 0.0);
  std::vector<Transition> ep;
  for (int64_t e = 1; e <= o.episodes; ++e) {
    ep.clear();
    const double epsilon = epsilon_at(o, e);
    int64_t s = rng.below(g.states());
    for (int64_t t = 0; t < o.length; ++t) {
      const int a = off_policy ? int(rng.below(kActions)) : epsilon_greedy(l.q, s, epsilon, rng);
      const Outcome out = sample_step(g, s, a, rng);
      const double* next = l.q.data() + out.next * kActions;
      const double target = out.reward + g.gamma * *std::max_element(next, next + kActions);
      double& q = l.q[size_t(s * kActions + a)];
      q += o.alpha * (target - q);
      ep.push_back({s, a, out.reward});
      s = out.next;
    }
    l.steps += o.length;
    rec.add(l, e, episode_return(g, ep));
  }
  l.v = max_values(l.q);
  return l;
}

}  // namespace spool::rl
