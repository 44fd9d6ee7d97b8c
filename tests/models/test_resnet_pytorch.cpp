// spool grad --model resnet18 against PyTorch (tests/fixtures/make_resnet_fixture.py): loss,
// logits, every parameter gradient and the running statistics after the step.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/safetensors.h"
#include "models/resnet.h"
#include "tests/support/helpers.h"

using namespace spool;
using spool::test_support::expect_matches;

namespace {

const std::string kFixtures = std::string(SPOOL_SOURCE_DIR) + "/tests/fixtures/";

void check_against_torch(const std::string& mode) {
  auto out =
      std::filesystem::temp_directory_path() / ("spool_resnet_grad_" + mode + ".safetensors");
  std::string cmd = std::string(SPOOL_CLI) + " grad --model resnet18 --weights " + kFixtures +
                    "resnet18_w8_weights.safetensors --batch " + kFixtures +
                    "resnet18_w8_batch.safetensors --out " + out.string() + " --mode " + mode +
                    " > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  TensorFile got = load_safetensors(out.string());
  TensorFile want = load_safetensors(kFixtures + "resnet18_w8_" + mode + ".safetensors");
  const int compared = expect_matches(got, want, 1e-4, "resnet18 " + mode);
  // 20 BatchNorms: bn1, two per basic block (8) and one per downsample (3).
  EXPECT_EQ(compared, 2 + 62 + 2 * 20) << "loss, output, 62 gradients, 40 running statistics";
  std::filesystem::remove(out);
}

}  // namespace

TEST(PyTorchResNet18, TrainModeStepMatchesTorch) { check_against_torch("train"); }
TEST(PyTorchResNet18, EvalModeStepMatchesTorch) { check_against_torch("eval"); }

TEST(ResNet18Names, StateDictMatchesTorchvisionNamesAndShapes) {
  std::ifstream in(kFixtures + "resnet18_names.txt");
  ASSERT_TRUE(in) << "tests/fixtures/resnet18_names.txt is missing";
  models::ResNet model;  // 64 wide, 10 classes: torchvision.models.resnet18(num_classes=10)
  auto state = model.state_dict();
  std::string line;
  size_t i = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream ls(line);
    std::string name, shape;
    ls >> name >> shape;
    ASSERT_LT(i, state.size()) << "torchvision has more entries, next: " << name;
    EXPECT_EQ(state[i].first, name) << "entry " << i;
    std::string mine;
    for (size_t d = 0; d < state[i].second.shape().size(); ++d)
      mine += (d ? "," : "") + std::to_string(state[i].second.shape()[d]);
    EXPECT_EQ(mine.empty() ? "-" : mine, shape) << name;
    ++i;
  }
  EXPECT_EQ(i, state.size());
  EXPECT_EQ(model.num_parameters(), 11181642) << "CONFIGS.md: 11.18 M parameters with 10 classes";
}
