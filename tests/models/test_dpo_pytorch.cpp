// spool grad --model dpo-gpt-tiny against PyTorch (tests/fixtures/make_dpo_fixture.py): a small
// GPT-2 policy and a differently-initialised reference, 3 pairs of 32 tokens with prompt and
// padding masked; for every loss variant (sigmoid, cdpo, ipo, hinge) the loss, the policy's
// summed log-probabilities, the rewards and every parameter gradient, computed by torch in
// float64 and stored as float32.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "engine/safetensors.h"
#include "tests/support/helpers.h"

using namespace spool;
using spool::test_support::expect_matches;

namespace {

const std::string kFixtures = std::string(SPOOL_SOURCE_DIR) + "/tests/fixtures/";

void check_variant(const std::string& variant, const std::string& flags) {
  auto out =
      std::filesystem::temp_directory_path() / ("spool_dpo_grad_" + variant + ".safetensors");
  const std::string cmd =
      std::string(SPOOL_CLI) + " grad --model dpo-gpt-tiny --weights " + kFixtures +
      "dpo_policy.safetensors --ref-weights " + kFixtures + "dpo_reference.safetensors --batch " +
      kFixtures + "dpo_batch.safetensors --out " + out.string() + " " + flags + " > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  TensorFile got = load_safetensors(out.string());
  TensorFile want = load_safetensors(kFixtures + "dpo_expected_" + variant + ".safetensors");
  ASSERT_EQ(want.metadata.at("loss"), variant);
  const int compared = expect_matches(got, want, 1e-4, "dpo " + variant);
  // loss, output, two reward vectors and the 28 parameter gradients of the 2-layer GPT.
  EXPECT_EQ(compared, 4 + 28);
  std::filesystem::remove(out);
}

}  // namespace

TEST(PyTorchDpo, SigmoidMatchesTorch) { check_variant("sigmoid", ""); }
TEST(PyTorchDpo, ConservativeMatchesTorch) {
  check_variant("cdpo", "--loss cdpo --label-smoothing 0.2");
}
TEST(PyTorchDpo, IpoMatchesTorch) { check_variant("ipo", "--loss ipo"); }
TEST(PyTorchDpo, HingeMatchesTorchWithOnePairPastTheKink) {
  const TensorFile want = load_safetensors(kFixtures + "dpo_expected_hinge.safetensors");
  check_variant("hinge", "--loss hinge --beta " + want.metadata.at("beta"));
}
