// The motion pieces of TEA and STM (models/motion.h): the channel-wise temporal convolution and
// the temporal difference (values, f64 gradchecks, refusals), the temporal convolution's
// TSM-shift initialisation against temporal_shift, the motion excitation's attention range, the
// motion module's blindness to still clips, TDN's long-term excitation and short-term
// module, which modules each model's blocks hold, TDN's start from 2-D weights, and the planned
// steps of TEA, STM, ECO, TDN and NL I3D + GCN against their plain ones, the region graph's
// overlap edges.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <set>

#include "engine/autograd.h"
#include "engine/factory.h"
#include "engine/planner/chain.h"
#include "engine/planner/planner.h"
#include "models/motion.h"
#include "models/video.h"
#include "ops/gradcheck.h"
#include "ops/ops.h"

using namespace spool;

namespace {
// One clip of 3 frames, C channels, 1 pixel: value = 100 t + c + 1.
Tensor frames(int64_t c) {
  std::vector<double> v;
  for (int t = 0; t < 3; ++t)
    for (int64_t ch = 0; ch < c; ++ch) v.push_back(100.0 * t + double(ch) + 1);
  return from_vector(v, {3, c, 1, 1});
}
}  // namespace

TEST(TemporalConv, WeighsThePreviousThisAndNextFrameWithZerosBeyondTheClip) {
  const Tensor x = frames(2);
  // channel 0: taps (1, 10, 100); channel 1: (0, 0, 1) (its next frame)
  const Tensor w = from_vector(std::vector<double>{1, 10, 100, 0, 0, 1}, {2, 1, 3});
  const auto y = temporal_conv(x, w, 3).to_vector<double>();
  // frame 0, channel 0: 10 * 1 + 100 * 101 (no previous frame)
  EXPECT_DOUBLE_EQ(y[0], 10 * 1 + 100 * 101);
  EXPECT_DOUBLE_EQ(y[2], 1 * 1 + 10 * 101 + 100 * 201);  // frame 1, channel 0
  EXPECT_DOUBLE_EQ(y[4], 1 * 101 + 10 * 201);            // frame 2: no next frame
  EXPECT_DOUBLE_EQ(y[1], 102);                           // channel 1 takes the next frame
  EXPECT_DOUBLE_EQ(y[5], 0);                             // ... which the last frame lacks
}

TEST(TemporalConv, GradientMatchesFiniteDifferencesInInputAndWeight) {
  Generator gen(3);
  Tensor x = randn({6, 4, 2, 3}, DType::f64, &gen).requires_grad_();
  Tensor w = randn({4, 1, 3}, DType::f64, &gen).requires_grad_();
  EXPECT_EQ(gradcheck([](const Tensors& in) { return temporal_conv(in[0], in[1], 3); }, {x, w}),
            "");
}

TEST(TemporalConv, RefusesAWeightOfTheWrongShapeAndPartialClips) {
  EXPECT_THROW(temporal_conv(zeros({6, 4, 2, 2}), zeros({4, 3}), 3), Error);
  EXPECT_THROW(temporal_conv(zeros({6, 4, 2, 2}), zeros({3, 1, 3}), 3), Error);
  EXPECT_THROW(temporal_conv(zeros({5, 4, 2, 2}), zeros({4, 1, 3}), 3), Error);
}

TEST(TemporalConv, ShiftInitialisationIsTsmsShiftOfHalfTheChannelsEachWay) {
  Generator gen(4);
  const Tensor x = randn({8, 6, 3, 2}, DType::f32, &gen);
  models::TemporalConv shift(6, 4, /*identity=*/false), identity(6, 4, /*identity=*/true);
  EXPECT_EQ(shift.forward(x).to_vector<float>(), temporal_shift(x, 4, 2).to_vector<float>());
  EXPECT_EQ(identity.forward(x).to_vector<float>(), x.to_vector<float>());
}

