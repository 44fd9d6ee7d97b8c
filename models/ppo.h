// PPO for the language model, the RL stage of RLHF (ppo-gpt-tiny, docs/rl.md): a policy GPT with
// a value head samples completions of prompts; a Bradley-Terry reward model (models/dpo.h) scores
// each completion; a frozen reference (the SFT model) gives a per-token KL penalty; generalised
// advantage estimation turns these into advantages; the clipped surrogate and a clipped value
// loss train policy and value head together. The terms follow the PPO-for-RLHF formulation of
// Ziegler et al. and Stiennon et al. as the TRL library's PPO trainer computes them.
//
// Per-token tensors of a rollout are [N, T - 1]: entry t - 1 belongs to the token at t, which the
// logits (and the value) at position t - 1 predict, as token_logps lays them out. `mask` is
// [N, T] with the preference code's convention: mask[n, t] = 1 when token t was sampled.
#pragma once
#include <memory>
#include <utility>
#include <vector>

#include "models/dpo.h"

namespace spool::models {

struct PpoOptions {
  double kl_coef = 0.05;    // the per-token reward -kl_coef (log pi_old - log ref)
  double gamma = 1.0;       // discount over completion tokens
  double lambda = 0.95;     // GAE's lambda
  double clip = 0.2;        // the ratio's clip range, 1 -/+ clip
  double clip_value = 0.2;  // the value's clip range around the rollout's values
  double vf_coef = 0.1;     // loss = policy loss + vf_coef value loss
  bool whiten = true;       // advantages to mean 0, variance 1 over the batch's tokens
};

// The policy of ppo-gpt-tiny: a GPT (`transformer.*`, GPT-2 names, so `spool generate` reads the
// policy from a checkpoint) and a value head `v_head` (Linear d -> 1 with bias) on the same final
// features.
class PolicyWithValue : public nn::Module {
 public:
  explicit PolicyWithValue(const GptConfig& c, Generator* gen = nullptr);
  std::string type_name() const override { return "PolicyWithValue"; }
  // tokens [N, T] -> logits [N, T, vocab] and values [N, T] from one pass of the trunk.
  std::pair<Tensor, Tensor> forward_both(const Tensor& tokens);
  Tensor forward(const Tensor& tokens) override;  // the logits
  std::shared_ptr<Gpt> transformer;
  std::shared_ptr<nn::Linear> v_head;
};

struct Rollout {
  Tensor tokens;  // [N, T] i64: prompt, then the sampled completion
  Tensor mask;    // [N, T]: 1 on sampled tokens
  // At sampling time, detached, [N, T - 1]: the policy's and the reference's log-probabilities
  // of each token and the policy's value before it.
  Tensor logps, ref_logps, values;
  Tensor scores;  // [N]: the reward model's score of each completion
  // From ppo_advantages, [N, T - 1] (zero off the completion).
  Tensor rewards, advantages, returns;
};

// Tokens and mask for prompts (one length) continued by `completions` (one length).
Rollout make_rollout(const std::vector<std::vector<int64_t>>& prompts,
                     const std::vector<std::vector<int64_t>>& completions);

// Fills logps and values from `policy` and ref_logps from `reference`, under NoGrad.
void score_tokens(Rollout& r, PolicyWithValue& policy, Gpt& reference);

// rewards: -kl_coef (logps - ref_logps) on every sampled token, plus the score on each row's last
// one. advantages: GAE backwards over each row's completion, delta_t = r_t + gamma V_{t+1} - V_t
// with V = 0 after the last token; returns = advantages + values; then the advantages are
// whitened over the batch's sampled tokens (unbiased variance, + 1e-8) when o.whiten.
void ppo_advantages(Rollout& r, const PpoOptions& o);

struct PpoLoss {
  Tensor loss;                     // policy_loss + vf_coef * value_loss, differentiable
  Tensor policy_loss, value_loss;  // detached
  double approx_kl = 0;            // 0.5 mean (log pi - log pi_old)^2
  double clip_fraction = 0;        // share of tokens where the clipped ratio term is taken
  double value_clip_fraction = 0;  // the same for the value loss
};

// Over the sampled tokens of rows `rows` of the rollout (every row when empty), with ratio =
// exp(log pi - log pi_old) and A the advantages:
//   policy_loss = mean(max(-A ratio, -A clip(ratio, 1 - clip, 1 + clip)))
//   value_loss  = 0.5 mean(max((V - R)^2, (V_old + clip(V - V_old, -cv, cv) - R)^2))
PpoLoss ppo_loss(PolicyWithValue& policy, const Rollout& r, const std::vector<int64_t>& rows,
                 const PpoOptions& o);

// Per row, the summed log pi - log ref of the sampled tokens [N]: the sample estimate of
// KL(pi || ref) of a completion (exact in expectation at temperature 1, every token allowed).
Tensor sample_kl(const Rollout& r);

}  // namespace spool::models
