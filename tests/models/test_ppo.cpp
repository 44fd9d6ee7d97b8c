// PPO for the language model (models/ppo.h): every loss term and every gradient against PyTorch
// (tests/fixtures/make_ppo_fixture.py: a 2-layer GPT-2 policy with a value head, the policy that
// sampled the rollout and a reference, 4 rows with prompts and padding masked, ratios and values
// on both sides of their clip ranges); GAE against hand-worked cases; minibatches against the
// whole batch; the rollout's layout.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/autograd.h"
#include "engine/factory.h"
#include "engine/safetensors.h"
#include "models/ppo.h"
#include "ops/ops.h"
#include "tests/support/helpers.h"

using namespace spool;
using namespace spool::models;
using spool::test_support::expect_matches;

namespace {

const std::string kFixtures = std::string(SPOOL_SOURCE_DIR) + "/tests/fixtures/";

GptConfig fixture_config() {
  GptConfig c;
  c.vocab = 256;
  c.context = 32;
  c.d = 64;
  c.layers = 2;
  c.heads = 2;
  return c;
}

std::shared_ptr<PolicyWithValue> load_policy(const std::string& file) {
  auto m = std::make_shared<PolicyWithValue>(fixture_config());
  m->load_state_dict(load_safetensors(kFixtures + file).tensors);
  return m;
}

// The fixture's batch, scored by the policy that sampled it and the reference.
Rollout fixture_rollout() {
  auto old = load_policy("ppo_old.safetensors");
  Gpt ref(fixture_config());
  ref.load_state_dict(load_safetensors(kFixtures + "ppo_reference.safetensors").tensors);
  const TensorFile batch = load_safetensors(kFixtures + "ppo_batch.safetensors");
  Rollout r;
  r.tokens = batch.at("tokens");
  r.mask = batch.at("mask");
  score_tokens(r, *old, ref);
  r.scores = batch.at("scores");
  return r;
}

// A rollout of one row of `values.size() + 1` tokens whose sampled tokens start at `first`.
Rollout one_row(const std::vector<double>& values, int64_t first, double score,
                const std::vector<double>& logps = {}, const std::vector<double>& ref = {}) {
  const int64_t t = int64_t(values.size());
  Rollout r;
  r.tokens = zeros({1, t + 1}, DType::i64);
  std::vector<double> mask(size_t(t + 1), 0.0);
  for (int64_t j = first; j <= t; ++j) mask[size_t(j)] = 1;
  r.mask = from_vector(mask, {1, t + 1});
  r.values = from_vector(values, {1, t});
  r.logps = logps.empty() ? zeros({1, t}, DType::f64) : from_vector(logps, {1, t});
  r.ref_logps = ref.empty() ? zeros({1, t}, DType::f64) : from_vector(ref, {1, t});
  r.scores = from_vector(std::vector<double>{score}, {1});
  return r;
}

}  // namespace

TEST(Ppo, LossTermsAndGradientsMatchTorch) {
  auto policy = load_policy("ppo_policy.safetensors");
  Rollout r = fixture_rollout();
  const PpoOptions o;  // the fixture's settings are the defaults
  ppo_advantages(r, o);
  const PpoLoss l = ppo_loss(*policy, r, {}, o);
  backward(l.loss);

  const TensorFile want = load_safetensors(kFixtures + "ppo_expected.safetensors");
  TensorFile got, want_values;
  const auto put = [&](const std::string& name, const Tensor& t) {
    got.tensors.emplace_back(name, t);
    want_values.tensors.emplace_back(name, want.at(name));
  };
  put("rewards", r.rewards);
  put("advantages", r.advantages);
  put("returns", r.returns);
  put("loss", reshape(l.loss.detach(), {1}));
  put("policy_loss", reshape(l.policy_loss, {1}));
  put("value_loss", reshape(l.value_loss, {1}));
  for (const auto& [name, p] : policy->named_parameters()) put("grad." + name, p.grad());
  // Rewards, advantages, returns, three losses, 28 GPT gradients and the value head's two.
  EXPECT_EQ(expect_matches(got, want_values, 1e-4, "ppo"), 6 + 28 + 2);
  // The clip fractions count tokens (the fixture keeps every ratio 0.009 or more from its
  // bounds, so float32 cannot move one across).
  EXPECT_NEAR(l.approx_kl, want.at("approx_kl").item(), 1e-5);
  EXPECT_NEAR(l.clip_fraction, want.at("clip_fraction").item(), 1e-6);
  EXPECT_NEAR(l.value_clip_fraction, want.at("value_clip_fraction").item(), 1e-6);
  EXPECT_GT(l.clip_fraction, 0.1);  // both branches of both maxima are exercised
  EXPECT_GT(l.value_clip_fraction, 0.1);
}