TEST(TemporalDifference, IsTheNextFramesAMinusThisFramesBWithZerosLast) {
  const Tensor a = frames(2), b = mul(frames(2), 0.5);
  const auto d = temporal_difference(a, b, 3).to_vector<double>();
  EXPECT_DOUBLE_EQ(d[0], 101 - 0.5 * 1);    // frame 0, channel 0
  EXPECT_DOUBLE_EQ(d[3], 202 - 0.5 * 102);  // frame 1, channel 1
  EXPECT_DOUBLE_EQ(d[4], 0);                // the clip's last frame
  EXPECT_DOUBLE_EQ(d[5], 0);
  EXPECT_THROW(temporal_difference(a, zeros({3, 3, 1, 1}, DType::f64), 3), Error);
  EXPECT_THROW(temporal_difference(a, b, 2), Error);
}

TEST(TemporalDifference, GradientMatchesFiniteDifferences) {
  Generator gen(6);
  Tensor a = randn({6, 3, 2, 2}, DType::f64, &gen).requires_grad_();
  Tensor b = randn({6, 3, 2, 2}, DType::f64, &gen).requires_grad_();
  EXPECT_EQ(
      gradcheck([](const Tensors& in) { return temporal_difference(in[0], in[1], 2); }, {a, b}),
      "");
}

TEST(TemporalDifference, StepMinusOneIsThePreviousFramesAMinusThisFramesBWithZerosFirst) {
  const Tensor a = frames(2), b = mul(frames(2), 0.5);
  const auto d = temporal_difference(a, b, 3, -1).to_vector<double>();
  EXPECT_DOUBLE_EQ(d[0], 0);  // the clip's first frame
  EXPECT_DOUBLE_EQ(d[1], 0);
  EXPECT_DOUBLE_EQ(d[2], 1 - 0.5 * 101);    // frame 1, channel 0
  EXPECT_DOUBLE_EQ(d[5], 102 - 0.5 * 202);  // frame 2, channel 1
  EXPECT_THROW(temporal_difference(a, b, 3, 2), Error);
  Generator gen(16);
  Tensor x = randn({6, 3, 2, 2}, DType::f64, &gen).requires_grad_();
  Tensor y = randn({6, 3, 2, 2}, DType::f64, &gen).requires_grad_();
  EXPECT_EQ(
      gradcheck([](const Tensors& in) { return temporal_difference(in[0], in[1], 3, -1); }, {x, y}),
      "");
}

TEST(LongTermDifference, ScalesEachValueByBetweenOneHalfAndThreeHalvesPerPixel) {
  Generator gen(17);
  models::LongTermDifference ltdm(32, 4, &gen);
  const Tensor x = randn({8, 32, 5, 5}, DType::f32, &gen);
  const auto in = x.to_vector<float>(), out = ltdm.forward(x).to_vector<float>();
  ASSERT_EQ(in.size(), out.size());
  std::set<float> ratios;
  for (size_t i = 0; i < in.size(); ++i) {
    const float r = std::abs(in[i]) > 1e-3f ? out[i] / in[i] : 1.0f;
    EXPECT_GE(r, 0.5f - 1e-5f) << i;
    EXPECT_LE(r, 1.5f + 1e-5f) << i;
    ratios.insert(std::round(r * 1e4f));
  }
  // Unlike TEA's ME, the excitation varies over space: many distinct ratios, not one a channel.
  EXPECT_GT(ratios.size(), size_t(32 * 8 * 4));
  EXPECT_THROW(models::LongTermDifference(8, 4, &gen), Error);  // 8 / 16 leaves no channel
}

