#include "rl/policy_gradient.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/factory.h"
#include "nn/layers.h"
#include "nn/linear.h"
#include "nn/optim.h"
#include "ops/ops.h"

namespace spool::rl {

double Episode::total_reward() const {
  double r = 0;
  for (double x : rewards) r += x;
  return r;
}

std::shared_ptr<nn::Sequential> policy_network(int64_t inputs, int64_t hidden, int64_t outputs,
                                               Generator* gen) {
  SPOOL_CHECK(inputs >= 1 && outputs >= 1 && hidden >= 0, "policy network: ", inputs, " inputs, ",
              hidden, " hidden, ", outputs, " outputs");
  auto net = std::make_shared<nn::Sequential>();
  if (hidden == 0) {
    net->push_back(std::make_shared<nn::Linear>(inputs, outputs, false, gen));
  } else {
    net->push_back(std::make_shared<nn::Linear>(inputs, hidden, true, gen));
    net->push_back(std::make_shared<nn::Tanh>());
    net->push_back(std::make_shared<nn::Linear>(hidden, outputs, true, gen));
  }
  return net;
}

Episode run_episode(Environment& env, nn::Module& policy, Sampler& rng) {
  NoGrad no_grad;
  Episode ep;
  std::vector<float> obs = env.reset(rng);
  const int64_t n = env.observation_size();
  for (int64_t t = 0; t < env.max_steps(); ++t) {
    const auto p = softmax(policy.forward(from_vector(obs, {1, n})), 1).to_vector<float>();
    const std::vector<double> probs(p.begin(), p.end());
    const int a = rng.pick(probs.data(), int(probs.size()));
    EnvStep st = env.step(a, rng);
    ep.observations.push_back(std::move(obs));
    ep.actions.push_back(a);
    ep.rewards.push_back(st.reward);
    obs = std::move(st.observation);
    if (st.done) {
      ep.terminal = true;
      break;
    }
  }
  ep.last_observation = std::move(obs);
  return ep;
}

namespace {

// The episodes' states [T, n] and actions [T, 1], episode after episode.
std::pair<Tensor, Tensor> stacked(const std::vector<Episode>& episodes) {
  std::vector<float> obs;
  std::vector<int64_t> actions;
  for (const auto& ep : episodes) {
    for (const auto& o : ep.observations) obs.insert(obs.end(), o.begin(), o.end());
    actions.insert(actions.end(), ep.actions.begin(), ep.actions.end());
  }
  const int64_t t = int64_t(actions.size());
  SPOOL_CHECK(t > 0, "policy gradient: no steps in the episodes");
  return {from_vector(obs, {t, int64_t(obs.size()) / t}), from_vector(actions, {t, 1})};
}

// log pi(a_t | s_t) [T].
Tensor action_log_probs(nn::Module& policy, const Tensor& obs, const Tensor& actions) {
  const Tensor logp = log_softmax(policy.forward(obs), 1);
  return reshape(gather(logp, 1, actions), {actions.size(0)});
}

// gamma^t of each step of each episode.
std::vector<float> step_discounts(const std::vector<Episode>& episodes, double gamma,
                                  bool discount_weights) {
  std::vector<float> w;
  for (const auto& ep : episodes) {
    double d = 1;
    for (size_t t = 0; t < ep.actions.size(); ++t, d *= gamma)
      w.push_back(discount_weights ? float(d) : 1.0f);
  }
  return w;
}

}  // namespace

Tensor reinforce_loss(nn::Module& policy, const std::vector<Episode>& episodes, double gamma,
                      double baseline, bool discount_weights) {
  auto [obs, actions] = stacked(episodes);
  std::vector<float> weight = step_discounts(episodes, gamma, discount_weights);
  size_t at = 0;
  for (const auto& ep : episodes) {
    std::vector<double> G(ep.rewards.size());
    double g = 0;
    for (size_t t = ep.rewards.size(); t-- > 0;) G[t] = g = ep.rewards[t] + gamma * g;
    for (size_t t = 0; t < G.size(); ++t) weight[at + t] *= float(G[t] - baseline);
    at += G.size();
  }
  const Tensor w = from_vector(weight);
  return -sum(w * action_log_probs(policy, obs, actions)) * (1.0 / double(episodes.size()));
}

A2cLosses a2c_losses(nn::Module& policy, nn::Module& critic, const std::vector<Episode>& episodes,
                     double gamma, bool discount_weights) {
  auto [obs, actions] = stacked(episodes);
  const int64_t T = actions.size(0), n = obs.size(1);
  const Tensor v = reshape(critic.forward(obs), {T});
  // V(s_{t+1}): the next step's state within an episode, its last state after it (0 if terminal).
  std::vector<float> next_obs;
  std::vector<float> alive;
  std::vector<float> rewards;
  for (const auto& ep : episodes) {
    for (size_t t = 0; t < ep.actions.size(); ++t) {
      const bool last = t + 1 == ep.actions.size();
      const auto& o = last ? ep.last_observation : ep.observations[t + 1];
      next_obs.insert(next_obs.end(), o.begin(), o.end());
      alive.push_back(last && ep.terminal ? 0.0f : 1.0f);
      rewards.push_back(float(ep.rewards[t]));
    }
  }
  Tensor target;
  {
    NoGrad no_grad;
    const Tensor v_next = reshape(critic.forward(from_vector(next_obs, {T, n})), {T});
    target = from_vector(rewards) + v_next * from_vector(alive) * gamma;
  }
  const Tensor delta = target - v;
  const Tensor weight =
      delta.detach() * from_vector(step_discounts(episodes, gamma, discount_weights));
  const double e = double(episodes.size());
  return {-sum(weight * action_log_probs(policy, obs, actions)) * (1.0 / e),
          sum(delta * delta) * (0.5 / e)};
}

namespace {

// Samples episodes with the policy and calls update(batch) after every `o.batch` of them (and
// after the last); records each episode's return and length.
template <typename Update>
PolicyGradientRun train_in_batches(Environment& env, nn::Module& policy,
                                   const PolicyGradientOptions& o, Update update) {
  Sampler rng(o.seed);
  PolicyGradientRun run;
  std::vector<Episode> batch;
  for (int64_t e = 0; e < o.episodes; ++e) {
    batch.push_back(run_episode(env, policy, rng));
    run.returns.push_back(batch.back().total_reward());
    run.lengths.push_back(int64_t(batch.back().actions.size()));
    if (int64_t(batch.size()) < o.batch && e + 1 < o.episodes) continue;
    update(batch);
    batch.clear();
  }
  return run;
}

}  // namespace

PolicyGradientRun train_reinforce(Environment& env, nn::Module& policy,
                                  const PolicyGradientOptions& o) {
  SPOOL_CHECK(o.episodes >= 1 && o.batch >= 1 && o.lr > 0, "reinforce: ", o.episodes,
              " episodes in batches of ", o.batch, ", lr ", o.lr);
  nn::Adam opt({{policy.parameters(), {}}}, {.lr = o.lr});
  return train_in_batches(env, policy, o, [&](const std::vector<Episode>& batch) {
    // Baseline: the batch's mean discounted return-to-go.
    double total = 0;
    int64_t steps = 0;
    for (const auto& ep : batch) {
      double g = 0;
      for (size_t t = ep.rewards.size(); t-- > 0;) {
        g = ep.rewards[t] + env.gamma() * g;
        total += g;
        ++steps;
      }
    }
    opt.zero_grad();
    backward(reinforce_loss(policy, batch, env.gamma(), total / double(steps), o.discount_weights));
    opt.step();
  });
}

PolicyGradientRun train_a2c(Environment& env, nn::Module& policy, nn::Module& critic,
                            const PolicyGradientOptions& o) {
  SPOOL_CHECK(o.episodes >= 1 && o.batch >= 1 && o.lr > 0 && o.critic_lr > 0, "a2c: ", o.episodes,
              " episodes in batches of ", o.batch, ", lr ", o.lr, ", critic lr ", o.critic_lr);
  nn::Adam actor_opt({{policy.parameters(), {}}}, {.lr = o.lr});
  nn::Adam critic_opt({{critic.parameters(), {}}}, {.lr = o.critic_lr});
  return train_in_batches(env, policy, o, [&](const std::vector<Episode>& batch) {
    actor_opt.zero_grad();
    critic_opt.zero_grad();
    const A2cLosses l = a2c_losses(policy, critic, batch, env.gamma(), o.discount_weights);
    backward({l.actor, l.critic}, {ones_like(l.actor), ones_like(l.critic)});
    actor_opt.step();
    critic_opt.step();
  });
}

}  // namespace spool::rl
