// spool generate: samples bytes from a GPT with a key/value cache (each new token attends to the
// cached keys and values instead of recomputing the prefix).
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "data/preference.h"
#include "engine/autograd.h"
#include "engine/factory.h"
#include "engine/safetensors.h"
#include "models/gpt.h"
#include "ops/ops.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/gpt_weights.h"

namespace spool::cli {

namespace {

// The next token of one row: logits / temperature, the top k kept, sampled by inverse CDF.
int64_t sample_next(std::vector<double> z, int64_t top_k, double temperature, Generator& gen) {
  const int64_t vocab = int64_t(z.size()), k = std::min(top_k, vocab);
  std::vector<double> sorted = z;
  std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end(), std::greater<double>());
  const double cutoff = sorted[size_t(k - 1)];
  const double mx = *std::max_element(z.begin(), z.end());
  double total = 0;
  for (double& v : z) total += (v = v >= cutoff ? std::exp((v - mx) / temperature) : 0.0);
  double u = uniform_at(gen.take(1), 0) * total;
  int64_t next = 0;
  while (next + 1 < vocab && (u -= z[size_t(next)]) > 0) ++next;
  return next;
}

// Continues every prompt (all of one length) by n tokens with one batched key/value cache.
std::vector<std::string> continue_all(models::Gpt& model, const std::vector<std::string>& prompts,
                                      int64_t n, int64_t top_k, double temperature,
                                      Generator& gen) {
  const int64_t b = int64_t(prompts.size()), t = int64_t(prompts[0].size());
  const int64_t vocab = model.config().vocab;
  std::vector<int64_t> ids;
  for (const auto& p : prompts)
    for (char ch : p) ids.push_back(int64_t(static_cast<unsigned char>(ch)));
  models::KvCache cache;
  Tensor logits = model.forward_cached(from_vector(ids, {b, t}), cache);
  std::vector<std::string> out(static_cast<size_t>(b));
  for (int64_t i = 0; i < n; ++i) {
    const auto z = contiguous(narrow(logits, 1, logits.size(1) - 1, 1)).to_vector<double>();
    std::vector<int64_t> next(static_cast<size_t>(b));
    for (int64_t r = 0; r < b; ++r) {
      next[size_t(r)] =
          sample_next(std::vector<double>(z.begin() + r * vocab, z.begin() + (r + 1) * vocab),
                      top_k, temperature, gen);
      out[size_t(r)] += char(next[size_t(r)]);
    }
    if (i + 1 < n) logits = model.forward_cached(from_vector(next, {b, 1}), cache);
  }
  return out;
}

}  // namespace