TEST(Ppo, MinibatchLossesAddUpToTheBatchByTokenCount) {
  auto policy = load_policy("ppo_policy.safetensors");
  Rollout r = fixture_rollout();
  ppo_advantages(r, PpoOptions{});
  NoGrad no_grad;
  // Sampled tokens per row: 24, 19, 12, 24 (ends 32, 27, 20, 32 after an 8-token prompt).
  const double all = ppo_loss(*policy, r, {}, {}).loss.item();
  const double a = ppo_loss(*policy, r, {2, 0}, {}).loss.item();
  const double b = ppo_loss(*policy, r, {3, 1}, {}).loss.item();
  EXPECT_NEAR(all, (a * 36 + b * 43) / 79, 1e-5 * std::abs(all));
  EXPECT_THROW(ppo_loss(*policy, r, {4}, {}), Error);
}

TEST(Ppo, GaeWithLambdaOneIsTheReturnToGoMinusTheValue) {
  // gamma 1, lambda 1, no penalty, no whitening: every sampled token's advantage is the score
  // (the only reward) minus its value; the prompt's entries stay 0.
  Rollout r = one_row({0.5, 0.25, -1.0, 2.0}, 2, 3.0);
  PpoOptions o;
  o.lambda = 1;
  o.kl_coef = 0;
  o.whiten = false;
  ppo_advantages(r, o);
  EXPECT_EQ(r.advantages.to_vector<double>(), (std::vector<double>{0, 2.75, 4.0, 1.0}));
  EXPECT_EQ(r.returns.to_vector<double>(), (std::vector<double>{0, 3.0, 3.0, 3.0}));
  EXPECT_EQ(r.rewards.to_vector<double>(), (std::vector<double>{0, 0, 0, 3.0}));
}

TEST(Ppo, GaeWithLambdaZeroIsTheOneStepError) {
  // lambda 0: A_t = r_t + gamma V_{t+1} - V_t, with the KL penalty -0.5 (logp - ref) per token.
  Rollout r = one_row({1.0, 2.0, 4.0}, 1, 10.0, {-1.0, -2.0, -3.0}, {-1.5, -1.0, -3.0});
  PpoOptions o;
  o.lambda = 0;
  o.gamma = 0.5;
  o.kl_coef = 0.5;
  o.whiten = false;
  ppo_advantages(r, o);
  // rewards: -0.5 * (0.5, -1, 0) + (0, 0, 10) = (-0.25, 0.5, 10)
  EXPECT_EQ(r.rewards.to_vector<double>(), (std::vector<double>{-0.25, 0.5, 10.0}));
  // A = (-0.25 + 0.5 * 2 - 1, 0.5 + 0.5 * 4 - 2, 10 - 4)
  EXPECT_EQ(r.advantages.to_vector<double>(), (std::vector<double>{-0.25, 0.5, 6.0}));
}

TEST(Ppo, WhitenedAdvantagesHaveMeanZeroAndUnitVarianceOverSampledTokens) {
  Rollout r = one_row({0.5, 0.25, -1.0, 2.0, 0.0}, 2, 3.0);
  ppo_advantages(r, PpoOptions{});
  const auto a = r.advantages.to_vector<double>();
  EXPECT_EQ(a[0], 0.0);  // the prompt's entry
  double mean = 0, ss = 0;
  for (size_t i = 1; i < a.size(); ++i) mean += a[i] / 4;
  for (size_t i = 1; i < a.size(); ++i) ss += (a[i] - mean) * (a[i] - mean);
  EXPECT_NEAR(mean, 0, 1e-12);
  EXPECT_NEAR(ss / 3, 1, 1e-6);  // unbiased variance, as TRL's masked_whiten
}

TEST(Ppo, RolloutLayoutAndErrors) {
  const Rollout r = make_rollout({{1, 2}, {3, 4}}, {{5, 6, 7}, {8, 9, 10}});
  EXPECT_EQ(r.tokens.to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 5, 6, 7, 3, 4, 8, 9, 10}));
  EXPECT_EQ(r.mask.to_vector<double>(), (std::vector<double>{0, 0, 1, 1, 1, 0, 0, 1, 1, 1}));
  EXPECT_THROW(make_rollout({{1, 2}, {3}}, {{5}, {6}}), Error);
  EXPECT_THROW(make_rollout({{1}}, {{5}, {6}}), Error);
  Rollout unscored = r;
  EXPECT_THROW(ppo_advantages(unscored, PpoOptions{}), Error);
}

TEST(Ppo, TokenLogpsSumToTheSequenceLogps) {
  Generator gen(3);
  const Tensor logits = randn({2, 5, 7}, DType::f64, &gen);
  const Tensor tokens = from_vector(std::vector<int64_t>{1, 2, 3, 4, 5, 6, 0, 1, 2, 3}, {2, 5});
  const Tensor mask = from_vector(std::vector<double>{0, 0, 1, 1, 0, 0, 1, 1, 1, 1}, Shape{2, 5});
  const auto per_token = token_logps(logits, tokens).to_vector<double>();
  const auto summed = sequence_logps(logits, tokens, mask).to_vector<double>();
  EXPECT_NEAR(summed[0], per_token[1] + per_token[2], 1e-12);
  EXPECT_NEAR(summed[1], per_token[4] + per_token[5] + per_token[6] + per_token[7], 1e-12);
}
