// spool grad --model gpt-tiny and flash attention against PyTorch
// (tests/fixtures/make_gpt_fixture.py): a hand-written GPT-2 with Hugging Face's names, vocab 256,
// context 32, d 64, 2 layers, 2 heads; its loss, logits and every parameter gradient, computed by
// torch in float64 and stored as float32. Then causal attention's output and q, k, v gradients.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "engine/autograd.h"
#include "engine/safetensors.h"
#include "ops/attention.h"
#include "tests/support/helpers.h"

using namespace spool;
using spool::test_support::expect_matches;
using spool::test_support::scaled_error;

namespace {

const std::string kFixtures = std::string(SPOOL_SOURCE_DIR) + "/tests/fixtures/";

}  // namespace

TEST(PyTorchGpt, GradMatchesTorch) {
  auto out = std::filesystem::temp_directory_path() / "spool_gpt_grad.safetensors";
  std::string cmd = std::string(SPOOL_CLI) + " grad --model gpt-tiny --weights " + kFixtures +
                    "gpt_small_weights.safetensors --batch " + kFixtures +
                    "gpt_small_batch.safetensors --out " + out.string() + " > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  TensorFile got = load_safetensors(out.string());
  TensorFile want = load_safetensors(kFixtures + "gpt_small_expected.safetensors");
  const int compared = expect_matches(got, want, 1e-4, "gpt-tiny");
  // wte, wpe, ln_f (2) and 12 per layer: ln_1, c_attn, c_proj, ln_2, c_fc, mlp c_proj.
  EXPECT_EQ(compared, 2 + 2 + 2 + 2 * 12) << "loss, output and 28 gradients";
  std::filesystem::remove(out);
}

TEST(PyTorchAttention, FlashMatchesTorch) {
  TensorFile f = load_safetensors(kFixtures + "attention.safetensors");
  Tensor q = f.at("q"), k = f.at("k"), v = f.at("v");
  for (Tensor* t : {&q, &k, &v}) t->requires_grad_();
  Tensor y = flash_attention(q, k, v);  // causal, scale 1/sqrt(16)
  backward(y, f.at("gy"));
  const std::pair<const char*, Tensor> results[] = {
      {"y", y.detach()}, {"gq", q.grad()}, {"gk", k.grad()}, {"gv", v.grad()}};
  for (const auto& [name, mine] : results) {
    ASSERT_TRUE(mine.defined()) << name;
    ASSERT_EQ(mine.shape(), f.at(name).shape()) << name;
    const double err = scaled_error(mine, f.at(name));
    EXPECT_LE(err, 1e-5) << name << " differs from PyTorch (f64) by " << err << " of its scale";
    std::printf("[ attention ] %s: %.3g of its scale\n", name, err);
  }
}
