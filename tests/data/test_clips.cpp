#include <gtest/gtest.h>

#include "data/clips.h"
#include "engine/error.h"

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

}  // namespace
}  // namespace spool::data