TEST(LongTermDifference, IsEquivariantToReversingTheClip) {
  // The forward difference of a reversed clip is the backward difference of the original at the
  // mirrored segment, and both go through the same weights and are averaged: reversing the
  // segments reverses the output. The module itself does not tell the direction of time (TDN's
  // S-TDM, on ordered frame differences, does; docs/video.md).
  Generator gen(19);
  models::LongTermDifference ltdm(32, 4, &gen);
  const Tensor x = randn({2, 4, 32, 5, 5}, DType::f32, &gen);
  const Tensor back = from_vector(std::vector<int64_t>{3, 2, 1, 0});
  auto frames = [](const Tensor& v) { return reshape(contiguous(v), {8, 32, 5, 5}); };
  const Tensor y = ltdm.forward(frames(x));
  const Tensor y_rev = ltdm.forward(frames(index_select(x, 1, back)));
  const auto a = frames(index_select(reshape(y, {2, 4, 32, 5, 5}), 1, back)).to_vector<float>();
  const auto b = y_rev.to_vector<float>();
  ASSERT_EQ(a.size(), b.size());
  double worst = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, double(std::abs(a[i] - b[i])));
    scale = std::max(scale, double(std::abs(a[i])));
  }
  EXPECT_LE(worst, 1e-5 * scale);
  // ... while TEA's motion excitation, one direction only, is not.
  models::MotionExcitation me(32, 4, &gen);
  const auto c = frames(index_select(reshape(me.forward(frames(x)), {2, 4, 32, 5, 5}), 1, back))
                     .to_vector<float>();
  const auto d = me.forward(frames(index_select(x, 1, back))).to_vector<float>();
  double apart = 0;
  for (size_t i = 0; i < c.size(); ++i) apart = std::max(apart, double(std::abs(c[i] - d[i])));
  EXPECT_GT(apart, 1e-2 * scale);
}

TEST(ShortTermDifference, SeesOnlyChangeWithinTheSnippet) {
  // A snippet whose 5 frames are the same has zero differences, so its motion features are
  // those of a zero input: the same for every still snippet, whatever its content.
  Generator gen(18);
  models::ShortTermDifference stdm(5, 8, 18, &gen);
  stdm.eval();  // the running statistics, so one snippet does not depend on the batch
  auto still = [&] {
    const Tensor frame = randn({1, 1, 3, 32, 32}, DType::f32, &gen);
    return reshape(contiguous(expand(frame, {1, 5, 3, 32, 32})), {1, 15, 32, 32});
  };
  const auto a = stdm.forward(still()).to_vector<float>();
  const auto b = stdm.forward(still()).to_vector<float>();
  EXPECT_EQ(a, b);
  const auto c = stdm.forward(randn({1, 15, 32, 32}, DType::f32, &gen)).to_vector<float>();
  EXPECT_NE(a, c);
  EXPECT_EQ(stdm.forward(still()).shape(), (Shape{1, 8, 4, 4}));  // 1/8 of the frame
  EXPECT_THROW(stdm.forward(randn({1, 12, 32, 32}, DType::f32, &gen)), Error);
}

TEST(VideoModels, TdnHasTheShortTermModuleAndTheLongTermOneFromStageTwo) {
  Generator gen(0);
  models::VideoConfig c = models::video_config("tdn-r18");
  c.width = 16;
  c.segments = 3;
  models::TdnNet tdn(c, &gen);
  std::set<std::string> names;
  for (const auto& [n, p] : tdn.named_parameters()) names.insert(n);
  for (const char* n :
       {"stdm.conv1.weight", "stdm.bn1.weight", "stdm.layer1.1.conv2.weight",
        "backbone.layer2.0.ltdm.conv1.weight", "backbone.layer4.1.ltdm.bn3.bias",
        "backbone.layer4.1.ltdm.conv_half.weight", "backbone.layer1.1.conv2.weight"})
    EXPECT_TRUE(names.count(n)) << n;
  EXPECT_FALSE(names.count("backbone.layer1.0.ltdm.conv1.weight"));
  const Tensor y = tdn.forward(randn({2, 3, 15, 32, 32}, DType::f32, &gen));
  EXPECT_EQ(y.shape(), (Shape{2, 10}));
  EXPECT_THROW(tdn.forward(randn({2, 3, 3, 32, 32}, DType::f32, &gen)), Error);
}

