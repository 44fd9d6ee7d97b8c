#include "models/ppo.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/factory.h"
#include "nn/init.h"
#include "ops/ops.h"

namespace spool::models {

PolicyWithValue::PolicyWithValue(const GptConfig& c, Generator* gen) {
  transformer = register_module("transformer", std::make_shared<Gpt>(c, gen));
  v_head = register_module("v_head", std::make_shared<nn::Linear>(c.d, 1, true, gen));
  nn::init::normal_(v_head->weight, 0, 0.02, gen);
  nn::init::zeros_(v_head->bias);
}

std::pair<Tensor, Tensor> PolicyWithValue::forward_both(const Tensor& tokens) {
  const Tensor f = transformer->features(tokens);  // [N, T, d]
  const Tensor values = reshape(v_head->forward(f), {tokens.size(0), tokens.size(1)});
  return {transformer->head(f), values};
}

Tensor PolicyWithValue::forward(const Tensor& tokens) { return forward_both(tokens).first; }

Rollout make_rollout(const std::vector<std::vector<int64_t>>& prompts,
                     const std::vector<std::vector<int64_t>>& completions) {
  SPOOL_CHECK(!prompts.empty() && prompts.size() == completions.size(),
              "make_rollout: ", prompts.size(), " prompts and ", completions.size(),
              " completions");
  const int64_t n = int64_t(prompts.size()), p = int64_t(prompts[0].size()),
                c = int64_t(completions[0].size());
  SPOOL_CHECK(p >= 1 && c >= 1, "make_rollout: prompts of ", p, " and completions of ", c,
              " tokens; both need at least one");
  std::vector<int64_t> ids;
  std::vector<float> mask;
  for (int64_t i = 0; i < n; ++i) {
    SPOOL_CHECK(
        int64_t(prompts[size_t(i)].size()) == p && int64_t(completions[size_t(i)].size()) == c,
        "make_rollout: row ", i, " differs in length from row 0");
    ids.insert(ids.end(), prompts[size_t(i)].begin(), prompts[size_t(i)].end());
    ids.insert(ids.end(), completions[size_t(i)].begin(), completions[size_t(i)].end());
    for (int64_t t = 0; t < p + c; ++t) mask.push_back(t >= p ? 1.0f : 0.0f);
  }
  Rollout r;
  r.tokens = from_vector(ids, {n, p + c});
  r.mask = from_vector(mask, {n, p + c});
  return r;
}

void score_tokens(Rollout& r, PolicyWithValue& policy, Gpt& reference) {
  NoGrad no_grad;
  const int64_t t = r.tokens.size(1);
  auto [logits, values] = policy.forward_both(r.tokens);
  r.logps = token_logps(logits, r.tokens);
  r.values = contiguous(narrow(values, 1, 0, t - 1));
  r.ref_logps = token_logps(reference.forward(r.tokens), r.tokens);
}

namespace {

Tensor like(const std::vector<double>& v, const Tensor& shape_of) {
  return to(to(from_vector(v, shape_of.shape()), shape_of.dtype()), shape_of.device());
}

// The completion mask of the per-token tensors: mask[:, 1:].
Tensor token_mask(const Rollout& r) { return contiguous(narrow(r.mask, 1, 1, r.mask.size(1) - 1)); }

std::vector<double> on_cpu(const Tensor& x) {
  return to(to(x, DType::f64), Device::cpu()).to_vector<double>();
}

}  // namespace

void ppo_advantages(Rollout& r, const PpoOptions& o) {
  SPOOL_CHECK(
      r.logps.defined() && r.ref_logps.defined() && r.values.defined() && r.scores.defined(),
      "ppo_advantages: the rollout has not been scored (logps, ref_logps, values, scores)");
  const int64_t n = r.tokens.size(0), t = r.tokens.size(1) - 1;
  SPOOL_CHECK(r.logps.shape() == Shape({n, t}) && r.ref_logps.shape() == r.logps.shape() &&
                  r.values.shape() == r.logps.shape() && r.scores.shape() == Shape({n}),
              "ppo_advantages: logps ", describe(r.logps), ", ref_logps ", describe(r.ref_logps),
              ", values ", describe(r.values), " and scores ", describe(r.scores),
              " do not fit tokens ", describe(r.tokens));
  const auto lp = on_cpu(r.logps), ref = on_cpu(r.ref_logps), v = on_cpu(r.values),
             score = on_cpu(r.scores), m = on_cpu(token_mask(r));
  std::vector<double> rew(lp.size(), 0.0), adv(lp.size(), 0.0), ret(lp.size(), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const size_t row = size_t(i * t);
    int64_t last = -1;
    for (int64_t j = 0; j < t; ++j)
      if (m[row + size_t(j)] != 0) {
        rew[row + size_t(j)] = -o.kl_coef * (lp[row + size_t(j)] - ref[row + size_t(j)]);
        last = j;
      }
    SPOOL_CHECK(last >= 0, "ppo_advantages: row ", i, " has no sampled token");
    rew[row + size_t(last)] += score[size_t(i)];
    double next_value = 0, next_adv = 0;
    for (int64_t j = t - 1; j >= 0; --j) {
      const size_t k = row + size_t(j);
      if (m[k] == 0) {  // prompt or padding: the recursion starts again after it
        next_value = next_adv = 0;
        continue;
      }
      const double delta = rew[k] + o.gamma * next_value - v[k];
      adv[k] = delta + o.gamma * o.lambda * next_adv;
      ret[k] = adv[k] + v[k];
      next_value = v[k];
      next_adv = adv[k];
    }
  }
  if (o.whiten) {
    double total = 0, count = 0, ss = 0;
    for (size_t k = 0; k < adv.size(); ++k)
      if (m[k] != 0) total += adv[k], count += 1;
    const double mu = total / count;
    for (size_t k = 0; k < adv.size(); ++k)
      if (m[k] != 0) ss += (adv[k] - mu) * (adv[k] - mu);
    SPOOL_CHECK(count >= 2, "ppo_advantages: whitening needs at least two sampled tokens");
    const double scale = 1 / std::sqrt(ss / (count - 1) + 1e-8);
    for (size_t k = 0; k < adv.size(); ++k) adv[k] = m[k] != 0 ? (adv[k] - mu) * scale : 0.0;
  }
  r.rewards = like(rew, r.logps);
  r.advantages = like(adv, r.logps);
  r.returns = like(ret, r.logps);
}

PpoLoss ppo_loss(PolicyWithValue& policy, const Rollout& r, const std::vector<int64_t>& rows,
                 const PpoOptions& o) {
  SPOOL_CHECK(r.advantages.defined(), "ppo_loss: the rollout has no advantages (ppo_advantages)");
  const int64_t t = r.tokens.size(1);
  Tensor index;
  if (!rows.empty()) {
    for (int64_t i : rows)
      SPOOL_CHECK(i >= 0 && i < r.tokens.size(0), "ppo_loss: row ", i, " of a rollout of ",
                  r.tokens.size(0));
    index = to(from_vector(rows), r.tokens.device());
  }
  const auto pick = [&](const Tensor& x) {
    return index.defined() ? index_select(x, 0, index) : x;
  };
  const Tensor tokens = pick(r.tokens), m = pick(token_mask(r)), old_lp = pick(r.logps),
               old_v = pick(r.values), adv = pick(r.advantages), ret = pick(r.returns);
  const double count = sum(to(m, DType::f64)).item();
  SPOOL_CHECK(count > 0, "ppo_loss: the rows hold no sampled token");
  const auto mmean = [&](const Tensor& x) { return sum(x * m) / count; };

  auto [logits, values] = policy.forward_both(tokens);
  const Tensor lp = token_logps(logits, tokens);
  const Tensor v = narrow(values, 1, 0, t - 1);
  const Tensor ratio = exp(lp - old_lp);
  const Tensor pg1 = -adv * ratio, pg2 = -adv * clamp(ratio, 1 - o.clip, 1 + o.clip);
  const Tensor pg_clipped = gt(pg2, pg1);
  const Tensor policy_loss = mmean(where(pg_clipped, pg2, pg1));
  const Tensor v_clipped = old_v + clamp(v - old_v, -o.clip_value, o.clip_value);
  const Tensor vf1 = pow(v - ret, 2.0), vf2 = pow(v_clipped - ret, 2.0);
  const Tensor vf_clipped = gt(vf2, vf1);
  const Tensor value_loss = mmean(where(vf_clipped, vf2, vf1)) * 0.5;

  PpoLoss out;
  out.loss = policy_loss + value_loss * o.vf_coef;
  NoGrad no_grad;
  out.policy_loss = policy_loss.detach();
  out.value_loss = value_loss.detach();
  const Tensor d = lp.detach() - old_lp;
  out.approx_kl = (mmean(d * d) * 0.5).item();
  out.clip_fraction = mmean(to(pg_clipped, m.dtype())).item();
  out.value_clip_fraction = mmean(to(vf_clipped, m.dtype())).item();
  return out;
}

Tensor sample_kl(const Rollout& r) {
  NoGrad no_grad;
  return sum((r.logps - r.ref_logps) * token_mask(r), {1});
}

}  // namespace spool::models
