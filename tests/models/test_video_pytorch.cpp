// spool grad for the video models against PyTorch (tests/fixtures/make_video_fixture.py): TSN,
// TSM, TRN, TEA, STM, ECO and TDN over 3 segments and I3D (with a non-local block), at base width 8
// (tea-r18 at 16; TEA's and STM's motion modules reducing the channels by 8), train mode with
// dropout off; the loss, logits, every parameter gradient and the updated BatchNorm statistics,
// computed by torch in float64 and stored as float32.
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

// `weights`: the fixture whose weights it uses (its own by default).
void check_model(const std::string& model, const std::string& stem, std::string weights = "") {
  if (weights.empty()) weights = stem;
  auto out = std::filesystem::temp_directory_path() / ("spool_video_grad_" + stem + ".safetensors");
  const std::string cmd = std::string(SPOOL_CLI) + " grad --model " + model + " --weights " +
                          kFixtures + "video_" + weights + "_weights.safetensors --batch " +
                          kFixtures + "video_" + stem + "_batch.safetensors --out " + out.string() +
                          " --no-dropout > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  TensorFile got = load_safetensors(out.string());
  TensorFile want = load_safetensors(kFixtures + "video_" + stem + "_expected.safetensors");
  // Some gradients are zero in exact arithmetic (the non-local block's phi, g and output biases,
  // which softmax and BatchNorm cancel): torch's float64 gives ~1e-16 there and spool's float32
  // 1e-8 to 1e-7 depending on the machine's summation order; expect_matches compares those
  // absolutely (within 1e-6), every other tensor within 1e-4 of its own scale.
  const int compared = expect_matches(got, want, 1e-4, model);
  EXPECT_GT(compared, 60) << "loss, output, gradients and running statistics";
  std::filesystem::remove(out);
}

}  // namespace

TEST(PyTorchVideo, TsnMatchesTorch) { check_model("tsn-r18", "tsn"); }
TEST(PyTorchVideo, TsmMatchesTorch) { check_model("tsm-r18", "tsm"); }
TEST(PyTorchVideo, TrnMatchesTorch) { check_model("trn-r18", "trn"); }
TEST(PyTorchVideo, I3dWithNonLocalMatchesTorch) { check_model("i3d-r18", "i3d"); }
// ResNet-50: torchvision's bottleneck with the residual shift, and the I3D ResNet-50 ("3x1x1"
// inflation).
TEST(PyTorchVideo, TsmResNet50MatchesTorch) { check_model("tsm-r50", "tsm_r50"); }
TEST(PyTorchVideo, I3dResNet50MatchesTorch) { check_model("i3d-r50", "i3d_r50"); }
// TEA: motion excitation and multiple temporal aggregation in every block, on
// basic blocks and on bottlenecks (stage blocks with the stride and the pooled last group).
TEST(PyTorchVideo, TeaMatchesTorch) { check_model("tea-r18", "tea"); }
TEST(PyTorchVideo, TeaResNet50MatchesTorch) { check_model("tea-r50", "tea_r50"); }
// STM: a channel-wise temporal conv before every 3x3 conv and the channel-wise
// motion module beside it (with the stride in strided bottlenecks).
TEST(PyTorchVideo, StmMatchesTorch) { check_model("stm-r18", "stm"); }
TEST(PyTorchVideo, StmResNet50MatchesTorch) { check_model("stm-r50", "stm_r50"); }
// ECO lite: 2-D stages 1-2, the maps stacked over time, 3-D stages 3-4.
TEST(PyTorchVideo, EcoMatchesTorch) { check_model("eco-r18", "eco"); }
TEST(PyTorchVideo, EcoResNet50MatchesTorch) { check_model("eco-r50", "eco_r50"); }
// TDN: snippets of 5 frames, the short-term module on their differences fused after the stem and
// stage 1 (nearest resizing), the long-term module in every block of stages 2-4.
TEST(PyTorchVideo, TdnMatchesTorch) { check_model("tdn-r18", "tdn"); }
TEST(PyTorchVideo, TdnResNet50MatchesTorch) { check_model("tdn-r50", "tdn_r50"); }
// The two-stream network's temporal stream: TSN on 5 flow fields a segment (10 channels).
TEST(PyTorchVideo, TsnOnFlowMatchesTorch) { check_model("tsn-r18", "tsn_flow"); }
// NL I3D + GCN: the region graph (RoIAlign, similarity and overlap graphs, GCN layers) on I3D's
// last map, beside the pooled feature.
TEST(PyTorchVideo, NonLocalI3dWithGcnMatchesTorch) { check_model("gcn-r18", "gcn"); }
// The same with each frame's object box beside the grid (the generated clips' regions): boxes
// that move, jump, leave the clip in part and shrink to no area.
TEST(PyTorchVideo, NonLocalI3dWithGcnOnObjectBoxesMatchesTorch) {
  check_model("gcn-r18", "gcn_boxes", "gcn");
}
