// DPO pieces on their own: the loss variants' gradients against finite differences (f64), the
// mask convention of sequence log-probabilities, the starting point policy == reference, the
// pair and SFT batch layouts, the preference file checks, and the generated data set.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "data/preference.h"
#include "engine/autograd.h"
#include "engine/factory.h"
#include "models/dpo.h"
#include "ops/gradcheck.h"
#include "ops/ops.h"

using namespace spool;
using namespace spool::models;

namespace {

Tensor f64(const std::vector<double>& v) { return from_vector(v, {int64_t(v.size())}); }

std::string write_temp(const std::string& name, const std::string& text) {
  auto p = std::filesystem::temp_directory_path() / ("spool_pref_" + name);
  std::ofstream(p, std::ios::binary) << text;
  return p.string();
}

std::string expect_error(const std::string& text, int64_t context = 128) {
  const std::string path = write_temp("bad.jsonl", text);
  try {
    data::load_preferences(path, context);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for:\n" << text;
  return "";
}

const char* kPair = R"({"prompt": "ab", "chosen": "cd", "rejected": "ef"})";

}  // namespace

TEST(Dpo, EveryLossVariantsGradientMatchesFiniteDifferences) {
  // Policy log-probabilities away from the hinge's kink (beta h = 1 at h = 10 for beta 0.1).
  const Tensor ref_c = f64({-3.0, -5.0, -2.5}), ref_r = f64({-4.0, -3.5, -6.0});
  for (DpoLossType t :
       {DpoLossType::sigmoid, DpoLossType::cdpo, DpoLossType::ipo, DpoLossType::hinge}) {
    DpoOptions o{t, 0.1, t == DpoLossType::cdpo ? 0.2 : 0.0};
    if (t == DpoLossType::hinge) o.beta = 0.3;  // beta h = 0.45, -1.05, 1.35: pair 2 is past 1
    Tensor pc = f64({-2.0, -7.0, -1.0}).requires_grad_();
    Tensor pr = f64({-4.5, -2.0, -9.0}).requires_grad_();
    const std::string err = gradcheck(
        [&](const Tensors& in) { return dpo_loss(in[0], in[1], ref_c, ref_r, o).loss; }, {pc, pr});
    EXPECT_EQ(err, "") << dpo_loss_name(t);
  }
}

TEST(Dpo, StartsAtLogTwoWithZeroRewardsWhenPolicyIsTheReference) {
  const Tensor lc = f64({-10, -20}), lr = f64({-12, -15});
  const DpoResult r = dpo_loss(lc, lr, lc, lr, {});
  EXPECT_NEAR(r.loss.item(), std::log(2.0), 1e-12);
  const auto m = dpo_metrics(r);
  EXPECT_EQ(m.at("rewards/chosen"), 0);
  EXPECT_EQ(m.at("rewards/margins"), 0);
  EXPECT_EQ(m.at("rewards/accuracies"), 0);  // ties are not wins, as in the Python tools
  EXPECT_EQ(m.at("logps/chosen"), -15);
}

TEST(Dpo, MetricsAreTheMeansOverPairs) {
  const DpoResult r =
      dpo_loss(f64({-1, -2}), f64({-3, -1}), f64({-2, -2}), f64({-2, -2}), {.beta = 0.5});
  const auto m = dpo_metrics(r);
  // chosen rewards 0.5, 0; rejected -0.5, 0.5.
  EXPECT_DOUBLE_EQ(m.at("rewards/chosen"), 0.25);
  EXPECT_DOUBLE_EQ(m.at("rewards/rejected"), 0.0);
  EXPECT_DOUBLE_EQ(m.at("rewards/accuracies"), 0.5);
  EXPECT_DOUBLE_EQ(m.at("rewards/margins"), 0.25);
}

TEST(Dpo, BadOptionsAndShapesAreNamed) {
  const Tensor a = f64({-1, -2});
  EXPECT_THROW(dpo_loss(a, a, a, a, {.beta = 0}), Error);
  EXPECT_THROW(dpo_loss(a, a, a, a, {DpoLossType::cdpo, 0.1, 0.5}), Error);
  EXPECT_THROW(dpo_loss(a, f64({-1}), a, a, {}), Error);
  EXPECT_THROW(parse_dpo_loss("kto"), Error);
}

TEST(Dpo, SequenceLogpsCountsMaskedPredictedTokensOnly) {
  // logits [1, 3, 2]: position t predicts token t + 1; mask[0] never counts.
  Tensor logits = from_vector(std::vector<double>{0, 1, 2, 0, 5, 5}, {1, 3, 2});
  Tensor tokens = from_vector(std::vector<int64_t>{1, 1, 0}, {1, 3});
  auto lsm = [](double a, double b, int k) {
    const double m = std::max(a, b), z = m + std::log(std::exp(a - m) + std::exp(b - m));
    return (k == 0 ? a : b) - z;
  };
  Tensor mask = from_vector(std::vector<double>{1, 0, 1}, {1, 3});
  EXPECT_NEAR(sequence_logps(logits, tokens, mask).item(), lsm(2, 0, 0), 1e-12);
  mask = from_vector(std::vector<double>{0, 1, 1}, {1, 3});
  EXPECT_NEAR(sequence_logps(logits, tokens, mask).item(), lsm(0, 1, 1) + lsm(2, 0, 0), 1e-12);
}

TEST(Preferences, PairBatchPutsChosenFirstMasksCompletionsAndCutsToTheContext) {
  std::vector<data::PreferencePair> pairs = {{"ab", "cde", "f", 1}, {"xyz", "1234567", "89", 2}};
  const data::PairBatch b = data::pair_batch(pairs, {0, 1}, 8);
  ASSERT_EQ(b.tokens.shape(), (Shape{4, 8}));
  const auto tok = b.tokens.to_vector<int64_t>();
  const auto m = b.mask.to_vector<float>();
  // Row 0: "abcde" + zeros; row 1: "xyz12345" (cut at 8); row 2: "af"; row 3: "xyz89".
  EXPECT_EQ(std::vector<int64_t>(tok.begin(), tok.begin() + 6),
            (std::vector<int64_t>{'a', 'b', 'c', 'd', 'e', 0}));
  EXPECT_EQ(tok[8 + 7], '5');
  EXPECT_EQ(std::vector<float>(m.begin(), m.begin() + 8),
            (std::vector<float>{0, 0, 1, 1, 1, 0, 0, 0}));
  EXPECT_EQ(std::vector<float>(m.begin() + 8, m.begin() + 16),
            (std::vector<float>{0, 0, 0, 1, 1, 1, 1, 1}));
  EXPECT_EQ(std::vector<float>(m.begin() + 16, m.begin() + 24),
            (std::vector<float>{0, 0, 1, 0, 0, 0, 0, 0}));
}

TEST(Preferences, SftBatchTargetsCompletionTokensOnly) {
  std::vector<data::PreferencePair> pairs = {{"ab", "cd", "x", 1}};
  const data::LmBatch b = data::sft_batch(pairs, {0}, 16);
  EXPECT_EQ(b.idx.to_vector<int64_t>(), (std::vector<int64_t>{'a', 'b', 'c'}));
  EXPECT_EQ(b.targets.to_vector<int64_t>(), (std::vector<int64_t>{-100, 'c', 'd'}));
  EXPECT_EQ(b.real_targets, 2);
}

TEST(Preferences, EveryTenthPairIsHeldOutAndBlankLinesAreSkipped) {
  std::string text;
  for (int i = 0; i < 20; ++i) text += std::string(kPair) + "\n\n";
  const data::PreferenceSet s = data::load_preferences(write_temp("ok.jsonl", text), 128);
  EXPECT_EQ(s.train.size(), 18u);
  EXPECT_EQ(s.val.size(), 2u);
  EXPECT_EQ(s.val[0].line, 19);  // the 10th pair, on line 19 with the blank lines
}

TEST(Preferences, BadLinesAreRefusedWithTheirLineNumber) {
  const std::string ok = std::string(kPair) + "\n";
  EXPECT_THAT(expect_error(ok + "{\"prompt\": \"a\", \"chosen\": \n"),
              ::testing::HasSubstr(":2: malformed JSON"));
  EXPECT_THAT(expect_error(ok + ok + "[1, 2]\n"),
              ::testing::HasSubstr(":3: expected a JSON object"));
  EXPECT_THAT(expect_error(R"({"prompt": "a", "chosen": "b"})"),
              ::testing::HasSubstr(":1: no \"rejected\" field"));
  EXPECT_THAT(expect_error(R"({"prompt": "a", "chosen": 3, "rejected": "c"})"),
              ::testing::HasSubstr("\"chosen\" is number, not a string"));
  EXPECT_THAT(expect_error(ok + R"({"prompt": "a", "chosen": "", "rejected": "c"})"),
              ::testing::HasSubstr(":2: the chosen completion is empty"));
  EXPECT_THAT(expect_error(R"({"prompt": "a", "chosen": "b", "rejected": ""})"),
              ::testing::HasSubstr("the rejected completion is empty"));
  EXPECT_THAT(expect_error(R"({"prompt": "", "chosen": "b", "rejected": "c"})"),
              ::testing::HasSubstr(":1: the prompt is empty"));
  EXPECT_THAT(expect_error(R"({"prompt": "abcdefgh", "chosen": "b", "rejected": "c"})", 8),
              ::testing::HasSubstr(":1: the prompt is 8 tokens, which leaves no room"));
  EXPECT_THAT(expect_error(ok + "{\"prompt\": \"\xff\", \"chosen\": \"b\", \"rejected\": \"c\"}\n"),
              ::testing::HasSubstr(":2: malformed JSON"));
  EXPECT_THAT(expect_error("\n\n"), ::testing::HasSubstr("holds no pairs"));
}

TEST(Preferences, TypoPairsAreDeterministicAndDifferOnlyInLetters) {
  const std::vector<std::string> docs = {
      std::string(40, ' ') + "the quick brown fox jumps over the lazy dog, again and again.\n"};
  const auto a = data::make_typo_pairs(docs, 5, 10, 30, 0.3, 7);
  const auto b = data::make_typo_pairs(docs, 5, 10, 30, 0.3, 7);
  ASSERT_EQ(a.size(), 5u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].chosen, b[i].chosen);
    EXPECT_EQ(a[i].rejected, b[i].rejected);
    ASSERT_EQ(a[i].chosen.size(), a[i].rejected.size());
    EXPECT_NE(a[i].chosen, a[i].rejected);
    for (size_t k = 0; k < a[i].chosen.size(); ++k)
      if (a[i].chosen[k] != a[i].rejected[k]) {
        EXPECT_TRUE(std::isalpha(a[i].chosen[k]) && std::isalpha(a[i].rejected[k]));
        EXPECT_EQ(bool(std::isupper(a[i].chosen[k])), bool(std::isupper(a[i].rejected[k])));
      }
  }
}

TEST(Preferences, SpellingScoresWordsThatEndInTheCompletion) {
  const data::WordList words({"the cat sat on the mat. the cat sat. on mat"});
  EXPECT_TRUE(words.contains("cat"));
  EXPECT_FALSE(words.contains("dog"));  // needs 2 sightings; "dog" has none
  // "ca" + "t sat on the mat xq": words ending in the completion: cat, sat, on, the, mat; "xq"
  // is cut off by the end of the sample and not scored.
  data::SpellingScore s = data::score_spelling(words, "the ca", "t sat on the mat xq");
  EXPECT_EQ(s.words, 5);
  EXPECT_EQ(s.known, 5);
  EXPECT_TRUE(s.well_spelt());
  s = data::score_spelling(words, "the ", "cat zat on. ");
  EXPECT_EQ(s.words, 3);
  EXPECT_EQ(s.known, 2);
  EXPECT_FALSE(s.well_spelt());  // 2 of 3 is under 3/4
  s = data::score_spelling(words, "the ", "cat zat on the mat. ");
  EXPECT_TRUE(s.well_spelt());  // 4 of 5
}
