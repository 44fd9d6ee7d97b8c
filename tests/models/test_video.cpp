// The video pieces on their own: the temporal shift (values and f64 gradcheck, both modes),
// inflation of 2-D weights, the CONFIGS.md parameter counts, and the generated order-sensitive
// clips (a backward clip is the forward one reversed; flips map the mirrored labels).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "data/synthetic_video.h"
#include "data/video_io.h"
#include "engine/autograd.h"
#include "engine/factory.h"
#include "models/video.h"
#include "ops/ops.h"

using namespace spool;

namespace {

Tensor iota(const Shape& shape, DType dtype = DType::f64) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return reshape(arange(0, double(n), 1, dtype), shape);
}

Tensor select(const Tensor& x, int64_t dim, int64_t i) {
  return squeeze(narrow(x, dim, i, 1), dim);
}

void disable_dropout_for_test(nn::Module& m) {
  if (auto* d = dynamic_cast<nn::Dropout*>(&m)) d->p = 0;
  for (auto& [n, c] : m.named_children()) disable_dropout_for_test(*c);
}

Tensor named(const nn::NamedTensors& state, const std::string& name) {
  for (const auto& [n, t] : state)
    if (n == name) return t;
  ADD_FAILURE() << "no " << name;
  return {};
}

}  // namespace

TEST(TemporalShift, MovesAnEighthEachWayAndZeroFillsTheEnds) {
  // One clip of 3 frames, 16 channels, 1 pixel: value = 100 t + c.
  std::vector<double> v;
  for (int t = 0; t < 3; ++t)
    for (int c = 0; c < 16; ++c) v.push_back(100 * t + c);
  const Tensor x = from_vector(v, {3, 16, 1, 1});
  const auto y = temporal_shift(x, 3).to_vector<double>();
  auto at = [&](int t, int c) { return y[size_t(t * 16 + c)]; };
  EXPECT_EQ(at(0, 0), 100);  // channel 0 from the next frame
  EXPECT_EQ(at(2, 1), 0);    // the last frame has no next frame
  EXPECT_EQ(at(1, 2), 2);    // channel 2 (in [C/8, C/4)) from the previous frame
  EXPECT_EQ(at(0, 3), 0);    // the first frame has no previous frame
  EXPECT_EQ(at(2, 9), 209);  // the rest stay
  const auto o = temporal_shift(x, 3, 8, ShiftMode::online).to_vector<double>();
  EXPECT_EQ(o[size_t(1 * 16 + 0)], 0);    // online: channel 0 from the previous frame
  EXPECT_EQ(o[size_t(0 * 16 + 1)], 0);    // zero-filled at the start
  EXPECT_EQ(o[size_t(1 * 16 + 2)], 102);  // only 1/8 moves
}

TEST(TemporalShift, GradientMatchesFiniteDifferencesInBothModes) {
  for (ShiftMode m : {ShiftMode::bidirectional, ShiftMode::online}) {
    Tensor x = iota({6, 16, 2, 1}) * 0.01;
    x = x.detach().requires_grad_();
    EXPECT_EQ(gradcheck([m](const Tensors& in) { return temporal_shift(in[0], 3, 8, m); }, {x}),
              "");
  }
}

TEST(TemporalShift, KernelEqualsTheCompositionForwardAndBackward) {
  Generator gen(5);
  for (int64_t fold_div : {8, 3, 2, 1})
    for (ShiftMode m : {ShiftMode::bidirectional, ShiftMode::online}) {
      Tensor a = randn({8, 24, 3, 5}, DType::f32, &gen).requires_grad_();
      Tensor b = a.detach().requires_grad_();
      const Tensor g = randn({8, 24, 3, 5}, DType::f32, &gen);
      Tensor ya = temporal_shift(a, 4, fold_div, m),
             yb = detail::temporal_shift_composite(b, 4, fold_div, m);
      EXPECT_EQ(ya.to_vector<float>(), yb.to_vector<float>());
      backward(ya, g);
      backward(yb, g);
      EXPECT_EQ(a.grad().to_vector<float>(), b.grad().to_vector<float>());
    }
}