TEST(VideoModels, TdnTakesTwoDimensionalWeightsForItsBackboneAndShortTermModule) {
  Generator gen(3);
  auto tsn = models::make_video_model("tsn-r18", 16, &gen);
  auto tdn = models::make_video_model("tdn-r18", 16, &gen);
  const nn::NamedTensors from_2d = models::video_state_from_2d(tsn->state_dict(), *tdn, "tdn-r18");
  tdn->load_state_dict(from_2d);
  auto named = [](const nn::NamedTensors& s, const std::string& n) {
    for (const auto& [k, t] : s)
      if (k == n) return t;
    ADD_FAILURE() << "no " << n;
    return Tensor();
  };
  const nn::NamedTensors tsn_state = tsn->state_dict();
  for (const char* n : {"layer1.1.conv2.weight", "bn1.weight", "layer3.0.conv1.weight"})
    EXPECT_EQ(named(from_2d, std::string("backbone.") + n).to_vector<float>(),
              named(tsn_state, std::string("backbone.") + n).to_vector<float>())
        << n;
  EXPECT_EQ(named(from_2d, "stdm.layer1.1.conv2.weight").to_vector<float>(),
            named(tsn_state, "backbone.layer1.1.conv2.weight").to_vector<float>());
  // The differences' first conv: the RGB kernels averaged over colour, repeated over 12 channels.
  const Tensor w = named(from_2d, "stdm.conv1.weight");
  ASSERT_EQ(w.shape(), (Shape{16, 12, 7, 7}));
  const auto rgb = named(tsn_state, "backbone.conv1.weight").to_vector<float>();
  const auto got = w.to_vector<float>();
  for (int64_t o = 0; o < 16; ++o)
    for (int64_t c = 0; c < 12; ++c)
      for (int64_t k = 0; k < 49; ++k) {
        const float mean = (rgb[size_t((o * 3 + 0) * 49 + k)] + rgb[size_t((o * 3 + 1) * 49 + k)] +
                            rgb[size_t((o * 3 + 2) * 49 + k)]) /
                           3;
        ASSERT_NEAR(got[size_t((o * 12 + c) * 49 + k)], mean, 1e-6f) << o << " " << c << " " << k;
      }
}

TEST(MotionExcitation, ScalesEachChannelByBetweenOneHalfAndThreeHalves) {
  Generator gen(7);
  models::MotionExcitation me(32, 4, &gen);
  const Tensor x = randn({8, 32, 5, 5}, DType::f32, &gen);
  const auto in = x.to_vector<float>(), out = me.forward(x).to_vector<float>();
  ASSERT_EQ(in.size(), out.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const float r = std::abs(in[i]) > 1e-3f ? out[i] / in[i] : 1.0f;
    EXPECT_GE(r, 0.5f - 1e-5f) << i;
    EXPECT_LE(r, 1.5f + 1e-5f) << i;
  }
  EXPECT_THROW(models::MotionExcitation(8, 4, &gen), Error);  // 8 / 16 leaves no channel
}

TEST(VideoModels, TeaReplacesEachBlocksConv2ByMotionExcitationAndAggregation) {
  Generator gen(0);
  models::VideoConfig c = models::video_config("tea-r18");
  c.width = 16;
  c.segments = 3;
  models::SegmentNet tea(c, &gen);
  bool has_conv2 = false, has_me = false, has_shift = false;
  for (const auto& [n, p] : tea.named_parameters()) {
    has_conv2 = has_conv2 || n.find(".conv2.") != std::string::npos && n.find(".me.") == n.npos;
    has_me = has_me || n == "backbone.layer1.0.me.conv1.weight";
    has_shift = has_shift || n == "backbone.layer4.1.mta.shifts.3.conv.weight";
  }
  EXPECT_FALSE(has_conv2);
  EXPECT_TRUE(has_me);
  EXPECT_TRUE(has_shift);
  const Tensor y = tea.forward(randn({2, 3, 3, 32, 32}, DType::f32, &gen));
  EXPECT_EQ(y.shape(), (Shape{2, 10}));
}

