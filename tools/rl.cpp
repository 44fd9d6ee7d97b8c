// spool rl: the RL algorithms on a grid world, and spool sa: stochastic approximation. Each
// writes its results to --out DIR as CSV files and a PNG, and prints one JSON line.
//   rl: values.csv (state values, one grid row a line, top row first), policy.csv (the greedy
//       action of each cell: up/right/down/left/stay), curve.csv (per iteration or episode) and
//       grid.png (the grid with values and arrows beside the curve).
//   sa: iterates.csv and plot.png.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>

#include "engine/autograd.h"
#include "engine/factory.h"
#include "ops/ops.h"
#include "rl/dqn.h"
#include "rl/environment.h"
#include "rl/grid_world.h"
#include "rl/model_based.h"
#include "rl/model_free.h"
#include "rl/policy_gradient.h"
#include "rl/stochastic_approximation.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/plot.h"

namespace spool::cli {

namespace {

double number(const Args& a, const std::string& name, double fallback) {
  if (!a.has(name)) return fallback;
  const std::string v = a.str(name, "");
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !std::isfinite(x))
    throw UsageError("--" + name + " '" + v + "' is not a number");
  return x;
}

// Which algorithms each of rl's tuning flags applies to; a flag given to another one is an error
// rather than ignored.
void check_flags_apply(const Args& a, const std::string& algo, bool cartpole) {
  const std::vector<std::string> td = {"td0", "td-linear"},
                                 control = {"mc-eps-greedy", "sarsa", "nstep-sarsa", "q-learning"},
                                 deep = {"dqn", "reinforce", "a2c"};
  auto with = [](std::vector<std::string> x, const std::vector<std::string>& y) {
    x.insert(x.end(), y.begin(), y.end());
    return x;
  };
  const std::vector<std::string> sampled =
      with(with(td, control), {"mc-basic", "mc-es", "q-learning-off", "reinforce", "a2c"});
  const std::vector<std::pair<std::string, std::vector<std::string>>> applies = {
      {"episodes", sampled},
      {"length",
       with(with(td, control), {"mc-basic", "mc-es", "q-learning-off", "dqn", "reinforce", "a2c"})},
      {"epsilon", control},
      {"decay-epsilon", control},
      {"alpha", with(td, {"sarsa", "nstep-sarsa", "q-learning", "q-learning-off"})},
      {"n", {"nstep-sarsa"}},
      {"sweeps", {"truncated-pi"}},
      {"tol", {"value-iteration", "truncated-pi", "policy-evaluation"}},
      {"every-visit", {"mc-es", "mc-eps-greedy"}},
      {"mc-alpha", {"mc-es", "mc-eps-greedy"}},
      {"policy", with(td, {"policy-evaluation"})},
      {"degree", {"td-linear"}},
      {"env", deep},
      {"hidden", deep},
      {"lr", deep},
      {"steps", {"dqn"}},
      {"batch", {"reinforce", "a2c"}},
      {"critic-lr", {"a2c"}}};
  for (const auto& [flag, algos] : applies) {
    if (!a.has(flag) || std::find(algos.begin(), algos.end(), algo) != algos.end()) continue;
    std::string list;
    for (const auto& x : algos) list += (list.empty() ? "" : ", ") + x;
    throw UsageError("rl: --" + flag + " does not apply to --algo " + algo + " (it applies to " +
                     list + ")");
  }
  if (cartpole)
    for (const char* flag : {"grid", "gamma", "slip", "length"})
      if (a.has(flag))
        throw UsageError(std::string("rl: --") + flag +
                         " is the grid world's; cart-pole has its own (docs/rl.md)");
}

// --out DIR: made if missing; each file in it is checked before any work.
std::string output_folder(const Args& a, const std::string& command,
                          const std::vector<std::string>& files) {
  if (!a.has("out")) throw UsageError(command + ": --out DIR is required");
  const std::string out = a.str("out", "");
  if (out.empty()) throw UsageError(command + ": --out is empty (it names the folder to fill)");
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec) throw UsageError(command + ": --out: cannot create " + out + ": " + ec.message());
  for (const auto& f : files) check_output_path(out + "/" + f, command + " --out");
  return out;
}