TEST(TemporalShift, RefusesFramesThatAreNotWholeClips) {
  EXPECT_THROW(temporal_shift(zeros({5, 16, 2, 2}), 3), Error);
}

TEST(VideoModels, ParameterCountsAreThoseOfConfigs) {
  Generator gen(0);
  EXPECT_EQ(models::SegmentNet(models::tsn_r18(), &gen).num_parameters(), 11181642);
  EXPECT_EQ(models::SegmentNet(models::tsm_r18(), &gen).num_parameters(), 11181642);
  const int64_t i3d = models::I3d(models::i3d_r18(), &gen).num_parameters();
  EXPECT_NEAR(double(i3d), 14.39e6, 0.005e6) << i3d;
}

// torchvision's counts (1000 classes): resnet34 21,797,672, resnet50 25,557,032, resnet101
// 44,549,160; the ResNet-50 video models as the PyTorch fixture script's classes count them.
TEST(VideoModels, ResNetDepthsHaveTorchvisionParameterCounts) {
  Generator gen(0);
  for (auto [depth, count] :
       {std::pair<int64_t, int64_t>{34, 21797672}, {50, 25557032}, {101, 44549160}}) {
    models::ResNetConfig c;
    c.depth = depth;
    c.num_classes = 1000;
    EXPECT_EQ(models::ResNet(c, &gen).num_parameters(), count) << depth;
  }
  EXPECT_EQ(models::SegmentNet(models::video_config("tsn-r50"), &gen).num_parameters(), 23528522);
  EXPECT_EQ(models::I3d(models::video_config("i3d-r50"), &gen).num_parameters(), 27244362);
  models::ResNetConfig bad;
  bad.depth = 26;
  EXPECT_THROW(models::ResNet(bad, &gen), Error);
  EXPECT_THROW(models::video_config("i3d-r34"), Error);
}

TEST(VideoSampling, SnippetsStartAtTheSegmentsFrameAndStayInTheVideo) {
  // 16 frames, 8 segments of 2, snippets of 5: starts 0, 2, ..., 10, then moved back to 11.
  const auto idx = data::segment_frames(16, 8, 5, 0.0);
  ASSERT_EQ(idx.size(), 40u);
  const int64_t starts[8] = {0, 2, 4, 6, 8, 10, 11, 11};
  for (int64_t k = 0; k < 8; ++k)
    for (int64_t j = 0; j < 5; ++j) EXPECT_EQ(idx[size_t(k * 5 + j)], starts[k] + j) << k << j;
  // A video shorter than a snippet repeats its last frame.
  EXPECT_THAT(data::segment_frames(3, 1, 5, 0.5), ::testing::ElementsAre(0, 1, 2, 2, 2));
  // Length 1 is TSN's RGB sampling.
  EXPECT_EQ(data::segment_frames(16, 8, 1, 0.25), data::spread_frames(16, 8, 0.25));
  EXPECT_THROW(data::segment_frames(0, 8, 1, 0.0), Error);
}