TEST(ChannelMotion, IsZeroOnStillClipsWhenItsTransformIsTheIdentity) {
  // With conv2 the identity (a 1 at each channel's kernel centre), the motion feature of a clip
  // whose frames are all the same is zero: CMM sees only change.
  Generator gen(8);
  models::ChannelMotion cmm(32, 4, 1, &gen);
  for (const auto& [n, p] : cmm.named_parameters())
    if (n == "conv2.weight") {
      std::vector<float> w(size_t(p.numel()), 0.0f);
      for (int64_t c = 0; c < p.size(0); ++c) w[size_t(c * 9 + 4)] = 1.0f;
      NoGrad no_grad;
      copy_(p, from_vector(w, p.shape()));
    }
  const Tensor frame = randn({1, 1, 32, 5, 5}, DType::f32, &gen);
  const Tensor still = reshape(contiguous(expand(frame, {2, 4, 32, 5, 5})), {8, 32, 5, 5});
  for (float v : cmm.forward(still).to_vector<float>()) EXPECT_NEAR(v, 0.0f, 1e-6f);
  const Tensor moving = randn({8, 32, 5, 5}, DType::f32, &gen);
  float largest = 0;
  for (float v : cmm.forward(moving).to_vector<float>()) largest = std::max(largest, std::abs(v));
  EXPECT_GT(largest, 0.01f);
}

TEST(VideoModels, StmKeepsConv2AndAddsATemporalConvAndTheMotionModule) {
  Generator gen(0);
  models::VideoConfig c = models::video_config("stm-r18");
  c.width = 16;
  c.segments = 3;
  models::SegmentNet stm(c, &gen);
  std::set<std::string> names;
  for (const auto& [n, p] : stm.named_parameters()) names.insert(n);
  for (const char* n : {"backbone.layer1.0.conv2.weight", "backbone.layer1.0.tconv.conv.weight",
                        "backbone.layer1.0.cmm.conv1.weight", "backbone.layer4.1.cmm.conv3.weight"})
    EXPECT_TRUE(names.count(n)) << n;
  const Tensor y = stm.forward(randn({2, 3, 3, 32, 32}, DType::f32, &gen));
  EXPECT_EQ(y.shape(), (Shape{2, 10}));
}

TEST(RegionGraph, OverlapEdgesJoinAdjacentFramesByIouRowsSummingToOne) {
  const auto regions = models::RegionGraph::grid_regions(4, 4);
  ASSERT_EQ(regions.size(), 9u);
  EXPECT_EQ(regions[4], (std::array<double, 4>{1, 1, 3, 3}));  // the centre window
  const auto front = models::RegionGraph::overlap_graph(regions, 3, 1).to_vector<double>();
  const auto back = models::RegionGraph::overlap_graph(regions, 3, -1).to_vector<double>();
  const int64_t m = 27;
  // The centre window overlaps itself (IoU 1), its 4 edge neighbours (1/3) and its 4 diagonal
  // ones (1/7), each in the next frame.
  const double total = 1 + 4.0 / 3 + 4.0 / 7;
  EXPECT_NEAR(front[size_t(4 * m + 9 + 4)], 1 / total, 1e-12);
  EXPECT_NEAR(front[size_t(4 * m + 9 + 1)], (1.0 / 3) / total, 1e-12);
  EXPECT_NEAR(front[size_t(4 * m + 9 + 0)], (1.0 / 7) / total, 1e-12);
  EXPECT_EQ(front[size_t(4 * m + 4)], 0.0);  // nothing within a frame
  for (int64_t i = 0; i < m; ++i) {
    double f = 0, b = 0;
    for (int64_t j = 0; j < m; ++j) f += front[size_t(i * m + j)], b += back[size_t(i * m + j)];
    EXPECT_NEAR(f, i < 18 ? 1.0 : 0.0, 1e-12) << i;  // the last frame has no next one
    EXPECT_NEAR(b, i >= 9 ? 1.0 : 0.0, 1e-12) << i;  // the first no previous one
  }
}