int cmd_generate(int argc, char** argv) {
  Args a(argc, argv, 2,
         {{"weights", true, "W.safetensors: GPT weights or a training checkpoint"},
          {"prompt", true, "the text to continue"},
          {"tokens", true, "bytes to sample (default 200)"},
          {"temperature", true, "sampling temperature (default 1)"},
          {"top-k", true, "sample among the k likeliest bytes (default 256: all)"},
          {"seed", true, "sampling seed"},
          {"prompts", true,
           "PAIRS.jsonl: continue its held-out prompts and report the share of corpus words"},
          {"samples", true, "--prompts: how many prompts to continue (default 300)"},
          {"out", true, "--prompts: SAMPLES.jsonl, the samples written out"},
          {"words-from", true,
           "--prompts: the corpus whose words count as real (default Debian's fortunes)"},
          {"allow-nonfinite", false,
           "use weights holding NaN or Inf (warned) instead of refusing them"}},
         "generate");
  if (!a.has("weights")) throw UsageError("generate: --weights is required");
  const std::string path = a.str("weights", "");
  if (!is_file(path)) throw UsageError("generate: --weights: no such file: " + path);
  if (a.has("prompt") && a.has("prompts"))
    throw UsageError("generate: give --prompt or --prompts, not both");
  for (const char* f : {"samples", "out", "words-from"})
    if (a.has(f) && !a.has("prompts"))
      throw UsageError(std::string("generate: --") + f + " goes with --prompts PAIRS.jsonl");
  const std::string prompt = a.str("prompt", "\n");
  if (prompt.empty()) throw UsageError("generate: --prompt is empty");
  const int64_t n = a.positive_int("tokens", 200), top_k = a.positive_int("top-k", 256);
  const double temperature = a.positive_double("temperature", 1.0);
  Generator gen(a.seed("seed", 0));

  if (a.has("out")) check_output(a.str("out", ""), "generate: --out");
  const TensorFile weights = load_safetensors(path);
  check_finite(weights, "generate: --weights", a.has("allow-nonfinite"));
  auto model = load_gpt(weights);
  model->eval();
  const int64_t context = model->config().context;
  NoGrad no_grad;
  if (a.has("prompts")) {
    // Samples for the held-out prompts of a pairs file, scored for the generated data set's
    // property (spelling: the completion's words are words of the corpus), which preference
    // training on real-versus-misspelt pairs should raise.
    const std::string words_path =
        a.has("words-from") ? a.str("words-from", "") : data::default_corpus_path();
    const data::WordList words(data::load_text(words_path).train);
    const data::PreferenceSet set = data::load_preferences(a.str("prompts", ""), context);
    const auto& pool = set.val.empty() ? set.train : set.val;
    if (pool.empty()) throw UsageError("generate: --prompts: the file holds no pairs");
    const int64_t samples = a.positive_int("samples", 300);
    // Each sample holds its prompt and its completion as strings (32 bytes each, and the text).
    check_memory("generate: --samples " + std::to_string(samples),
                 double(samples) * (64.0 + double(pool[0].prompt.size()) + double(n)),
                 "the prompts and completions");
    std::vector<std::string> prompts;
    for (int64_t i = 0; i < samples; ++i) prompts.push_back(pool[size_t(i) % pool.size()].prompt);
    for (const auto& p : prompts)
      if (p.size() != prompts[0].size() || p.empty())
        throw UsageError(
            "generate: --prompts: the held-out prompts must share one non-zero "
            "length for batched sampling");
    if (int64_t(prompts[0].size()) + n > context)
      throw UsageError("generate: prompts (" + std::to_string(prompts[0].size()) +
                       " bytes) + --tokens " + std::to_string(n) + " exceed the context of " +
                       std::to_string(context));
    std::vector<std::string> outs;
    for (int64_t at = 0; at < samples; at += 64) {
      std::vector<std::string> chunk(prompts.begin() + at,
                                     prompts.begin() + std::min(samples, at + 64));
      for (auto& s : continue_all(*model, chunk, n, top_k, temperature, gen))
        outs.push_back(std::move(s));
    }
    int64_t clean = 0, scored_words = 0, known_words = 0;
    std::vector<data::SpellingScore> scores;
    for (int64_t i = 0; i < samples; ++i) {
      scores.push_back(data::score_spelling(words, prompts[size_t(i)], outs[size_t(i)]));
      clean += scores.back().well_spelt() ? 1 : 0;
      scored_words += scores.back().words;
      known_words += scores.back().known;
    }
    if (a.has("out")) {
      LineLog log(a.str("out", ""), "--out");
      for (int64_t i = 0; i < samples; ++i)
        log.write(Json()
                      .add("prompt", prompts[size_t(i)])
                      .add("completion", outs[size_t(i)])
                      .add("words", scores[size_t(i)].words)
                      .add("known_words", scores[size_t(i)].known)
                      .add("well_spelt", scores[size_t(i)].well_spelt())
                      .str());
      log.commit();
    }
    for (int64_t i = 0; i < std::min<int64_t>(3, samples); ++i)
      std::printf("[%s]%s\n", prompts[size_t(i)].c_str(), outs[size_t(i)].c_str());
    std::printf("%s\n", Json()
                            .add("weights", path)
                            .add("samples", samples)
                            .add("tokens", n)
                            .add("temperature", temperature)
                            .add("property", ">= 3/4 of the words are corpus words (>= 3 words)")
                            .add("property_rate", double(clean) / double(samples))
                            .add("known_word_fraction",
                                 double(known_words) / double(std::max<int64_t>(1, scored_words)))
                            .add("words_per_sample", double(scored_words) / double(samples))
                            .str()
                            .c_str());
    return 0;
  }
  if (int64_t(prompt.size()) + n > context)
    throw UsageError("generate: prompt (" + std::to_string(prompt.size()) + " bytes) + --tokens " +
                     std::to_string(n) + " exceeds the model's context of " +
                     std::to_string(context));
  std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  const std::string text = continue_all(*model, {prompt}, n, top_k, temperature, gen)[0];
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  return 0;
}

}  // namespace spool::cli