std::string grid_csv(const rl::GridWorld& g, const std::function<std::string(int64_t)>& cell) {
  std::string s;
  for (int64_t r = 0; r < g.rows; ++r) {
    for (int64_t c = 0; c < g.cols; ++c) s += (c ? "," : "") + cell(r * g.cols + c);
    s += "\n";
  }
  return s;
}

std::string fixed(double v, const char* format = "%.6f") {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

const char* const kAlgorithms =
    "value-iteration, policy-iteration, truncated-pi, policy-evaluation, mc-basic, mc-es, "
    "mc-eps-greedy, td0, td-linear, sarsa, nstep-sarsa, q-learning, q-learning-off, dqn, "
    "reinforce, a2c";

// The deep methods (dqn, reinforce, a2c) on the grid (one-hot cells) or on cart-pole: trains,
// writes curve.csv (each episode's undiscounted return and length) and, on the grid, the
// learned greedy policy with its exact values (closed form) and the figure; on cart-pole the
// figure of the returns. Returns the summary.
Json run_deep(const Args& a, const std::string& algo, const rl::GridWorld& g,
              const std::string& out) {
  const std::string env_name = a.str("env", "grid");
  if (env_name != "grid" && env_name != "cartpole")
    throw UsageError("rl: --env '" + env_name + "' is not grid or cartpole");
  const bool grid = env_name == "grid";
  std::unique_ptr<rl::Environment> env;
  if (grid)
    env = std::make_unique<rl::GridEnvironment>(g, a.positive_int("length", 30));
  else
    env = std::make_unique<rl::CartPole>();
  const uint64_t seed = a.seed("seed", 0);
  Generator gen(seed);
  const int64_t hidden = a.has("hidden") ? a.positive_int("hidden", 64) : 64;
  const int64_t inputs = env->observation_size();
  const int outputs = env->actions();
  auto net = rl::policy_network(inputs, hidden, outputs, &gen);
  rl::PolicyGradientRun run;
  const double t0 = now_seconds();
  if (algo == "dqn") {
    rl::DqnOptions o;
    o.steps = a.positive_int("steps", grid ? 20000 : 50000);
    o.lr = a.has("lr") ? a.positive_double("lr", 1e-3) : 1e-3;
    o.seed = seed;
    auto target = rl::policy_network(inputs, hidden, outputs, &gen);
    const rl::DqnRun d = rl::train_dqn(*env, *net, *target, o);
    run.returns = d.returns;
    run.lengths = d.lengths;
  } else {
    rl::PolicyGradientOptions o;
    o.episodes = a.positive_int("episodes", grid ? 2000 : 1000);
    // A2C's defaults: one episode an update and a slower actor than REINFORCE's (docs/rl.md
    // has the cart-pole runs that chose them).
    const bool a2c = algo == "a2c";
    o.batch = a.positive_int("batch", a2c ? 1 : 4);
    o.lr = a.has("lr") ? a.positive_double("lr", 0.01) : a2c ? 0.001 : 0.01;
    o.critic_lr = a.has("critic-lr") ? a.positive_double("critic-lr", 0.01) : 0.01;
    o.seed = seed;
    if (algo == "reinforce") {
      run = rl::train_reinforce(*env, *net, o);
    } else {
      auto critic = rl::policy_network(inputs, hidden, 1, &gen);
      run = rl::train_a2c(*env, *net, *critic, o);
    }
  }
  Json summary;
  summary.add("algo", algo).add("env", env_name).add("episodes", int64_t(run.returns.size()));
  summary.add("seconds", now_seconds() - t0);
  std::string csv = "episode,return,length\n";
  Series returns{"return of the episode", {}, {}}, mean{"mean of the last 20", {}, {}};
  double window = 0;
  for (size_t e = 0; e < run.returns.size(); ++e) {
    csv += std::to_string(e + 1) + "," + fixed(run.returns[e], "%.9g") + "," +
           std::to_string(run.lengths[e]) + "\n";
    returns.x.push_back(double(e + 1));
    returns.y.push_back(run.returns[e]);
    window += run.returns[e] - (e >= 20 ? run.returns[e - 20] : 0.0);
    mean.x.push_back(double(e + 1));
    mean.y.push_back(window / double(std::min<size_t>(e + 1, 20)));
  }
  if (!run.returns.empty()) summary.add("mean_return_last_20", mean.y.back());
  write_file(out + "/curve.csv", csv, "rl --out");
  const Chart chart{algo + " on " + env_name + ": return of each episode",
                    "episode",
                    "undiscounted return",
                    {returns, mean},
                    false,
                    {}};
  if (!grid) {
    write_file(out + "/plot.png", chart_png(chart), "rl --out");
    return summary;
  }
  // The grid: the greedy policy of the network on every cell, and its exact values.
  NoGrad no_grad;
  std::vector<float> eye(size_t(g.states() * g.states()), 0.0f);
  for (int64_t s = 0; s < g.states(); ++s) eye[size_t(s * g.states() + s)] = 1.0f;
  const auto scores = net->forward(from_vector(eye, {g.states(), g.states()})).to_vector<float>();
  const std::vector<int> actions = rl::greedy_actions({scores.begin(), scores.end()});
  const rl::Values values = rl::evaluate_closed_form(g, rl::deterministic_policy(g, actions));
  const rl::Optimum best = rl::optimum(g);
  int64_t right = 0;
  for (int64_t s = 0; s < g.states(); ++s)
    right += rl::is_optimal_action(best, s, actions[size_t(s)]);
  summary.add("optimal_rate", double(right) / double(g.states()));
  write_file(out + "/values.csv", grid_csv(g, [&](int64_t s) { return fixed(values[size_t(s)]); }),
             "rl --out");
  write_file(
      out + "/policy.csv",
      grid_csv(g, [&](int64_t s) { return std::string(rl::action_name(actions[size_t(s)])); }),
      "rl --out");
  write_file(out + "/grid.png", grid_png(g, values, actions, chart), "rl --out");
  return summary;
}

}  // namespace