TEST(VideoSampling, RgbDifferencesStackConsecutiveFramesAndFlipSignWhenReversed) {
  // Two snippets of 4 frames, 3 channels, 2 x 2 pixels; frame f of snippet k, channel c has
  // value k * 100 + f * f * (c + 1) + pixel.
  const int64_t k = 2, l = 4;
  std::vector<float> v;
  for (int64_t s = 0; s < k; ++s)
    for (int64_t f = 0; f < l; ++f)
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t p = 0; p < 4; ++p) v.push_back(float(s * 100 + f * f * (c + 1) + p));
  const Tensor snippets = from_vector(v, {k * l, 3, 2, 2});
  const Tensor d = data::rgb_difference(snippets, l);
  ASSERT_EQ(d.shape(), (Shape{k, 9, 2, 2}));
  const auto got = d.to_vector<float>();
  for (int64_t s = 0; s < k; ++s)
    for (int64_t j = 0; j < l - 1; ++j)
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t p = 0; p < 4; ++p)
          EXPECT_EQ(got[size_t(((s * 9 + j * 3 + c) * 4) + p)],
                    float(((j + 1) * (j + 1) - j * j) * (c + 1)))
              << s << j << c << p;
  // A snippet played backwards gives the differences negated and in reverse order: the modality
  // sees the direction that an average of frames cannot.
  std::vector<int64_t> reversed;
  for (int64_t s = 0; s < k; ++s)
    for (int64_t f = l - 1; f >= 0; --f) reversed.push_back(s * l + f);
  const auto back =
      data::rgb_difference(index_select(snippets, 0, from_vector(reversed)), l).to_vector<float>();
  for (int64_t s = 0; s < k; ++s)
    for (int64_t j = 0; j < l - 1; ++j)
      for (int64_t q = 0; q < 12; ++q)
        EXPECT_EQ(back[size_t((s * 9 + j * 3) * 4 + q)],
                  -got[size_t((s * 9 + (l - 2 - j) * 3) * 4 + q)]);
  EXPECT_THROW(data::rgb_difference(snippets, 3), Error);  // 8 frames are not snippets of 3
  EXPECT_THROW(data::rgb_difference(snippets, 1), Error);
}

TEST(VideoSampling, CropsCopyExactlyAndResizeBilinearly) {
  Generator gen(3);
  const Tensor frames = randn({2, 3, 10, 10}, DType::f32, &gen);
  // The whole frame at its own size, and an integral box of the output size: exact copies.
  EXPECT_EQ(data::crop_resize(frames, {0, 0, 10, 10}, 10).to_vector<float>(),
            frames.to_vector<float>());
  const data::CropBox centre = data::center_crop(10, 6);
  EXPECT_EQ(centre.x, 2);
  EXPECT_EQ(centre.w, 6);
  EXPECT_EQ(data::crop_resize(frames, centre, 6).to_vector<float>(),
            contiguous(slice(slice(frames, 2, 2, 8), 3, 2, 8)).to_vector<float>());
  // A linear ramp stays linear: output pixel o of a box [x, x + w) samples x + (o + 0.5) w / s
  // - 0.5.
  std::vector<float> ramp;
  for (int64_t y = 0; y < 16; ++y)
    for (int64_t x = 0; x < 16; ++x) ramp.push_back(float(3 * x + y));
  const auto r =
      data::crop_resize(from_vector(ramp, {1, 1, 16, 16}), {2, 4, 12, 8}, 6).to_vector<float>();
  for (int64_t oy = 0; oy < 6; ++oy)
    for (int64_t ox = 0; ox < 6; ++ox) {
      const double sx = 2 + (ox + 0.5) * 2 - 0.5, sy = 4 + (oy + 0.5) * 8.0 / 6.0 - 0.5;
      EXPECT_NEAR(r[size_t(oy * 6 + ox)], 3 * sx + sy, 1e-4) << ox << " " << oy;
    }
  EXPECT_THROW(data::crop_resize(frames, {5, 0, 6, 10}, 4), Error);  // past the right edge
  // TSN's scales, at most one step apart, inside the frame.
  const std::set<double> sizes = {128, 112, 96, 84};
  for (int i = 0; i < 200; ++i) {
    const auto u = [&] { return randn({1}, DType::f64, &gen).item() * 0.3 + 0.5; };
    const auto clamp01 = [](double x) { return std::min(0.999, std::max(0.0, x)); };
    const data::CropBox b =
        data::multiscale_crop(128, clamp01(u()), clamp01(u()), clamp01(u()), clamp01(u()));
    EXPECT_TRUE(sizes.count(b.w) && sizes.count(b.h)) << b.w << " x " << b.h;
    EXPECT_LE(std::abs(b.w - b.h), 16) << b.w << " x " << b.h;
    EXPECT_TRUE(b.x >= 0 && b.y >= 0 && b.x + b.w <= 128 && b.y + b.h <= 128);
  }
}

