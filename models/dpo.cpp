#include "models/dpo.h"

#include "engine/autograd.h"
#include "engine/factory.h"
#include "nn/init.h"
#include "ops/ops.h"

namespace spool::models {

namespace {

void check_rows(const char* what, const Tensor& logits, const Tensor& tokens) {
  SPOOL_CHECK(logits.dim() == 3 && tokens.dim() == 2 && logits.size(0) == tokens.size(0) &&
                  logits.size(1) == tokens.size(1),
              what, ": logits ", describe(logits), " and tokens ", describe(tokens),
              " do not describe the same [N, T] rows");
  SPOOL_CHECK(tokens.dtype() == DType::i64, what, ": tokens are ", describe(tokens),
              "; expected i64");
  SPOOL_CHECK(tokens.size(1) >= 2, what, ": rows of ", tokens.size(1), " tokens predict nothing");
}

}  // namespace

Tensor token_logps(const Tensor& logits, const Tensor& tokens) {
  check_rows("token_logps", logits, tokens);
  const int64_t n = tokens.size(0), t = tokens.size(1), v = logits.size(2);
  // Position t - 1 predicts token t: the logits of positions 0..T-2 against tokens 1..T-1.
  Tensor l = reshape(narrow(logits, 1, 0, t - 1), {-1, v});
  Tensor next = reshape(contiguous(narrow(tokens, 1, 1, t - 1)), {-1});
  return reshape(-cross_entropy(l, next, {.reduction = Reduction::none}), {n, t - 1});
}

Tensor sequence_logps(const Tensor& logits, const Tensor& tokens, const Tensor& mask) {
  check_rows("sequence_logps", logits, tokens);
  SPOOL_CHECK(mask.shape() == tokens.shape(), "sequence_logps: mask ", describe(mask),
              " and tokens ", describe(tokens), " differ in shape");
  const int64_t t = tokens.size(1);
  return sum(token_logps(logits, tokens) * narrow(mask, 1, 1, t - 1), {1});
}

DpoLossType parse_dpo_loss(const std::string& name) {
  if (name == "sigmoid") return DpoLossType::sigmoid;
  if (name == "cdpo") return DpoLossType::cdpo;
  if (name == "ipo") return DpoLossType::ipo;
  if (name == "hinge") return DpoLossType::hinge;
  throw Error("unknown DPO loss '" + name + "' (known: sigmoid, cdpo, ipo, hinge)");
}

const char* dpo_loss_name(DpoLossType t) {
  switch (t) {
    case DpoLossType::sigmoid:
      return "sigmoid";
    case DpoLossType::cdpo:
      return "cdpo";
    case DpoLossType::ipo:
      return "ipo";
    case DpoLossType::hinge:
      return "hinge";
  }
  return "?";
}

DpoResult dpo_loss(const Tensor& policy_chosen, const Tensor& policy_rejected,
                   const Tensor& ref_chosen, const Tensor& ref_rejected, const DpoOptions& o) {
  SPOOL_CHECK(policy_chosen.dim() == 1 && policy_rejected.shape() == policy_chosen.shape() &&
                  ref_chosen.shape() == policy_chosen.shape() &&
                  ref_rejected.shape() == policy_chosen.shape(),
              "dpo_loss: log-probabilities ", describe(policy_chosen), ", ",
              describe(policy_rejected), ", ", describe(ref_chosen), ", ", describe(ref_rejected),
              " must all be [B]");
  SPOOL_CHECK(o.beta > 0, "dpo_loss: beta ", o.beta, " must be positive");
  SPOOL_CHECK(o.label_smoothing >= 0 && o.label_smoothing < 0.5, "dpo_loss: label_smoothing ",
              o.label_smoothing, " must be in [0, 0.5)");
  const Tensor rc = ref_chosen.detach(), rr = ref_rejected.detach();
  const Tensor h = (policy_chosen - rc) - (policy_rejected - rr);
  Tensor per_pair;
  switch (o.loss) {
    case DpoLossType::sigmoid:
      per_pair = -log_sigmoid(h * o.beta);
      break;
    case DpoLossType::cdpo:
      per_pair = -log_sigmoid(h * o.beta) * (1 - o.label_smoothing) -
                 log_sigmoid(h * -o.beta) * o.label_smoothing;
      break;
    case DpoLossType::ipo:
      per_pair = pow(h - 1 / (2 * o.beta), 2.0);
      break;
    case DpoLossType::hinge:
      per_pair = relu(1.0 - h * o.beta);
      break;
  }
  DpoResult r;
  r.loss = mean(per_pair);
  NoGrad no_grad;
  r.chosen_rewards = (policy_chosen.detach() - rc) * o.beta;
  r.rejected_rewards = (policy_rejected.detach() - rr) * o.beta;
  r.policy_chosen = policy_chosen.detach();
  r.policy_rejected = policy_rejected.detach();
  return r;
}

std::map<std::string, double> dpo_metrics(const DpoResult& r) {
  NoGrad no_grad;
  const Tensor c = to(r.chosen_rewards, DType::f64), rj = to(r.rejected_rewards, DType::f64);
  return {{"rewards/chosen", mean(c).item()},
          {"rewards/rejected", mean(rj).item()},
          {"rewards/accuracies", mean(to(gt(c, rj), DType::f64)).item()},
          {"rewards/margins", mean(c - rj).item()},
          {"logps/chosen", mean(to(r.policy_chosen, DType::f64)).item()},
          {"logps/rejected", mean(to(r.policy_rejected, DType::f64)).item()},
          {"loss", r.loss.item()}};
}

std::pair<Tensor, Tensor> pair_logps(Gpt& model, const Tensor& tokens, const Tensor& mask) {
  SPOOL_CHECK(tokens.dim() == 2 && tokens.size(0) % 2 == 0, "pair_logps: tokens ", describe(tokens),
              " must be [2B, T], chosen rows then rejected rows");
  const Tensor lp = sequence_logps(model.forward(tokens), tokens, mask);
  const int64_t b = tokens.size(0) / 2;
  return {narrow(lp, 0, 0, b), narrow(lp, 0, b, b)};
}

RewardModel::RewardModel(const GptConfig& c, Generator* gen) {
  transformer = register_module("transformer", std::make_shared<Gpt>(c, gen));
  score = register_module("score", std::make_shared<nn::Linear>(c.d, 1, false, gen));
  nn::init::normal_(score->weight, 0, 0.02, gen);
}

Tensor RewardModel::rewards(const Tensor& tokens, const Tensor& mask) {
  SPOOL_CHECK(tokens.dim() == 2 && mask.shape() == tokens.shape(), "RewardModel: tokens ",
              describe(tokens), " and mask ", describe(mask), " must both be [N, T]");
  const int64_t n = tokens.size(0), t = tokens.size(1);
  const auto m = mask.to_vector<double>();
  std::vector<int64_t> last(size_t(n), -1);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < t; ++j)
      if (m[size_t(i * t + j)] != 0) last[size_t(i)] = i * t + j;
  for (int64_t i = 0; i < n; ++i)
    SPOOL_CHECK(last[size_t(i)] >= 0, "RewardModel: row ", i, " has no completion token");
  const Tensor f = transformer->features(tokens);  // [N, T, d]
  const Tensor picked =
      index_select(reshape(f, {n * t, f.size(2)}), 0, spool::to(from_vector(last), f.device()));
  return reshape(score->forward(picked), {n});
}

Tensor RewardModel::forward(const Tensor& tokens) {
  const Tensor f = transformer->features(tokens);
  return reshape(score->forward(narrow(f, 1, f.size(1) - 1, 1)), {tokens.size(0)});
}

}  // namespace spool::models