int cmd_rl(int argc, char** argv) {
  Args a(argc, argv, 2,
         {{"grid", true, "'standard' (default: 5 x 5, docs/rl.md) or a layout file"},
          {"algo", true, std::string("the algorithm: ") + kAlgorithms},
          {"gamma", true, "discount (default: the grid's, 0.9 for the standard one)"},
          {"slip", true, "probability that an action is replaced by another (default 0)"},
          {"episodes", true, "episodes (MC Basic: iterations)"},
          {"length", true, "steps an episode"},
          {"epsilon", true, "exploration of the epsilon-greedy policies (default 0.1)"},
          {"alpha", true, "TD step size (default 0.1)"},
          {"n", true, "n-step Sarsa's n (default 3)"},
          {"sweeps", true, "truncated policy iteration: evaluation sweeps (default 5)"},
          {"tol", true, "model-based stopping tolerance on the values (default 1e-10)"},
          {"every-visit", false, "MC: every visit of a pair counts (default: first visit)"},
          {"mc-alpha", true,
           "mc-es, mc-eps-greedy: a constant step size for q (default: the average of returns)"},
          {"decay-epsilon", false,
           "epsilon falls linearly to 0 over the episodes (default: constant)"},
          {"policy", true, "td0, td-linear, policy-evaluation: 'uniform' (default) or 'optimal'"},
          {"degree", true, "td-linear: the polynomial features' degree (default 2)"},
          {"env", true, "dqn, reinforce, a2c: 'grid' (default, one-hot cells) or 'cartpole'"},
          {"hidden", true, "dqn, reinforce, a2c: hidden units (default 64)"},
          {"steps", true, "dqn: environment steps (default grid 20000, cart-pole 50000)"},
          {"batch", true, "reinforce, a2c: episodes an update (default reinforce 4, a2c 1)"},
          {"lr", true, "dqn, reinforce, a2c: Adam's learning rate (reinforce 0.01, others 1e-3)"},
          {"critic-lr", true, "a2c: the critic's learning rate (default 0.01)"},
          {"seed", true, "random seed (default 0)"},
          {"out", true, "the folder to write (required)"}},
         "rl");
  if (!a.has("algo")) throw UsageError(std::string("rl: --algo is required: ") + kAlgorithms);
  const std::string algo = a.str("algo", "");
  if ((std::string(", ") + kAlgorithms + ",").find(", " + algo + ",") == std::string::npos)
    throw UsageError("rl: --algo '" + algo + "' is not one of: " + kAlgorithms);
  const bool deep = algo == "dqn" || algo == "reinforce" || algo == "a2c";
  const bool cartpole = a.str("env", "grid") == "cartpole";
  check_flags_apply(a, algo, cartpole);
  const std::string out = output_folder(
      a, "rl",
      cartpole ? std::vector<std::string>{"curve.csv", "plot.png"}
               : std::vector<std::string>{"values.csv", "policy.csv", "curve.csv", "grid.png"});
  rl::GridWorld g = rl::load_grid(a.str("grid", "standard"));
  g.gamma = number(a, "gamma", g.gamma);
  g.slip = number(a, "slip", g.slip);
  g.check();
  if (deep) {
    std::printf("%s\n", run_deep(a, algo, g, out).str().c_str());
    return 0;
  }

  rl::ModelFreeOptions o;
  o.seed = a.seed("seed", 0);
  o.epsilon = number(a, "epsilon", 0.1);
  o.alpha = number(a, "alpha", 0.1);
  o.n = a.positive_int("n", algo == "nstep-sarsa" ? 3 : 1);
  o.first_visit = !a.has("every-visit");
  o.decay_epsilon = a.has("decay-epsilon");
  o.mc_alpha = number(a, "mc-alpha", 0.0);
  // Default budgets: runs of under a second on the standard grid (docs/rl.md has what each
  // reaches).
  struct Budget {
    int64_t episodes, length;
  };
  const Budget budget = algo == "mc-basic"                         ? Budget{20, 100}
                        : algo == "mc-es"                          ? Budget{100000, 100}
                        : algo == "mc-eps-greedy"                  ? Budget{2000, 1000}
                        : algo == "q-learning-off"                 ? Budget{100, 1000}
                        : algo == "sarsa" || algo == "nstep-sarsa" ? Budget{400000, 20}
                        : algo == "q-learning"                     ? Budget{100000, 20}
                                                                   : Budget{5000, 100};
  o.episodes = a.positive_int("episodes", budget.episodes);
  o.length = a.positive_int("length", budget.length);
  const double tol = a.has("tol") ? a.positive_double("tol", 1e-10) : 1e-10;
  const std::string policy_name = a.str("policy", "uniform");
  if (policy_name != "uniform" && policy_name != "optimal")
    throw UsageError("rl: --policy '" + policy_name + "' is not uniform or optimal");

  const double t0 = now_seconds();
  rl::Values values;
  std::vector<double> q;
  std::vector<int> actions;
  std::string curve_csv;
  Chart chart;
  Series series{algo, {}, {}};
  Json summary;
  summary.add("algo", algo).add("grid", a.str("grid", "standard")).add("gamma", g.gamma);
  const rl::Optimum best = rl::optimum(g);
  const bool model_based = algo == "value-iteration" || algo == "policy-iteration" ||
                           algo == "truncated-pi" || algo == "policy-evaluation";
  if (model_based) {
    rl::Solution sol;
    if (algo == "value-iteration")
      sol = rl::value_iteration(g, tol);
    else if (algo == "policy-iteration")
      sol = rl::policy_iteration(g);
    else if (algo == "truncated-pi")
      sol = rl::truncated_policy_iteration(g, a.positive_int("sweeps", 5), tol);
    else
      sol = rl::evaluate_iteratively(g,
                                     policy_name == "uniform"
                                         ? rl::uniform_policy(g)
                                         : rl::deterministic_policy(g, rl::greedy_actions(best.q)),
                                     tol);
    values = sol.v;
    // A uniform policy has no action to show.
    actions = algo == "policy-evaluation" && policy_name == "uniform"
                  ? std::vector<int>(size_t(g.states()), -1)
                  : rl::policy_actions(sol.pi);
    q = rl::action_values(g, values);
    curve_csv = "iteration,value_error\n";
    for (size_t k = 0; k < sol.curve.size(); ++k) {
      curve_csv += std::to_string(k + 1) + "," + fixed(sol.curve[k], "%.9g") + "\n";
      series.x.push_back(double(k + 1));
      series.y.push_back(sol.curve[k]);
    }
    chart = {algo + ": distance from the exact values", "iteration", "max |v_k - v|", {}, true, {}};
    summary.add("iterations", sol.iterations);
    if (algo == "policy-evaluation") {
      summary.add("closed_form_distance",
                  rl::sup_distance(rl::evaluate_closed_form(g, sol.pi), values));
    }
  } else {
    rl::Learned l;
    if (algo == "mc-basic")
      l = rl::mc_basic(g, o);
    else if (algo == "mc-es")
      l = rl::mc_exploring_starts(g, o);
    else if (algo == "mc-eps-greedy")
      l = rl::mc_epsilon_greedy(g, o);
    else if (algo == "td0" || algo == "td-linear") {
      const rl::Policy pi = policy_name == "uniform"
                                ? rl::uniform_policy(g)
                                : rl::deterministic_policy(g, rl::greedy_actions(best.q));
      l = algo == "td0"
              ? rl::td0(g, pi, o)
              : rl::td_linear(g, pi, a.has("degree") ? a.positive_int("degree", 2) : 2, o);
    } else if (algo == "sarsa" || algo == "nstep-sarsa")
      l = rl::sarsa(g, o);
    else if (algo == "q-learning")
      l = rl::q_learning(g, o, false);
    else  // q-learning-off: the last of kAlgorithms, which --algo was checked against
      l = rl::q_learning(g, o, true);
    values = l.v;
    q = l.q;
    actions = q.empty() ? std::vector<int>(size_t(g.states()), -1) : rl::greedy_actions(q);
    curve_csv = "episode,return,value_error,optimal_rate\n";
    for (const auto& p : l.curve) {
      curve_csv += std::to_string(p.episode) + "," + fixed(p.episode_return, "%.9g") + "," +
                   fixed(p.value_error, "%.9g") + "," + fixed(p.optimal_rate, "%.4f") + "\n";
      series.x.push_back(double(p.episode));
      series.y.push_back(p.value_error);
    }
    chart = {algo + (q.empty() ? ": error of v against v_pi" : ": error of max_a q against v*"),
             algo == "mc-basic" ? "iteration" : "episode",
             "max |v - v*|",
             {},
             true,
             {}};
    summary.add("episodes", o.episodes).add("length", o.length).add("steps", l.steps);
    if (!l.curve.empty()) summary.add("value_error", l.curve.back().value_error);
  }
  if (!q.empty() && algo != "policy-evaluation")
    summary.add("optimal_rate", rl::optimal_policy_rate(best, q));
  chart.series.push_back(series);
  summary.add("seconds", now_seconds() - t0);

  write_file(out + "/values.csv", grid_csv(g, [&](int64_t s) { return fixed(values[size_t(s)]); }),
             "rl --out");
  write_file(out + "/policy.csv",
             grid_csv(g,
                      [&](int64_t s) {
                        return actions[size_t(s)] < 0 ? std::string("")
                                                      : rl::action_name(actions[size_t(s)]);
                      }),
             "rl --out");
  write_file(out + "/curve.csv", curve_csv, "rl --out");
  write_file(out + "/grid.png", grid_png(g, values, actions, chart), "rl --out");
  std::printf("%s\n", summary.str().c_str());
  return 0;
}