TEST(VideoModels, InflatedStemGivesTheTwoDimensionalConvOnStillClips) {
  Generator gen(1);
  models::ResNetConfig c2;
  c2.width = 4;
  models::ResNet r2(c2, &gen);
  models::ResNet3dConfig c3;
  c3.width = 4;
  c3.num_classes = 10;
  models::ResNet3d r3(c3, &gen);
  r3.load_state_dict(models::inflate_2d(r2.state_dict(), r3));
  // conv1 of the 3-D model on 7 identical frames: the middle frames (beyond the kernel's reach of
  // the zero padding) equal the 2-D conv1 on one frame.
  const Tensor frame = randn({1, 3, 16, 16}, DType::f32, &gen);
  const Tensor clip = contiguous(expand(unsqueeze(frame, 2), {1, 3, 7, 16, 16}));
  NoGrad no_grad;
  const Tensor y2 =
      conv2d(frame, named(r2.state_dict(), "conv1.weight"), {}, {.stride = {2}, .padding = {3}});
  const Tensor w3 = named(r3.state_dict(), "conv1.weight");
  ASSERT_EQ(w3.shape(), (Shape{4, 3, 5, 7, 7}));
  const Tensor y3 = conv3d(clip, w3, {}, {.stride = {1, 2, 2}, .padding = {2, 3, 3}});
  const auto a = y2.to_vector<float>(), b = contiguous(select(y3, 2, 3)).to_vector<float>();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-4) << i;
}

TEST(VideoModels, EcoIsTwoDimensionalToStageTwoAndTakesTwoDimensionalWeightsInflated) {
  Generator gen(3);
  auto tsn = models::make_video_model("tsn-r18", 8, &gen);
  auto eco = models::make_video_model("eco-r18", 8, &gen);
  const nn::NamedTensors from_2d = models::video_state_from_2d(tsn->state_dict(), *eco, "eco-r18");
  eco->load_state_dict(from_2d);
  const nn::NamedTensors tsn_state = tsn->state_dict();
  // Stages 1-2 keep the 2-D kernels; stages 3-4 hold them repeated over 3 frames and divided by 3.
  const Tensor w1 = named(from_2d, "backbone.layer2.1.conv2.weight");
  EXPECT_EQ(w1.shape(), (Shape{16, 16, 3, 3}));
  EXPECT_EQ(w1.to_vector<float>(),
            named(tsn_state, "backbone.layer2.1.conv2.weight").to_vector<float>());
  const Tensor w3 = named(from_2d, "backbone.layer3.1.conv2.weight");
  const Tensor w2 = named(tsn_state, "backbone.layer3.1.conv2.weight");
  ASSERT_EQ(w3.shape(), (Shape{32, 32, 3, 3, 3}));
  const auto a = w2.to_vector<float>(), b = contiguous(select(w3, 2, 1)).to_vector<float>();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_FLOAT_EQ(b[i], a[i] / 3) << i;
  const Tensor y = eco->forward(randn({2, 8, 3, 32, 32}, DType::f32, &gen));
  EXPECT_EQ(y.shape(), (Shape{2, 10}));
  EXPECT_THROW(eco->forward(randn({2, 4, 3, 32, 32}, DType::f32, &gen)), Error);
}

