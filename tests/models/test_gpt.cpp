// GPT: sizes and names, packing equals running documents alone, the KV cache equals a full
// forward, flash equals naive attention in the model, and bad input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "data/text.h"
#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/factory.h"
#include "models/gpt.h"
#include "ops/ops.h"
#include "tests/support/helpers.h"

using namespace spool;
using spool::test_support::error_of;
using ::testing::HasSubstr;

namespace {

models::GptConfig small() { return {256, 32, 32, 2, 2, 0, true}; }

Tensor tokens(const std::string& s) {
  std::vector<int64_t> v;
  for (char c : s) v.push_back(int64_t(static_cast<unsigned char>(c)));
  return from_vector(v, {1, int64_t(v.size())});
}

double max_scaled_diff(const Tensor& a, const Tensor& b) {
  auto x = a.to_vector<double>(), y = b.to_vector<double>();
  double d = 0, s = 0;
  for (size_t i = 0; i < x.size(); ++i)
    d = std::max(d, std::abs(x[i] - y[i])), s = std::max(s, std::abs(y[i]));
  return s > 0 ? d / s : d;
}

}  // namespace

TEST(Gpt, TinyHas329MParametersWithGpt2Names) {
  models::Gpt model(models::gpt_tiny());
  EXPECT_EQ(model.num_parameters(), 3290624);
  auto names = model.named_parameters();
  ASSERT_EQ(names.size(), 2 + 4 * 12 + 2u);
  EXPECT_EQ(names[0].first, "wte.weight");
  EXPECT_EQ(names[1].first, "wpe.weight");
  EXPECT_EQ(names[2].first, "h.0.ln_1.weight");
  EXPECT_EQ(names[4].first, "h.0.attn.c_attn.weight");
  EXPECT_EQ(names[4].second.shape(), (Shape{256, 768})) << "Conv1D weights are [in, out]";
  EXPECT_EQ(names[6].first, "h.0.attn.c_proj.weight");
  EXPECT_EQ(names[10].first, "h.0.mlp.c_fc.weight");
  EXPECT_EQ(names[12].first, "h.0.mlp.c_proj.weight");
  EXPECT_EQ(names.back().first, "ln_f.bias");
}

TEST(Gpt, PackedDocumentsGiveTheSameLossesAndGradientsAsEachDocumentAlone) {
  const std::vector<std::string> docs = {"Hello there.", "A second, longer document!", "Last."};
  Generator gen(3);
  models::Gpt model(small(), &gen);
  // Packed: one row holding the three documents (12 + 26 + 5 = 43 > 32 is too long: use 2 rows).
  size_t cursor = 0;
  data::LmBatch b = data::packed_batch(docs, 2, 24, cursor);
  Tensor logits = model.forward(b.idx, b.positions, b.segments);
  Tensor per_pos = cross_entropy(reshape(logits, {-1, 256}), reshape(b.targets, {-1}),
                                 {.reduction = Reduction::none});
  backward(sum(per_pos));
  std::vector<Tensor> packed_grads;
  for (auto& p : model.parameters()) packed_grads.push_back(clone(p.grad()));
  // Alone: each piece of a document that packing made (a document cut at a row end continues as
  // its own piece) runs as a batch of one; the losses and summed gradients must agree.
  model.zero_grad();
  auto seg = b.segments.to_vector<int64_t>();
  auto ids = b.idx.to_vector<int64_t>();
  auto losses = per_pos.to_vector<double>();
  double checked_tokens = 0;
  for (int64_t row = 0; row < 2; ++row)
    for (int64_t start = 0; start < 24;) {
      int64_t end = start;
      while (end < 24 && seg[size_t(row * 24 + end)] == start) ++end;
      std::vector<int64_t> piece(ids.begin() + row * 24 + start, ids.begin() + row * 24 + end);
      const int64_t n = end - start;
      Tensor x = from_vector(piece, {1, n});
      std::vector<int64_t> tg(piece.begin() + 1, piece.end());
      tg.push_back(-100);
      Tensor alone = cross_entropy(reshape(model.forward(x), {-1, 256}), from_vector(tg),
                                   {.reduction = Reduction::none});
      auto a = alone.to_vector<double>();
      for (int64_t i = 0; i < n; ++i)
        EXPECT_NEAR(a[size_t(i)], losses[size_t(row * 24 + start + i)], 1e-5)
            << "row " << row << " piece at " << start << " position " << i;
      backward(sum(alone));
      checked_tokens += double(n);
      start = end;
    }
  EXPECT_EQ(checked_tokens, 48);
  auto params = model.parameters();
  for (size_t i = 0; i < params.size(); ++i)
    EXPECT_LE(max_scaled_diff(packed_grads[i], params[i].grad()), 1e-5)
        << model.named_parameters()[i].first;
}

