// spool generate: samples bytes from a GPT with a key/value cache (each new token attends to the
// cached keys and values instead of recomputing the prefix).
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "engine/autograd.h"
#include "engine/factory.h"
#include "engine/safetensors.h"
#include "models/gpt.h"
#include "ops/ops.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/gpt_weights.h"

namespace spool::cli {

int cmd_generate(int argc, char** argv) {
  Args a(argc, argv, 2,
         {{"weights", true},
          {"prompt", true},
          {"tokens", true},
          {"temperature", true},
          {"top-k", true},
          {"seed", true}},
         "generate");
  if (!a.has("weights")) throw UsageError("generate: --weights is required");
  const std::string path = a.str("weights", "");
  if (!std::filesystem::is_regular_file(path))
    throw UsageError("generate: --weights: no such file: " + path);
  const std::string prompt = a.str("prompt", "\n");
  if (prompt.empty()) throw UsageError("generate: --prompt is empty");
  const int64_t n = a.positive_int("tokens", 200), top_k = a.positive_int("top-k", 256);
  const double temperature = a.positive_double("temperature", 1.0);
  Generator gen(a.seed("seed", 0));

  auto model = load_gpt(load_safetensors(path));
  model->eval();
  const int64_t context = model->config().context;
  if (int64_t(prompt.size()) + n > context)
    throw UsageError("generate: prompt (" + std::to_string(prompt.size()) + " bytes) + --tokens " +
                     std::to_string(n) + " exceeds the model's context of " +
                     std::to_string(context));
  NoGrad no_grad;
  std::vector<int64_t> ids;
  for (char ch : prompt) ids.push_back(int64_t(static_cast<unsigned char>(ch)));
  models::KvCache cache;
  Tensor logits = model->forward_cached(from_vector(ids, {1, int64_t(ids.size())}), cache);
  std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  const int64_t vocab = model->config().vocab;
  for (int64_t i = 0; i < n; ++i) {
    // Last position's logits / temperature, the top k kept, sampled by inverse CDF.
    auto z = narrow(reshape(logits, {-1, vocab}), 0, logits.size(1) - 1, 1).to_vector<double>();
    std::vector<double> sorted = z;
    std::nth_element(sorted.begin(), sorted.begin() + (std::min(top_k, vocab) - 1), sorted.end(),
                     std::greater<double>());
    const double cutoff = sorted[size_t(std::min(top_k, vocab) - 1)];
    const double mx = *std::max_element(z.begin(), z.end());
    double total = 0;
    for (double& v : z) total += (v = v >= cutoff ? std::exp((v - mx) / temperature) : 0.0);
    double u = uniform_at(gen.take(1), 0) * total;
    int64_t next = 0;
    while (next + 1 < vocab && (u -= z[size_t(next)]) > 0) ++next;
    const char ch = char(next);
    std::fwrite(&ch, 1, 1, stdout);
    logits = model->forward_cached(from_vector(std::vector<int64_t>{next}, {1, 1}), cache);
  }
  std::fputc('\n', stdout);
  return 0;
}

}  // namespace spool::cli
