// Preference training on the GPT (CONFIGS.md dpo-gpt-tiny): sequence log-probabilities over
// completion tokens, the DPO loss and its variants against a frozen reference, the metrics the
// Python preference tools log, and a Bradley-Terry reward model for comparison.
//
// A batch of B pairs is one [2B, T] token tensor, chosen rows first, with a [2B, T] mask that is 1
// on completion tokens. The mask sits on the predicted token: mask[n, t] = 1 counts
// log p(tokens[n, t] | tokens[n, < t]), which the logits at position t - 1 give, so mask[n, 0]
// never counts.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "models/gpt.h"
#include "nn/linear.h"

namespace spool::models {

// log softmax(logits[n, t - 1])[tokens[n, t]] for t >= 1: [N, T - 1], entry t - 1 for the
// token at t. Differentiable in logits.
Tensor token_logps(const Tensor& logits, const Tensor& tokens);

// Sum over t >= 1 of mask[n, t] * log softmax(logits[n, t - 1])[tokens[n, t]]: [N] for logits
// [N, T, V], tokens [N, T] i64 and mask [N, T] (the logits' dtype). Differentiable in logits.
Tensor sequence_logps(const Tensor& logits, const Tensor& tokens, const Tensor& mask);

// sigmoid: the DPO paper's -log sigmoid(beta h), where h = (pi_c - ref_c) - (pi_r - ref_r).
// cdpo: conservative DPO, the sigmoid loss with labels flipped with probability epsilon
//   (label_smoothing): -(1 - e) log sigmoid(beta h) - e log sigmoid(-beta h).
// ipo: (h - 1 / (2 beta))^2 (Azar et al.; h from summed log-probabilities as everywhere here).
// hinge: max(0, 1 - beta h) (SLiC).
enum class DpoLossType { sigmoid, cdpo, ipo, hinge };
DpoLossType parse_dpo_loss(const std::string& name);  // Error naming the known ones
const char* dpo_loss_name(DpoLossType t);

struct DpoOptions {
  DpoLossType loss = DpoLossType::sigmoid;
  double beta = 0.1;
  double label_smoothing = 0;  // cdpo's epsilon, in [0, 0.5)
};

struct DpoResult {
  Tensor loss;                              // mean over pairs
  Tensor chosen_rewards, rejected_rewards;  // beta * (pi - ref), [B], detached
  Tensor policy_chosen, policy_rejected;    // summed log-probabilities, [B], detached
};

// All four log-probability tensors are [B]; the reference ones carry no gradient.
DpoResult dpo_loss(const Tensor& policy_chosen, const Tensor& policy_rejected,
                   const Tensor& ref_chosen, const Tensor& ref_rejected, const DpoOptions& o);

// rewards/chosen, rewards/rejected, rewards/accuracies (chosen reward > rejected reward),
// rewards/margins, logps/chosen, logps/rejected (means over the pairs) and loss.
std::map<std::string, double> dpo_metrics(const DpoResult& r);

// Policy log-probabilities of a pair batch, split into chosen [B] and rejected [B].
std::pair<Tensor, Tensor> pair_logps(Gpt& model, const Tensor& tokens, const Tensor& mask);

// Bradley-Terry reward model: a GPT trunk (`transformer.*`, GPT-2 names) and a scalar head
// `score.weight` [1, d] without bias, read at the last completion token of each row, as Hugging
// Face's GPT2ForSequenceClassification reads the last real token. Loss: -log sigmoid(r_c - r_r).
class RewardModel : public nn::Module {
 public:
  explicit RewardModel(const GptConfig& c, Generator* gen = nullptr);
  std::string type_name() const override { return "RewardModel"; }
  // tokens, mask [N, T] -> rewards [N]. A row without completion tokens is an error.
  Tensor rewards(const Tensor& tokens, const Tensor& mask);
  Tensor forward(const Tensor& tokens) override;  // reads the last position
  std::shared_ptr<Gpt> transformer;
  std::shared_ptr<nn::Linear> score;
};

}  // namespace spool::models
