#include "tools/gpt_weights.h"

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
  auto heads = file.metadata.find("n_head");
  c.heads =
      heads != file.metadata.end() ? std::stoll(heads->second) : std::max<int64_t>(1, c.d / 64);
  auto model = std::make_shared<models::Gpt>(c, gen);
  model->load_state_dict(state);
  return model;
}

}  // namespace spool::cli
