#include "tools/gpt_weights.h"

#include "engine/checked.h"
#include "nn/checkpoint_meta.h"
#include "tools/cli.h"

namespace spool::cli {

std::shared_ptr<models::Gpt> load_gpt(const TensorFile& file, Generator* gen) {
  std::string prefix;
  for (const char* p : {"model.", "transformer.", "model.transformer."})
    if (file.has(std::string(p) + "wte.weight")) prefix = p;
  nn::NamedTensors state;
  for (const auto& [n, t] : file.tensors) {
    if (n.rfind(prefix, 0) != 0) continue;
    const std::string name = n.substr(prefix.size());
    // GPT-2 files from Hugging Face may carry the causal-mask buffers; they are not weights.
    if (name.size() > 10 && (name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias")))
      continue;
    state.emplace_back(name, t);
  }
  auto find = [&](const std::string& n) -> const Tensor& {
    for (const auto& [k, t] : state)
      if (k == n) return t;
    throw UsageError("--weights: " + file.path + " has no tensor '" + prefix + n +
                     "' (expected GPT-2 names)");
  };
  const Tensor& wte = find("wte.weight");
  const Tensor& wpe = find("wpe.weight");
  if (wte.dim() != 2 || wpe.dim() != 2 || wte.size(1) != wpe.size(1))
    throw UsageError("--weights: wte " + describe(wte) + " and wpe " + describe(wpe) +
                     " are not GPT-2 embeddings");
  models::GptConfig c;
  c.vocab = wte.size(0);
  c.context = wpe.size(0);
  c.d = wte.size(1);
  c.layers = 0;
  while (file.has(prefix + "h." + std::to_string(c.layers) + ".ln_1.weight")) ++c.layers;
  if (c.vocab < 1 || c.context < 1 || c.d < 1 || c.layers < 1)
    throw UsageError("--weights: " + file.path + ": wte " + describe(wte) + ", wpe " +
                     describe(wpe) + " and " + std::to_string(c.layers) +
                     " layers do not make a GPT");
  if (file.metadata.count("n_head")) {
    try {
      c.heads = nn::metadata_int(file, "n_head", 1, c.d);
    } catch (const Error& e) {
      throw UsageError(std::string("--weights: ") + e.what());
    }
  } else {
    c.heads = std::max<int64_t>(1, c.d / 64);
  }
  if (c.d % c.heads != 0)
    throw UsageError("--weights: " + file.path + ": n_head " + std::to_string(c.heads) +
                     " does not divide the width " + std::to_string(c.d));
  // The model this file describes must be no larger than the weights it holds: a few small
  // tensors must not size a model of gigabytes before load_state_dict finds them missing.
  const char* what = "--weights: the GPT's parameter count";
  const int64_t per_layer = checked_add(checked_mul(checked_mul(c.d, c.d, what), 12, what),
                                        checked_mul(c.d, 13, what), what);
  const int64_t needed =
      checked_add(checked_add(checked_mul(checked_add(c.vocab, c.context, what), c.d, what),
                              checked_mul(c.layers, per_layer, what), what),
                  checked_mul(c.d, 2, what), what);
  int64_t held = 0;
  for (const auto& [n, t] : state) held = checked_add(held, t.numel(), what);
  if (held < needed)
    throw UsageError("--weights: " + file.path + " describes a GPT of " + std::to_string(needed) +
                     " parameters (vocab " + std::to_string(c.vocab) + ", context " +
                     std::to_string(c.context) + ", width " + std::to_string(c.d) + ", " +
                     std::to_string(c.layers) + " layers) but holds " + std::to_string(held) +
                     " values: weights are missing");
  auto model = std::make_shared<models::Gpt>(c, gen);
  try {
    model->load_state_dict(state);
  } catch (const Error& e) {
    throw UsageError("--weights: " + file.path + ": " + e.what());
  }
  return model;
}

std::shared_ptr<models::RewardModel> load_reward_model(const TensorFile& file,
                                                       const std::string& flag) {
  std::string head;
  for (const char* p : {"score.weight", "model.score.weight"})
    if (file.has(p)) head = p;
  if (head.empty())
    throw UsageError(flag + ": " + file.path +
                     " holds no reward head 'score.weight' (a reward model is trained with spool "
                     "train --model reward-gpt-tiny)");
  auto trunk = load_gpt(file);
  auto model = std::make_shared<models::RewardModel>(trunk->config());
  model->transformer->load_state_dict(trunk->state_dict());
  const Tensor& w = file.at(head);
  if (w.shape() != Shape({1, trunk->config().d}))
    throw UsageError(flag + ": " + file.path + ": " + head + " is " + describe(w) +
                     "; expected [1, " + std::to_string(trunk->config().d) + "]");
  model->score->load_state_dict({{"weight", w}});
  return model;
}

}  // namespace spool::cli
