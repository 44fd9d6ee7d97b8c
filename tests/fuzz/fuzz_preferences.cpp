// The JSON Lines preference-pairs reader on hostile files (context 128, as a small model's).
#include "data/preference.h"
#include "engine/error.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = spool::fuzz::input_file(data, size, ".jsonl");
  try {
    spool::data::PreferenceSet set = spool::data::load_preferences(path, 128);
    // What was accepted must batch: every prompt leaves room for a completion in the context.
    std::vector<size_t> all(set.train.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    if (!all.empty()) (void)spool::data::pair_batch(set.train, all, 128);
  } catch (const spool::Error&) {
  }
  return 0;
}
