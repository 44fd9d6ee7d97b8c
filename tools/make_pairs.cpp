// spool make-pairs: writes the generated preference data set (data/preference.h, "typos"): prompts
// and continuations cut from the text corpus, the chosen completion as written and the rejected
// one with misspelt words, as JSON Lines for `spool train --sft / dpo-gpt-tiny / reward-gpt-tiny`.
#include <cstdio>
#include <filesystem>

#include "data/preference.h"
#include "data/text.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace spool::cli {

int cmd_make_pairs(int argc, char** argv) {
  Args a(argc, argv, 2,
         {{"out", true, "PAIRS.jsonl to write (required)"},
          {"pairs", true, "how many pairs (default 4000)"},
          {"data", true, "the corpus (default Debian's fortunes)"},
          {"seed", true, "seed of the windows and the typos"},
          {"prompt-bytes", true, "bytes of each prompt (default 32)"},
          {"completion-bytes", true, "bytes of each completion (default 96)"},
          {"typo-rate", true, "share of the rejected completion's words misspelt (default 0.15)"}},
         "make-pairs");
  if (!a.has("out")) throw UsageError("make-pairs: --out PAIRS.jsonl is required");
  const std::string out = a.str("out", "");
  check_output(out, "make-pairs: --out");
  const int64_t n = a.positive_int("pairs", 4000);
  // CONFIGS.md dpo-gpt-tiny: 128-token rows, the first 32 the prompt.
  const int64_t prompt = a.positive_int("prompt-bytes", 32);
  const int64_t completion = a.positive_int("completion-bytes", 96);
  // Each pair holds a prompt and two completions as strings (32 bytes each, and the text).
  check_memory("make-pairs: --pairs " + std::to_string(n),
               double(n) * (96.0 + double(prompt) + 2.0 * double(completion)),
               "the pairs in memory");
  const std::string path = a.has("data") ? a.str("data", "") : data::default_corpus_path();
  const data::TextCorpus corpus = data::load_text(path);
  // Training windows from the corpus's training documents only, so held-out text stays unseen.
  const double rate = a.positive_double("typo-rate", 0.15);
  if (rate > 1) throw UsageError("make-pairs: --typo-rate must be at most 1");
  const auto pairs =
      data::make_typo_pairs(corpus.train, n, prompt, completion, rate, a.seed("seed", 0));
  data::write_preferences(out, pairs);
  std::printf("make-pairs: %zu pairs (prompt %lld bytes, completion %lld bytes) from %s -> %s\n",
              pairs.size(), (long long)prompt, (long long)completion, path.c_str(), out.c_str());
  return 0;
}

}  // namespace spool::cli