TEST(Gpt, KvCacheLogitsEqualAFullForward) {
  Generator gen(4);
  models::Gpt model(small(), &gen);
  model.eval();
  NoGrad no_grad;
  Tensor x = tokens("The cached keys.");
  Tensor full = model.forward(x);
  models::KvCache cache;
  Tensor first = model.forward_cached(narrow(x, 1, 0, 5), cache);
  EXPECT_LE(max_scaled_diff(first, narrow(full, 1, 0, 5)), 1e-5);
  for (int64_t i = 5; i < x.size(1); ++i) {
    Tensor step = model.forward_cached(narrow(x, 1, i, 1), cache);
    EXPECT_LE(max_scaled_diff(step, narrow(full, 1, i, 1)), 1e-5) << "position " << i;
  }
  EXPECT_EQ(cache.length, x.size(1));
}

TEST(Gpt, FlashAndNaiveAttentionGiveTheSameLoss) {
  Generator g1(5), g2(5);
  auto c = small();
  models::Gpt flash(c, &g1);
  c.flash = false;
  models::Gpt naive(c, &g2);
  Tensor x = tokens("same weights, two attention kernels");
  Tensor x32 = narrow(x, 1, 0, 32);
  EXPECT_LE(max_scaled_diff(flash.forward(x32), naive.forward(x32)), 1e-5);
}

TEST(Gpt, RejectsLongSequencesAndTokensOutsideTheVocabulary) {
  models::Gpt model(small());
  EXPECT_THAT(error_of([&] {
                model.forward(zeros({1, 33}, DType::i64));
              }),
              HasSubstr("sequence of 33 tokens is longer than the context of 32"));
  EXPECT_THAT(error_of([&] {
                model.forward(full({1, 4}, 300, DType::i64));
              }),
              HasSubstr("token id 300 is outside the vocabulary of 256"));
  EXPECT_THAT(error_of([&] { model.forward(zeros({1, 4})); }), HasSubstr("expected i64 [B, T]"));
}

TEST(TextData, PackedBatchesNeverCrossADocumentAndHaveNoPadding) {
  const std::vector<std::string> docs = {"abc", "defgh", "ij"};
  size_t cursor = 0;
  data::LmBatch b = data::packed_batch(docs, 1, 10, cursor);
  EXPECT_EQ(b.idx.to_vector<int64_t>(),
            (std::vector<int64_t>{'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'}));
  EXPECT_EQ(b.targets.to_vector<int64_t>(),
            (std::vector<int64_t>{'b', 'c', -100, 'e', 'f', 'g', 'h', -100, 'j', -100}));
  EXPECT_EQ(b.positions.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 0, 1, 2, 3, 4, 0, 1}));
  EXPECT_EQ(b.segments.to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 0, 3, 3, 3, 3, 3, 8, 8}));
  EXPECT_EQ(b.real_targets, 7);
}

TEST(TextData, PaddedBatchesIgnorePaddingTargets) {
  const std::vector<std::string> docs = {"abc", "de"};
  size_t cursor = 0;
  data::LmBatch b = data::padded_batch(docs, 2, 4, cursor);
  EXPECT_EQ(b.targets.to_vector<int64_t>(),
            (std::vector<int64_t>{'b', 'c', -100, -100, 'e', -100, -100, -100}));
  EXPECT_EQ(b.real_targets, 3);
}