TEST(VideoModels, TrnEvaluationIsDeterministicAndTrainingDrawsSubsets) {
  Generator gen(2);
  models::VideoConfig c = models::trn_r18();
  c.width = 4;
  c.segments = 5;
  models::SegmentNet net(c, &gen);
  const Tensor x = randn({2, 5, 3, 32, 32}, DType::f32, &gen);
  NoGrad no_grad;
  net.eval();
  EXPECT_EQ(net.forward(x).to_vector<float>(), net.forward(x).to_vector<float>());
  EXPECT_EQ(net.forward(x).shape(), (Shape{2, 10}));
  // Training draws 3 of the 10 (or 5) subsets per smaller scale: two draws differ (BatchNorm
  // in train mode sees the same batch both times, so only the subsets can change the output).
  net.train();
  disable_dropout_for_test(net);
  const auto a = net.forward(x).to_vector<float>(), b = net.forward(x).to_vector<float>();
  EXPECT_NE(a, b);
  for (float v : a) EXPECT_TRUE(std::isfinite(v));
  c.segments = 17;
  EXPECT_THROW(models::SegmentNet(c, &gen), Error);  // subsets would explode
}

TEST(SyntheticVideo, BackwardClipsAreTheForwardOnesReversed) {
  data::SyntheticVideoSpec s;
  s.frames = 6;
  s.height = s.width = 24;
  s.noise = 0;  // noise is drawn per clip; without it the pair is exactly mirrored in time
  for (bool motion_set : {false, true}) {
    s.motion_only = motion_set;
    const uint64_t pairs = uint64_t(s.classes() / 2);
    for (uint64_t pair = 0; pair < pairs; ++pair) {
      const uint64_t fwd = 2 * uint64_t(s.classes()) + 2 * pair, bwd = fwd + 1;
      ASSERT_EQ(data::clip_label(fwd, s), int64_t(2 * pair));
      Tensor a_boxes, b_boxes;
      const Tensor a = data::render_clip(7, fwd, s, &a_boxes),
                   b = data::render_clip(7, bwd, s, &b_boxes);
      for (int64_t t = 0; t < s.frames; ++t) {
        EXPECT_EQ(contiguous(select(a, 0, t)).to_vector<float>(),
                  contiguous(select(b, 0, s.frames - 1 - t)).to_vector<float>())
            << data::kMotionClasses[2 * pair] << " frame " << t;
        EXPECT_EQ(contiguous(select(a_boxes, 0, t)).to_vector<float>(),
                  contiguous(select(b_boxes, 0, s.frames - 1 - t)).to_vector<float>())
            << data::kMotionClasses[2 * pair] << " box of frame " << t;
      }
      // And the clip moves: first and last frames differ.
      EXPECT_NE(contiguous(select(a, 0, 0)).to_vector<float>(),
                contiguous(select(a, 0, s.frames - 1)).to_vector<float>());
    }
  }
}

// The motion set at 8 frames of 50 x 50 without noise, where the motion-only classes' object is
// the only thing at its value ((0.95 - 0.45) / 0.25) in all three channels: whether pixel (x, y)
// of frame t of clip v belongs to it.
namespace {
data::SyntheticVideoSpec noiseless_motion_set() {
  data::SyntheticVideoSpec s;
  s.frames = 8;
  s.height = s.width = 50;
  s.noise = 0;
  s.motion_only = true;
  return s;
}
bool object_pixel(const std::vector<float>& v, const data::SyntheticVideoSpec& s, int64_t t,
                  int64_t y, int64_t x) {
  const float object = float((0.95 - 0.45) / 0.25);
  for (int64_t ch = 0; ch < 3; ++ch)
    if (v[size_t(((t * 3 + ch) * s.height + y) * s.width + x)] != object) return false;
  return true;
}
}  // namespace

