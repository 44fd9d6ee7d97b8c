// Byte-level text data for language models. A corpus is a list of documents read from a file or
// folder; a line holding only "%" separates documents (the fortune-file format), otherwise each
// file is one document. Tokens are bytes (vocabulary 256). Every 20th document is held out for
// validation.
#pragma once
#include <string>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace spool::data {

// Debian's `fortunes` package: about 2.5 MB of English text in ~15 000 documents.
std::string default_corpus_path();

struct TextCorpus {
  std::vector<std::string> train, val;  // documents
  int64_t train_bytes = 0, val_bytes = 0;
};

// Reads a file or, recursively, a folder (skipping symlinks and strfile ".dat" indexes). Empty
// files, files that are not UTF-8 and a corpus without documents raise spool::Error naming them.
TextCorpus load_text(const std::string& path);

// One batch for next-token prediction: idx and targets [B, T] i64 (target -100 is ignored).
// Packed batches also carry positions (restarting at each document) and segments for attention.
struct LmBatch {
  Tensor idx, targets, positions, segments;
  int64_t real_targets = 0;  // targets that count in the loss
};

// The documents joined end to end, sampled as random windows of T + 1 bytes (the usual LM
// sampling: windows may span documents).
class TextStream {
 public:
  explicit TextStream(const std::vector<std::string>& docs);
  LmBatch sample(int64_t batch, int64_t t, RngState state) const;

 private:
  std::string bytes_;
};
// Whole documents laid end to end in rows, split at row ends; attention and targets never cross a
// document boundary, and no position is padding. `cursor` walks the documents and wraps.
LmBatch packed_batch(const std::vector<std::string>& docs, int64_t batch, int64_t t,
                     size_t& cursor);
// One document per row (cut to T), padded at the end; padding targets are ignored. The baseline
// that packing is measured against.
LmBatch padded_batch(const std::vector<std::string>& docs, int64_t batch, int64_t t,
                     size_t& cursor);

}  // namespace spool::data