// Regions that differ frame by frame: the object's box beside the grid. A region that overlaps
// nothing in the neighbouring frame (here a zero-area box) has no edges there; every other row
// sums to 1.
TEST(RegionGraph, PerFrameRegionsJoinByIouAndARegionOverlappingNothingHasNoEdges) {
  using Box = models::RegionGraph::Box;
  const auto grid = models::RegionGraph::grid_regions(4, 4);
  std::vector<std::vector<Box>> frames(3);
  const Box objects[3] = {{0, 0, 2, 2}, {1, 0, 3, 2}, {2, 2, 2, 2}};  // the last has no area
  for (int t = 0; t < 3; ++t) {
    frames[size_t(t)] = {objects[t]};
    frames[size_t(t)].insert(frames[size_t(t)].end(), grid.begin(), grid.end());
  }
  const int64_t r = 10, m = 30;
  const auto front = models::RegionGraph::overlap_graph(frames, 1).to_vector<double>();
  const auto back = models::RegionGraph::overlap_graph(frames, -1).to_vector<double>();
  // Frame 0's object [0, 2] x [0, 2] against frame 1's regions: its object [1, 3] x [0, 2] (IoU
  // 2 / 6), grid windows 0 (the same box: 1), 1 ([1, 3] x [0, 2]: 1/3), 3 (1/3), 4 (1/7).
  const double total = 1.0 / 3 + 1 + 1.0 / 3 + 1.0 / 3 + 1.0 / 7;
  EXPECT_NEAR(front[size_t(0 * m + r + 0)], (1.0 / 3) / total, 1e-12);
  EXPECT_NEAR(front[size_t(0 * m + r + 1)], 1 / total, 1e-12);
  EXPECT_NEAR(front[size_t(0 * m + r + 5)], (1.0 / 7) / total, 1e-12);
  for (int64_t i = 0; i < m; ++i) {
    double f = 0, b = 0;
    for (int64_t j = 0; j < m; ++j) f += front[size_t(i * m + j)], b += back[size_t(i * m + j)];
    // Frame 2's object (row 20) overlaps nothing in frame 1; the last frame has no next one.
    EXPECT_NEAR(f, i < 2 * r ? 1.0 : 0.0, 1e-12) << i;
    EXPECT_NEAR(b, i >= r && i != 2 * r ? 1.0 : 0.0, 1e-12) << i;
  }
  // Nothing points at the zero-area box either.
  for (int64_t i = 0; i < r; ++i) EXPECT_EQ(front[size_t((r + i) * m + 2 * r)], 0.0) << i;
}