// The motion-only classes: a square of one size in every frame of every clip (its pixels are
// the only ones at the object's value in all three channels when there is no noise), moving right
// or left by 2 % (slow) or 6 % (fast) of the width a frame around a wrapped track.
TEST(SyntheticVideo, MotionOnlyClassesDifferInSpeedAndDirectionAlone) {
  const data::SyntheticVideoSpec s = noiseless_motion_set();
  const double expected_step[4] = {1.0, -1.0, 3.0, -3.0};  // pixels a frame at width 50
  std::set<int64_t> areas;
  for (uint64_t clip = 0; clip < 3; ++clip)
    for (int64_t label = 10; label < 14; ++label) {
      const uint64_t index = clip * 14 + uint64_t(label);
      ASSERT_EQ(data::clip_label(index, s), label);
      const auto v = data::render_clip(3, index, s).to_vector<float>();
      double previous = 0;
      for (int64_t t = 0; t < s.frames; ++t) {
        // The object's pixels, and the circular mean of their columns (the track wraps).
        int64_t area = 0;
        double c = 0, sn = 0;
        for (int64_t y = 0; y < s.height; ++y)
          for (int64_t x = 0; x < s.width; ++x) {
            if (!object_pixel(v, s, t, y, x)) continue;
            ++area;
            c += std::cos(2 * M_PI * double(x) / double(s.width));
            sn += std::sin(2 * M_PI * double(x) / double(s.width));
          }
        areas.insert(area);
        const double column = std::atan2(sn, c) / (2 * M_PI) * double(s.width);
        if (t > 0) {
          double step = column - previous;
          step -= double(s.width) * std::round(step / double(s.width));
          EXPECT_NEAR(step, expected_step[label - 10], 0.35)
              << data::kMotionClasses[label] << ", clip " << clip << ", frame " << t;
        }
        previous = column;
      }
    }
  // One size in every frame of every class: the side is 6.4 pixels (0.08 x 50 x 1.6), 41 square
  // pixels, which the pixel grid (and the clip's orientation) rounds to between 36 and 49.
  ASSERT_FALSE(areas.empty());
  EXPECT_GE(*areas.begin(), 36);
  EXPECT_LE(*areas.rbegin(), 49);
}

// The object boxes are the tight boxes of the object's pixels: on the motion-only classes (whose
// object is the only thing at its value in all three channels without noise), every object pixel
// lies in its frame's box and each of the box's four edges touches one, in every frame whose
// object does not cross the wrapped track's edge. On the order set's right-moving class the box
// moves right.
TEST(SyntheticVideo, ObjectBoxesAreTheTightBoxesOfTheObjectsPixels) {
  data::SyntheticVideoSpec s = noiseless_motion_set();
  int64_t frames_checked = 0;
  for (uint64_t clip = 0; clip < 3; ++clip)
    for (int64_t label = 10; label < 14; ++label) {
      const uint64_t index = clip * 14 + uint64_t(label);
      Tensor boxes;
      const auto v = data::render_clip(3, index, s, &boxes).to_vector<float>();
      ASSERT_EQ(boxes.shape(), (Shape{8, 4}));
      const auto b = boxes.to_vector<float>();
      for (int64_t t = 0; t < s.frames; ++t) {
        const float* box = &b[size_t(4 * t)];
        if (box[0] == 0 || box[2] == float(s.width)) continue;  // may cross the wrapped edge
        float x1 = 1e9f, y1 = 1e9f, x2 = -1, y2 = -1;
        for (int64_t y = 0; y < s.height; ++y)
          for (int64_t x = 0; x < s.width; ++x) {
            if (!object_pixel(v, s, t, y, x)) continue;
            x1 = std::min(x1, float(x));
            y1 = std::min(y1, float(y));
            x2 = std::max(x2, float(x + 1));
            y2 = std::max(y2, float(y + 1));
          }
        EXPECT_EQ(std::vector<float>(box, box + 4), (std::vector<float>{x1, y1, x2, y2}))
            << data::kMotionClasses[label] << ", clip " << clip << ", frame " << t;
        ++frames_checked;
      }
    }
  EXPECT_GE(frames_checked, 40);  // of 96: most frames are away from the edge
  s.motion_only = false;
  Tensor boxes;
  data::render_clip(3, 0, s, &boxes);  // label 0: moving right
  const auto b = boxes.to_vector<float>();
  for (int64_t t = 1; t < s.frames; ++t)
    EXPECT_GT(b[size_t(4 * t)] + b[size_t(4 * t + 2)], b[size_t(4 * t - 4)] + b[size_t(4 * t - 2)])
        << "frame " << t;
}

