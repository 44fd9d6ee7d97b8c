#include <gtest/gtest.h>

#include <algorithm>

#include "data/clips.h"
#include "engine/error.h"
#include "engine/factory.h"

namespace spool::data {
namespace {

TEST(ClipScores, CountTopOnePairDirectionAndPerClassFromTheConfusion) {
  // Class 0: 3 right, 1 taken for its mirror (class 1); class 1: 2 right; class 2: 1 taken for
  // class 3 (its pair, the wrong direction); class 3: 1 taken for class 0 (another pair).
  const ClipScores s =
      score_clips({{{0, 0}, 3}, {{0, 1}, 1}, {{1, 1}, 2}, {{2, 3}, 1}, {{3, 0}, 1}}, 4);
  EXPECT_EQ(s.clips, 8);
  EXPECT_DOUBLE_EQ(s.top1, 5.0 / 8.0);
  EXPECT_DOUBLE_EQ(s.pair_acc, 7.0 / 8.0);       // all but (3 -> 0) land in the right pair
  EXPECT_DOUBLE_EQ(s.direction_acc, 5.0 / 7.0);  // of those, 5 have the direction right
  ASSERT_EQ(s.per_class.size(), 4u);
  EXPECT_DOUBLE_EQ(s.per_class[0], 0.75);
  EXPECT_DOUBLE_EQ(s.per_class[1], 1.0);
  EXPECT_DOUBLE_EQ(s.per_class[2], 0.0);
  EXPECT_DOUBLE_EQ(s.per_class[3], 0.0);
}

TEST(ClipScores, MotionOnlyAccuracyCountsTheClipsOfTheMotionOnlyClassesAlone) {
  // Classes 2 and 3 are motion-only: 2 right of 3 among their clips; class 0's clips do not count.
  const ClipScores s = score_clips({{{0, 0}, 5}, {{2, 2}, 1}, {{2, 3}, 1}, {{3, 3}, 1}}, 4, 2);
  EXPECT_EQ(s.motion_only_clips, 3);
  EXPECT_DOUBLE_EQ(s.motion_only_acc, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.top1, 7.0 / 8.0);
  const ClipScores none = score_clips({{{0, 0}, 5}, {{2, 2}, 1}}, 4);
  EXPECT_EQ(none.motion_only_clips, 0);
  EXPECT_EQ(none.motion_only_acc, 0.0);
}

TEST(ClipScores, AnEmptyTestScoresZeroAndACellOutsideTheClassesIsRefused) {
  const ClipScores empty = score_clips({}, 10);
  EXPECT_EQ(empty.clips, 0);
  EXPECT_EQ(empty.top1, 0.0);
  EXPECT_EQ(empty.direction_acc, 0.0);
  EXPECT_EQ(empty.per_class, std::vector<double>(10, 0.0));
  try {
    score_clips({{{0, 12}, 1}}, 10);
    FAIL() << "a predicted class 12 of 10 was scored";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("(0, 12)"), std::string::npos) << e.what();
  }
}

TEST(ClipBatches, AreAFunctionOfTheirDrawsAlone) {
  ViewSpec v;
  v.size = v.load_size = 32;
  SyntheticSource source(3, 4, v);
  const RngState r{11, 0};
  const ClipBatch a = train_batch(source, v, 3, r), b = train_batch(source, v, 3, r);
  ASSERT_EQ(a.x.shape(), (Shape{3, kClipSegments, 3, 32, 32}));
  EXPECT_EQ(a.labels.to_vector<int64_t>(), b.labels.to_vector<int64_t>());
  EXPECT_EQ(a.x.to_vector<float>(), b.x.to_vector<float>());
  const ClipBatch other = train_batch(source, v, 3, RngState{12, 0});
  EXPECT_NE(a.x.to_vector<float>(), other.x.to_vector<float>());
}

// The object boxes follow the view: a bright rectangle's box, flipped and cropped by
// finish_view, is the box of the bright pixels of the view it makes (an integral crop of the
// output size copies pixels, so the bright pixels are exact); a crop at half scale maps the box
// linearly, worked by hand.
TEST(ClipBatches, ObjectBoxesFollowTheFlipAndTheCrop) {
  ViewSpec v;
  v.load_size = 16;
  v.size = 12;
  v.crop = true;
  std::vector<float> px(size_t(2 * 3 * 16 * 16), 0.0f);
  for (int64_t k = 0; k < 2; ++k)
    for (int64_t ch = 0; ch < 3; ++ch)
      for (int64_t y = 4 + k; y < 10 + k; ++y)  // frame k: x in [5, 9), y in [4 + k, 10 + k)
        for (int64_t x = 5; x < 9; ++x) px[size_t(((k * 3 + ch) * 16 + y) * 16 + x)] = 1.0f;
  const Tensor frames = from_vector(px, {2, 3, 16, 16});
  const Tensor boxes = from_vector(std::vector<float>{5, 4, 9, 10, 5, 5, 9, 11}, {2, 4});
  for (bool flip : {false, true}) {
    SCOPED_TRACE(flip ? "flipped" : "not flipped");
    const CropBox crop{3, 2, 12, 12};
    Tensor b = boxes;
    const Tensor view = finish_view(frames, v, flip, &crop, &b);
    ASSERT_EQ(view.shape(), (Shape{2, 3, 12, 12}));
    ASSERT_EQ(b.shape(), (Shape{2, 4}));
    const auto got = b.to_vector<float>(), x = view.to_vector<float>();
    for (int64_t k = 0; k < 2; ++k) {
      float x1 = 99, y1 = 99, x2 = -1, y2 = -1;
      for (int64_t yy = 0; yy < 12; ++yy)
        for (int64_t xx = 0; xx < 12; ++xx)
          if (x[size_t((k * 3 * 12 + yy) * 12 + xx)] > 0.5f) {
            x1 = std::min(x1, float(xx));
            y1 = std::min(y1, float(yy));
            x2 = std::max(x2, float(xx + 1));
            y2 = std::max(y2, float(yy + 1));
          }
      EXPECT_EQ(std::vector<float>(got.begin() + 4 * k, got.begin() + 4 * k + 4),
                (std::vector<float>{x1, y1, x2, y2}))
          << "frame " << k;
    }
  }
  // Flipped (x in [7, 11)) and cropped from (2, 2) with side 14 onto 7 pixels: half scale.
  v.size = 7;
  const CropBox half{2, 2, 14, 14};
  Tensor b = boxes;
  finish_view(frames, v, true, &half, &b);
  EXPECT_EQ(b.to_vector<float>(), (std::vector<float>{2.5, 1, 4.5, 4, 2.5, 1.5, 4.5, 4.5}));
  // A box the crop leaves out entirely is clipped to zero area at the crop's edge.
  const CropBox corner{10, 10, 6, 6};
  v.size = 6;
  b = boxes;
  finish_view(frames, v, false, &corner, &b);
  EXPECT_EQ(b.to_vector<float>(), (std::vector<float>{0, 0, 0, 0, 0, 0, 0, 1}));
}

// Generated clips carry their boxes into the batch ([N, K, 4], inside the view); views of
// several frames a segment (RGB differences) do not, since no one box stands for a snippet.
TEST(ClipBatches, GeneratedBatchesCarryObjectBoxesForOneFrameViews) {
  ViewSpec v;
  v.size = 28;
  v.load_size = 32;
  v.crop = true;
  SyntheticSource source(3, 4, v);
  const ClipBatch a = train_batch(source, v, 3, RngState{11, 0});
  ASSERT_EQ(a.boxes.shape(), (Shape{3, kClipSegments, 4}));
  for (size_t i = 0; i < a.boxes.to_vector<float>().size(); i += 4) {
    const auto b = a.boxes.to_vector<float>();
    EXPECT_GE(b[i], 0.0f);
    EXPECT_LE(b[i], b[i + 2]);
    EXPECT_LE(b[i + 2], 28.0f);
    EXPECT_LE(b[i + 1], b[i + 3]);
  }
  ViewSpec diff = v;
  diff.length = 5;
  SyntheticSource snippets(3, 4, diff);
  EXPECT_FALSE(train_batch(snippets, diff, 2, RngState{11, 0}).boxes.defined());
}

}  // namespace
}  // namespace spool::data