// NL I3D + GCN on object boxes: the boxes change the output (the graph reads them), a planned
// step on them equals the plain one bit for bit, and boxes that do not fit are refused by name.
TEST(GcnNet, ObjectBoxesChangeTheGraphStepUnderAPlanAndAreChecked) {
  Generator gen(9), data(10);
  models::VideoConfig c = models::video_config("gcn-r18");
  c.width = 16;
  c.dropout = 0;
  models::GcnNet net(c, &gen);
  const Tensor clips = randn({2, 3, 4, 64, 64}, DType::f32, &data);
  const Tensor labels = from_vector(std::vector<int64_t>{3, 8}, {2});
  std::vector<float> b;
  for (int64_t i = 0; i < 8; ++i) b.insert(b.end(), {float(4 * i), 8, float(4 * i + 20), 30});
  const Tensor boxes = from_vector(b, {2, 4, 4});
  net.eval();
  EXPECT_NE(net.forward(clips).to_vector<float>(), net.forward(clips, boxes).to_vector<float>());
  net.train();
  const Tensor loss = cross_entropy(net.forward(clips, boxes), labels);
  backward(loss);
  std::vector<std::vector<float>> plain;
  for (const auto& p : net.parameters()) plain.push_back(p.grad().to_vector<float>());
  net.zero_grad();
  Chain chain = net.chain(clips, labels, boxes);
  const ChainProfile prof = profile_chain(chain);
  net.zero_grad();  // profiling ran a backward
  const StepResult r = run_step(chain, prof, make_plan(prof, "sqrt", kUnlimited));
  EXPECT_EQ(r.loss, loss.item());
  size_t i = 0;
  for (const auto& p : net.parameters()) EXPECT_EQ(p.grad().to_vector<float>(), plain[i++]);
  EXPECT_EQ(r.measured_peak, r.predicted_peak);
  auto error_of = [&](const Tensor& bad) {
    try {
      net.forward(clips, bad);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of(from_vector(b, {4, 2, 4})).find("must be [2, 4, 4]"), std::string::npos);
  std::vector<float> flipped = b;
  std::swap(flipped[4], flipped[6]);  // clip 0, frame 1: x1 > x2
  EXPECT_NE(error_of(from_vector(flipped, {2, 4, 4})).find("clip 0, frame 1"), std::string::npos);
  std::vector<float> nan = b;
  nan[31] = std::nanf("");
  EXPECT_NE(error_of(from_vector(nan, {2, 4, 4})).find("clip 1, frame 3"), std::string::npos);
}

TEST(VideoModels, TeaStmEcoTdnAndGcnStepsUnderAPlanEqualTheirPlainSteps) {
  for (const char* name : {"tea-r18", "stm-r18", "eco-r18", "tdn-r18", "gcn-r18"}) {
    SCOPED_TRACE(name);
    Generator gen(9), data(10);
    models::VideoConfig c = models::video_config(name);
    c.width = 16;
    c.segments = 4;
    c.dropout = 0;
    std::shared_ptr<nn::Module> net;
    if (c.eco)
      net = std::make_shared<models::EcoNet>(c, &gen);
    else if (c.tdn)
      net = std::make_shared<models::TdnNet>(c, &gen);
    else if (c.gcn)
      net = std::make_shared<models::GcnNet>(c, &gen);
    else
      net = std::make_shared<models::SegmentNet>(c, &gen);
    const Tensor frames = c.gcn ? randn({2, 3, 4, 64, 64}, DType::f32, &data)
                                : randn({2, 4, c.tdn ? 15 : 3, 32, 32}, DType::f32, &data);
    const Tensor labels = from_vector(std::vector<int64_t>{3, 8}, {2});
    auto grads = [&] {
      std::vector<std::vector<float>> g;
      for (const auto& p : net->parameters()) g.push_back(p.grad().to_vector<float>());
      net->zero_grad();
      return g;
    };
    const Tensor loss = cross_entropy(net->forward(frames), labels);
    backward(loss);
    const auto plain = grads();
    // Training-mode BatchNorm normalises by the batch, so the running statistics the plain step
    // updated do not change the planned step's loss or gradients.
    Chain chain = c.eco   ? static_cast<models::EcoNet&>(*net).chain(frames, labels)
                  : c.tdn ? static_cast<models::TdnNet&>(*net).chain(frames, labels)
                  : c.gcn ? static_cast<models::GcnNet&>(*net).chain(frames, labels)
                          : static_cast<models::SegmentNet&>(*net).chain(frames, labels);
    const ChainProfile prof = profile_chain(chain);
    net->zero_grad();
    const StepResult r = run_step(chain, prof, make_plan(prof, "sqrt", kUnlimited));
    EXPECT_EQ(r.loss, loss.item());
    const auto got = grads();
    const auto params = net->named_parameters();
    ASSERT_EQ(got.size(), plain.size());
    for (size_t i = 0; i < got.size(); ++i) {
      // TDN's short-term stem output is read by the backbone's fused stem and by the S-TDM's
      // stage 1 (whose first block reads it twice, conv and shortcut): the plain tape sums its
      // three gradient terms in one order, the executor adds the two stages' sums, so the
      // stem's own parameters agree to rounding (4.5e-8 here), every other one bit for bit.
      const std::string& n = params[i].first;
      if (n.rfind("stdm.conv1.", 0) == 0 || n.rfind("stdm.bn1.", 0) == 0) {
        double scale = 0, worst = 0;
        for (size_t j = 0; j < got[i].size(); ++j) {
          scale = std::max(scale, double(std::abs(plain[i][j])));
          worst = std::max(worst, double(std::abs(got[i][j] - plain[i][j])));
        }
        EXPECT_LE(worst, 1e-5 * scale) << n;
      } else {
        EXPECT_EQ(got[i], plain[i]) << n;
      }
    }
    EXPECT_EQ(r.measured_peak, r.predicted_peak);
    EXPECT_EQ(r.mismatch, "");
  }
}