TEST(TextData, EmptyOrNonUtf8FilesAreRefusedByName) {
  auto dir = std::filesystem::temp_directory_path() / "spool_text_test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "empty.txt").close();
  EXPECT_THAT(error_of([&] { data::load_text((dir / "empty.txt").string()); }),
              HasSubstr("empty.txt is empty"));
  std::ofstream(dir / "latin1.txt") << "caf\xe9 au lait";
  EXPECT_THAT(error_of([&] { data::load_text((dir / "latin1.txt").string()); }),
              HasSubstr("latin1.txt is not UTF-8 text (invalid byte at offset 3)"));
  std::ofstream(dir / "docs.txt") << "one\n%\ntwo\n%\nthree\n";
  data::TextCorpus c = data::load_text((dir / "docs.txt").string());
  EXPECT_EQ(c.train.size() + c.val.size(), 3u);
  EXPECT_EQ(c.val.size(), 1u);
  EXPECT_THAT(error_of([&] { data::load_text((dir / "missing").string()); }),
              HasSubstr("no such file"));
  std::filesystem::remove_all(dir);
}

// Two GPTs built alike from the same seed, the second with `change` applied to its config: the
// bytes each keeps after the forward of one batch, and their losses; their gradients must be
// equal bit for bit (dropout on, so replays must redraw the same masks).
struct VariantRun {
  int64_t plain_kept = 0, variant_kept = 0;
  double plain_loss = 0, variant_loss = 0;
};
template <class Change>
VariantRun run_variant(uint64_t seed, const std::string& text, Change change) {
  auto c = small();
  c.dropout = 0.1;
  Generator g1(seed), g2(seed);
  models::Gpt plain(c, &g1);
  change(c);
  models::Gpt variant(c, &g2);
  Tensor x = narrow(tokens(text), 1, 0, 32), y = narrow(tokens(text), 1, 1, 32);
  VariantRun r;
  auto step = [&](models::Gpt& m, int64_t* kept, double* loss) {
    const int64_t base = memory_stats().live_bytes;
    Tensor l = cross_entropy(reshape(m.forward(x), {-1, 256}), reshape(y, {-1}));
    *kept = memory_stats().live_bytes - base;
    *loss = l.item();
    backward(l);
  };
  step(plain, &r.plain_kept, &r.plain_loss);
  step(variant, &r.variant_kept, &r.variant_loss);
  auto pp = plain.named_parameters(), vp = variant.named_parameters();
  for (size_t i = 0; i < pp.size(); ++i)
    EXPECT_EQ(pp[i].second.grad().to_vector<float>(), vp[i].second.grad().to_vector<float>())
        << pp[i].first;
  return r;
}

TEST(Gpt, CheckpointedBlocksGiveBitIdenticalGradientsAndKeepLessAfterForward) {
  const VariantRun r = run_variant(8, "checkpointing recomputes what it dropped!",
                                   [](models::GptConfig& c) { c.checkpoint_blocks = true; });
  EXPECT_EQ(r.plain_loss, r.variant_loss);
  EXPECT_LT(r.variant_kept, r.plain_kept / 2) << r.plain_kept << " vs " << r.variant_kept;
}

// GELU recompute: the MLP's output projection keeps the GELU's input only, so after the forward
// each block holds one [tokens, 4d] activation less; the loss and every gradient are the plain
// model's bit for bit.
TEST(Gpt, RecomputedGeluKeepsLessAndGivesBitIdenticalGradients) {
  const VariantRun r = run_variant(9, "recomputing the gelu costs one pass over it!!",
                                   [](models::GptConfig& c) { c.recompute_gelu = true; });
  EXPECT_EQ(r.plain_loss, r.variant_loss);
  const auto c = small();
  const int64_t hidden = 32 * 4 * c.d * int64_t(sizeof(float));  // one block's GELU output
  EXPECT_EQ(r.plain_kept - r.variant_kept, c.layers * hidden)
      << r.plain_kept << " vs " << r.variant_kept;
}