int cmd_sa(int argc, char** argv) {
  Args a(argc, argv, 2,
         {{"problem", true,
           "mean (incremental mean estimation), rm-cubic (Robbins-Monro on w^3 - 5), rm-tanh "
           "(on tanh(w - 1)), gd-mean (SGD, mini-batch and batch GD on the mean of points)"},
          {"iterations", true, "iterations (default 1000; gd-mean 50)"},
          {"noise", true, "standard deviation of the observation noise (default 1)"},
          {"step-size", true, "a_k: 1/k (default), C/k, 1/k^2, 1/sqrt(k) or a constant"},
          {"w1", true, "the first iterate (rm-cubic 0, rm-tanh 3)"},
          {"bounds", true,
           "LO,HI: project the iterates onto [LO, HI] (rm-cubic default 0,3; 'none': no "
           "projection)"},
          {"seed", true, "random seed (default 0)"},
          {"out", true, "the folder to write (required)"}},
         "sa");
  if (!a.has("problem"))
    throw UsageError("sa: --problem is required (mean, rm-cubic, rm-tanh, gd-mean)");
  const std::string problem = a.str("problem", "");
  const std::string out = output_folder(a, "sa", {"iterates.csv", "plot.png"});
  const uint64_t seed = a.seed("seed", 0);
  const double noise = number(a, "noise", 1.0);
  if (noise < 0) throw UsageError("sa: --noise must be at least 0");
  Json summary;
  summary.add("problem", problem);
  std::string csv;
  Chart chart;
  if (problem == "mean") {
    const int64_t n = a.positive_int("iterations", 1000);
    const double mean = 1.0;
    const rl::MeanEstimate m = rl::incremental_mean(mean, noise, n, seed);
    csv = "k,sample,estimate\n";
    Series s{"w_k", {}, {}};
    for (size_t k = 0; k < m.estimates.size(); ++k) {
      csv += std::to_string(k + 1) + "," + fixed(m.samples[k], "%.9g") + "," +
             fixed(m.estimates[k], "%.9g") + "\n";
      s.x.push_back(double(k + 1));
      s.y.push_back(m.estimates[k]);
    }
    chart = {
        "incremental mean of N(1, noise^2) draws", "samples k", "estimate w_k", {s}, false, {mean}};
    summary.add("final", m.estimates.back()).add("error", std::abs(m.estimates.back() - mean));
  } else if (problem == "rm-cubic" || problem == "rm-tanh") {
    const bool cubic = problem == "rm-cubic";
    rl::RobbinsMonroOptions o;
    o.iterations = a.positive_int("iterations", 1000);
    o.noise = noise;
    o.seed = seed;
    try {
      o.a = rl::parse_step_size(a.str("step-size", "1/k"));
    } catch (const Error& e) {
      throw UsageError(std::string("sa: --step-size: ") + e.what());
    }
    o.w1 = number(a, "w1", cubic ? 0.0 : 3.0);
    const std::string bounds = a.str("bounds", cubic ? "0,3" : "none");
    if (bounds != "none") {
      const size_t comma = bounds.find(',');
      // The halves outlive the strtod end pointers into them.
      const std::string lo = bounds.substr(0, comma),
                        hi = comma == std::string::npos ? "" : bounds.substr(comma + 1);
      char *e1 = nullptr, *e2 = nullptr;
      o.lo = std::strtod(lo.c_str(), &e1);
      o.hi = std::strtod(hi.c_str(), &e2);
      if (comma == std::string::npos || lo.empty() || hi.empty() || *e1 || *e2 || !(o.lo < o.hi))
        throw UsageError("sa: --bounds '" + bounds + "' is not LO,HI with LO < HI, nor 'none'");
    }
    const double root = cubic ? std::cbrt(5.0) : 1.0;
    const auto g = cubic ? std::function<double(double)>([](double w) { return w * w * w - 5; })
                         : std::function<double(double)>([](double w) { return std::tanh(w - 1); });
    const std::vector<double> w = rl::robbins_monro(g, o);
    csv = "k,w,a_k\n";
    Series s{"w_k", {}, {}};
    double sum_a = 0, sum_a2 = 0;
    for (size_t k = 0; k < w.size(); ++k) {
      const double ak = o.a.at(int64_t(k + 1));
      csv += std::to_string(k + 1) + "," + fixed(w[k], "%.9g") + "," + fixed(ak, "%.9g") + "\n";
      s.x.push_back(double(k + 1));
      s.y.push_back(w[k]);
      if (k + 1 < w.size()) {
        sum_a += ak;
        sum_a2 += ak * ak;
      }
    }
    chart = {std::string("Robbins-Monro on ") + (cubic ? "w^3 - 5" : "tanh(w - 1)") +
                 ", a_k = " + o.a.name(),
             "iteration k",
             "w_k",
             {s},
             false,
             {root}};
    const bool diverged = int64_t(w.size()) < o.iterations + 1;
    summary.add("root", root)
        .add("final", w.back())
        .add("error", std::abs(w.back() - root))
        .add("diverged", diverged)
        .add("step_size", o.a.name())
        .add("sum_a", sum_a)
        .add("sum_a_squared", sum_a2)
        .add("sum_a_diverges", o.a.sum_diverges())
        .add("sum_a_squared_converges", o.a.square_sum_converges());
  } else if (problem == "gd-mean") {
    const int64_t iterations = a.positive_int("iterations", 50);
    const auto points = rl::uniform_square(400, 60.0, seed);
    double mx = 0, my = 0;
    for (const auto& p : points) {
      mx += p[0] / 400;
      my += p[1] / 400;
    }
    csv = "k,batch,w_x,w_y,distance\n";
    chart = {"mean of 400 points by gradient descent, a_k = 1/k",
             "iteration k",
             "distance from the mean",
             {},
             true,
             {}};
    for (int64_t batch : {1, 5, 50, 400}) {
      const auto w = rl::mean_by_gradient_descent(points, batch, iterations, {50, 50}, seed + 1);
      Series s{batch == 1     ? "SGD (batch 1)"
               : batch == 400 ? "batch GD (400)"
                              : "mini-batch " + std::to_string(batch),
               {},
               {}};
      for (size_t k = 0; k < w.size(); ++k) {
        const double d = std::hypot(w[k][0] - mx, w[k][1] - my);
        csv += std::to_string(k + 1) + "," + std::to_string(batch) + "," + fixed(w[k][0], "%.9g") +
               "," + fixed(w[k][1], "%.9g") + "," + fixed(d, "%.9g") + "\n";
        s.x.push_back(double(k + 1));
        s.y.push_back(d);
      }
      summary.add("distance_batch_" + std::to_string(batch), s.y.back());
      chart.series.push_back(s);
    }
  } else {
    throw UsageError("sa: --problem '" + problem + "' is not mean, rm-cubic, rm-tanh or gd-mean");
  }
  write_file(out + "/iterates.csv", csv, "sa --out");
  write_file(out + "/plot.png", chart_png(chart), "sa --out");
  std::printf("%s\n", summary.str().c_str());
  return 0;
}

}  // namespace spool::cli