TEST(SyntheticVideo, FlipsSwapTheMirroredLabelsOnly) {
  EXPECT_EQ(data::flipped_label(0), 1);
  EXPECT_EQ(data::flipped_label(5), 4);
  EXPECT_EQ(data::flipped_label(2), 2);
  EXPECT_EQ(data::flipped_label(9), 9);
  EXPECT_EQ(data::flipped_label(10), 11);  // slow right <-> slow left
  EXPECT_EQ(data::flipped_label(13), 12);  // fast left <-> fast right
}

TEST(VideoIo, JpegRoundTripAndCorruptFilesNamed) {
  const auto dir = std::filesystem::temp_directory_path() / "spool_jpeg_test";
  std::filesystem::create_directories(dir);
  data::Image img{16, 8, std::vector<uint8_t>(16 * 8 * 3)};
  for (int y = 0; y < 8; ++y)  // a smooth image: JPEG keeps it within a few levels
    for (int x = 0; x < 16; ++x) {
      const size_t at = size_t(y * 16 + x) * 3;
      img.rgb[at] = uint8_t(40 + 8 * x);
      img.rgb[at + 1] = uint8_t(60 + 12 * y);
      img.rgb[at + 2] = 128;
    }
  const std::string path = (dir / "a.jpg").string();
  data::write_jpeg(path, img, 100);
  const data::Image back = data::read_jpeg(path);
  ASSERT_EQ(back.width, 16);
  ASSERT_EQ(back.height, 8);
  double worst = 0;
  for (size_t i = 0; i < img.rgb.size(); ++i)
    worst = std::max(worst, std::abs(double(img.rgb[i]) - double(back.rgb[i])));
  EXPECT_LE(worst, 8) << "JPEG at quality 100 on a smooth image";
  const std::string bad = (dir / "bad.jpg").string();
  std::ofstream(bad) << "\xff\xd8 not really";
  try {
    data::read_jpeg(bad);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
}

TEST(VideoIo, VideoFilesDecodeThroughFfmpegAndCorruptOnesAreNamed) {
  if (std::system("command -v ffmpeg > /dev/null 2>&1") != 0)
    GTEST_SKIP()
        << "the ffmpeg program (Debian package ffmpeg, installed by tools/install_deps.sh) "
           "is needed to make the test video";
  const auto dir = std::filesystem::temp_directory_path() / "spool_ffmpeg_test";
  std::filesystem::create_directories(dir);
  const std::string mp4 = (dir / "bars.mp4").string();
  // 12 frames of FFmpeg's test pattern, 64 x 48, H.264 in MP4.
  const std::string cmd =
      "ffmpeg -y -loglevel error -f lavfi -i testsrc=size=64x48:rate=10 "
      "-frames:v 12 -pix_fmt yuv420p " +
      mp4;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  EXPECT_EQ(data::count_video_frames(mp4), 12);
  const auto frames = data::decode_video(mp4, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  ASSERT_EQ(frames.size(), 12u);
  EXPECT_EQ(frames[0].width, 64);
  EXPECT_EQ(frames[0].height, 48);
  // testsrc moves: the first and last frames differ.
  EXPECT_NE(frames[0].rgb, frames[11].rgb);
  // Through load_entry: 8 frames spread over the 12, resized.
  const Tensor t = data::load_entry({mp4, -1, 0, 1}, 0.5, 8, 32);
  EXPECT_EQ(t.shape(), (Shape{8, 3, 32, 32}));
  const std::string bad = (dir / "bad.mp4").string();
  std::ofstream(bad) << "this is not a video at all";
  try {
    data::decode_video(bad, {0});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
}
