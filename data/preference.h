// Preference pairs for SFT, DPO and reward models: JSON Lines with string fields "prompt",
// "chosen" and "rejected" (the convention of the Python preference-training tools), tokenised as
// bytes. Every 10th pair (the 10th, 20th, ...) is held out for evaluation.
#pragma once
#include <string>
#include <unordered_set>
#include <vector>

#include "data/text.h"
#include "engine/tensor.h"

namespace spool::data {

struct PreferencePair {
  std::string prompt, chosen, rejected;
  int64_t line = 0;  // 1-based line of the file it came from (0: made in memory)
};

struct PreferenceSet {
  std::string path;
  std::vector<PreferencePair> train, val;
};

// Reads and checks the whole file before returning anything, so nothing trains on a half-read
// file. Blank lines are skipped; other fields are ignored. spool::Error names PATH:LINE for
// malformed JSON, a line that is not an object, a missing or non-string field, an empty prompt,
// an empty chosen or rejected completion, text that is not UTF-8, a prompt that leaves no room for
// a completion in `context` tokens, and a file without pairs.
PreferenceSet load_preferences(const std::string& path, int64_t context);

// A text's bytes as token ids 0..255 (the byte-level GPT's vocabulary).
std::vector<int64_t> byte_tokens(const std::string& text);

// Writes pairs as JSON Lines atomically (temporary file, fsync, rename).
void write_preferences(const std::string& path, const std::vector<PreferencePair>& pairs);

// B pairs as one batch: tokens [2B, T] i64, chosen rows then rejected rows, prompt + completion
// cut to `context` and zero-filled past the end; mask [2B, T] f32, 1 on completion tokens (on the
// predicted token, see models/dpo.h). T is the longest row of the batch.
struct PairBatch {
  Tensor tokens, mask;
  int64_t pairs = 0;
};
PairBatch pair_batch(const std::vector<PreferencePair>& pairs, const std::vector<size_t>& which,
                     int64_t context);

// Random byte tokens [2B, T] with the mask on positions >= prompt: CONFIGS.md's dpo-gpt-tiny
// batch shape for timing and memory studies (spool bench, spool memstudy).
PairBatch random_pair_batch(int64_t pairs, int64_t t, int64_t prompt, Generator* gen);

// SFT on prompt + chosen: idx and targets [B, T - 1]; targets outside the completion are -100.
LmBatch sft_batch(const std::vector<PreferencePair>& pairs, const std::vector<size_t>& which,
                  int64_t context);

// The generated preference data set ("typos"): windows of the corpus cut into a prompt of
// `prompt_bytes` and a completion of `completion_bytes` (ASCII only); the chosen completion is the
// real continuation, the rejected one the same text with each letter replaced, with probability
// `typo_rate`, by another random letter of the same case (at least one replaced).
std::vector<PreferencePair> make_typo_pairs(const std::vector<std::string>& docs, int64_t n,
                                            int64_t prompt_bytes, int64_t completion_bytes,
                                            double typo_rate, uint64_t seed);

// The words of a corpus (maximal runs of ASCII letters, lower-cased, seen at least `min_count`
// times), for scoring samples: the property the preference data rewards is spelling real words.
class WordList {
 public:
  WordList(const std::vector<std::string>& docs, int64_t min_count = 2);
  bool contains(const std::string& lower_word) const { return words_.count(lower_word) > 0; }
  size_t size() const { return words_.size(); }
  // The words of prompt + completion that end inside the completion (a word the prompt started
  // is read whole), without the last one when the completion stops inside it.
  std::vector<std::string> completion_words(const std::string& prompt,
                                            const std::string& completion) const;

 private:
  std::unordered_set<std::string> words_;
};

// A sample's score: the share of its completion's words that are known, and whether at least
// three quarters of them are (with at least 3 words): the property counted in samples before and
// after DPO. (The threshold was fixed from the pretrained and SFT models' samples, before any
// DPO run: 7 % of their samples pass it; none passes "every word known".)
struct SpellingScore {
  int64_t words = 0, known = 0;
  double fraction() const { return words ? double(known) / double(words) : 0.0; }
  bool well_spelt() const { return words >= 3 && 4 * known >= 3 * words; }
};
SpellingScore score_spelling(const WordList& list, const std::string& prompt,
                             const std::string& completion);

}  // namespace spool::data
