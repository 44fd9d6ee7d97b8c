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
#include "models/ppo.h"
#include "ops/ops.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/gpt_weights.h"

namespace spool::cli {

namespace {

// Continues every prompt (all of one length) by n bytes, 64 prompts a batch.
std::vector<std::string> continue_all(models::Gpt& model, const std::vector<std::string>& prompts,
                                      int64_t n, int64_t top_k, double temperature,
                                      Generator& gen) {
  std::vector<std::string> out;
  for (size_t at = 0; at < prompts.size(); at += 64) {
    std::vector<std::vector<int64_t>> ids;
    for (size_t i = at; i < std::min(prompts.size(), at + 64); ++i)
      ids.push_back(data::byte_tokens(prompts[i]));
    for (const auto& row : models::sample_continuations(model, ids, n, top_k, temperature, gen)) {
      out.emplace_back();
      for (int64_t id : row) out.back() += char(id);
    }
  }
  return out;
}

// Per sample, in batches of 64: the reward model's score of prompt + completion (when `rm`) and
// the summed log pi - log ref of the completion's bytes (when `ref`).
void score_samples(const std::vector<std::string>& prompts, const std::vector<std::string>& outs,
                   models::RewardModel* rm, models::Gpt& policy, models::Gpt* ref,
                   std::vector<double>& scores, std::vector<double>& kls) {
  for (size_t at = 0; at < prompts.size(); at += 64) {
    std::vector<std::vector<int64_t>> p, c;
    for (size_t i = at; i < std::min(prompts.size(), at + 64); ++i) {
      p.push_back(data::byte_tokens(prompts[i]));
      c.push_back(data::byte_tokens(outs[i]));
    }
    models::Rollout r = models::make_rollout(p, c);
    if (rm)
      for (double v : to(rm->rewards(r.tokens, r.mask), DType::f64).to_vector<double>())
        scores.push_back(v);
    if (ref) {
      r.logps = models::token_logps(policy.forward(r.tokens), r.tokens);
      r.ref_logps = models::token_logps(ref->forward(r.tokens), r.tokens);
      for (double v : to(models::sample_kl(r), DType::f64).to_vector<double>()) kls.push_back(v);
    }
  }
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
          {"reward", true,
           "--prompts: R.safetensors, a reward model (reward-gpt-tiny) that scores each sample"},
          {"ref", true,
           "--prompts: W.safetensors, a reference GPT: the samples' mean summed log p - log ref, "
           "their estimate of KL(model || ref) (temperature 1, every byte)"},
          {"against", true,
           "--prompts with --reward: W.safetensors, a GPT that continues the same prompts; the "
           "share of prompts where this model's sample scores higher (ties count half)"},
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
  for (const char* f : {"samples", "out", "words-from", "reward", "ref", "against"})
    if (a.has(f) && !a.has("prompts"))
      throw UsageError(std::string("generate: --") + f + " goes with --prompts PAIRS.jsonl");
  const std::string prompt = a.str("prompt", "\n");
  if (prompt.empty()) throw UsageError("generate: --prompt is empty");
  const int64_t n = a.positive_int("tokens", 200), top_k = a.positive_int("top-k", 256);
  const double temperature = a.positive_double("temperature", 1.0);
  if (a.has("against") && !a.has("reward"))
    throw UsageError("generate: --against compares samples by a reward model: add --reward");
  for (const char* f : {"reward", "ref", "against"})
    if (a.has(f) && !is_file(a.str(f, "")))
      throw UsageError(std::string("generate: --") + f + ": no such file: " + a.str(f, ""));
  const uint64_t seed = a.seed("seed", 0);
  Generator gen(seed);

  if (a.has("out")) check_output(a.str("out", ""), "generate: --out");
  const TensorFile weights = load_safetensors(path);
  check_finite(weights, "generate: --weights", a.has("allow-nonfinite"));
  auto model = load_gpt(weights);
  model->eval();
  const int64_t context = model->config().context;
  if (a.has("ref") && (temperature != 1.0 || top_k < model->config().vocab))
    throw UsageError(
        "generate: --ref estimates KL(model || ref) from samples of the model itself: it needs "
        "--temperature 1 and every token (--top-k at least the vocabulary, " +
        std::to_string(model->config().vocab) + ")");
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
    // The reward model's scores, the KL estimate and the comparison, when asked for.
    std::shared_ptr<models::RewardModel> rm;
    std::shared_ptr<models::Gpt> ref, other;
    const auto load = [&](const char* flag) {
      const TensorFile f = load_safetensors(a.str(flag, ""));
      check_finite(f, std::string("generate: --") + flag, a.has("allow-nonfinite"));
      return f;
    };
    if (a.has("reward")) rm = load_reward_model(load("reward"), "generate: --reward");
    if (a.has("ref")) ref = load_gpt(load("ref"));
    if (a.has("against")) other = load_gpt(load("against"));
    if (other) other->eval();
    if (rm) rm->eval();
    if (ref) ref->eval();
    for (auto* m : {rm ? rm->transformer.get() : nullptr, ref.get(), other.get()})
      if (m && (m->config().vocab != model->config().vocab ||
                m->config().context < int64_t(prompts[0].size()) + n))
        throw UsageError("generate: a model of --reward, --ref or --against has vocab " +
                         std::to_string(m->config().vocab) + " and context " +
                         std::to_string(m->config().context) + "; the samples need vocab " +
                         std::to_string(model->config().vocab) + " and " +
                         std::to_string(prompts[0].size() + size_t(n)) + " positions");
    const std::vector<std::string> outs = continue_all(*model, prompts, n, top_k, temperature, gen);
    std::vector<double> scores_rm, kls, other_scores, unused;
    if (rm || ref) score_samples(prompts, outs, rm.get(), *model, ref.get(), scores_rm, kls);
    if (other) {
      // The other model continues the same prompts with draws from the same seed.
      Generator other_gen(seed);
      const std::vector<std::string> other_outs =
          continue_all(*other, prompts, n, top_k, temperature, other_gen);
      score_samples(prompts, other_outs, rm.get(), *other, nullptr, other_scores, unused);
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
      for (int64_t i = 0; i < samples; ++i) {
        Json j;
        j.add("prompt", prompts[size_t(i)])
            .add("completion", outs[size_t(i)])
            .add("words", scores[size_t(i)].words)
            .add("known_words", scores[size_t(i)].known)
            .add("well_spelt", scores[size_t(i)].well_spelt());
        if (rm) j.add("reward", scores_rm[size_t(i)]);
        if (ref) j.add("kl", kls[size_t(i)]);
        if (other) j.add("against_reward", other_scores[size_t(i)]);
        log.write(j.str());
      }
      log.commit();
    }
    for (int64_t i = 0; i < std::min<int64_t>(3, samples); ++i)
      std::printf("[%s]%s\n", prompts[size_t(i)].c_str(), outs[size_t(i)].c_str());
    Json summary;
    summary.add("weights", path)
        .add("samples", samples)
        .add("tokens", n)
        .add("temperature", temperature)
        .add("property", ">= 3/4 of the words are corpus words (>= 3 words)")
        .add("property_rate", double(clean) / double(samples))
        .add("known_word_fraction",
             double(known_words) / double(std::max<int64_t>(1, scored_words)))
        .add("words_per_sample", double(scored_words) / double(samples));
    const auto average = [](const std::vector<double>& v) {
      double t = 0;
      for (double x : v) t += x;
      return t / double(v.size());
    };
    if (rm) summary.add("reward_mean", average(scores_rm));
    if (ref) summary.add("kl_to_ref", average(kls));
    if (other) {
      double wins = 0;
      for (int64_t i = 0; i < samples; ++i)
        wins += scores_rm[size_t(i)] > other_scores[size_t(i)]    ? 1.0
                : scores_rm[size_t(i)] == other_scores[size_t(i)] ? 0.5
                                                                  : 0.0;
      summary.add("against", a.str("against", ""))
          .add("against_reward_mean", average(other_scores))
          .add("win_rate", wins / double(samples));
    }
    std::printf("%s\n", summary.str().c_str());
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
