// Reductions' backward formulas agree with finite differences.
#include <gtest/gtest.h>

#include "ops/ops.h"
#include "tests/ops/gradcheck_inputs.h"

namespace spool {
namespace {

using namespace spool::test;

TEST(GradcheckReduce, SumOfEverything) {
  Tensor x = normal_leaf({2, 3, 4}, 1);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return sum(in[0]); }, {x}), "");
}

TEST(GradcheckReduce, SumOverOneDim) {
  Tensor x = normal_leaf({2, 3, 4}, 2);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return sum(in[0], {1}); }, {x}), "");
}

TEST(GradcheckReduce, SumOverOneDimWithKeepdim) {
  Tensor x = normal_leaf({2, 3, 4}, 3);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return sum(in[0], {1}, true); }, {x}), "");
}

TEST(GradcheckReduce, SumOverTwoDimsWithAndWithoutKeepdim) {
  Tensor x = normal_leaf({2, 3, 4}, 4);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return sum(in[0], {0, 2}); }, {x}), "");
  EXPECT_EQ(gradcheck([](const Tensors& in) { return sum(in[0], {2, 0}, true); }, {x}), "");
}

TEST(GradcheckReduce, SumOverANegativeDimOfATransposedLeaf) {
  Tensor x = transposed_leaf(3, 4, 5);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return sum(in[0], {-1}); }, {x}), "");
}

TEST(GradcheckReduce, MeanOfEverything) {
  Tensor x = normal_leaf({3, 4}, 6);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return mean(in[0]); }, {x}), "");
}

TEST(GradcheckReduce, MeanOverOneDimWithAndWithoutKeepdim) {
  Tensor x = normal_leaf({2, 3, 4}, 7);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return mean(in[0], {1}); }, {x}), "");
  EXPECT_EQ(gradcheck([](const Tensors& in) { return mean(in[0], {-1}, true); }, {x}), "");
}

TEST(GradcheckReduce, MeanOverTwoDimsOfAStridedLeaf) {
  Tensor x = strided_leaf({2, 3, 2}, 8);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return mean(in[0], {0, 2}); }, {x}), "");
}

TEST(GradcheckReduce, MaxOfEverythingWithDistinctValues) {
  Tensor x = distinct_leaf({3, 4}, 9);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return max(in[0]); }, {x}), "");
}

TEST(GradcheckReduce, MaxOverOneDimWithAndWithoutKeepdim) {
  Tensor x = distinct_leaf({2, 3, 4}, 10);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return max(in[0], {1}); }, {x}), "");
  EXPECT_EQ(gradcheck([](const Tensors& in) { return max(in[0], {2}, true); }, {x}), "");
}

TEST(GradcheckReduce, MaxOverTwoDims) {
  Tensor x = distinct_leaf({2, 3, 4}, 11);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return max(in[0], {0, 2}); }, {x}), "");
}

TEST(GradcheckReduce, MaxOfATransposedLeaf) {
  Tensor x = as_leaf(permute(distinct_leaf({4, 3}, 12).detach(), {1, 0}));
  ASSERT_FALSE(x.is_contiguous());
  EXPECT_EQ(gradcheck([](const Tensors& in) { return max(in[0], {1}); }, {x}), "");
}

TEST(GradcheckReduce, MinOfEverythingWithDistinctValues) {
  Tensor x = distinct_leaf({3, 4}, 13);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return min(in[0]); }, {x}), "");
}

TEST(GradcheckReduce, MinOverOneDimWithAndWithoutKeepdim) {
  Tensor x = distinct_leaf({2, 3, 4}, 14);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return min(in[0], {0}); }, {x}), "");
  EXPECT_EQ(gradcheck([](const Tensors& in) { return min(in[0], {-2}, true); }, {x}), "");
}

TEST(GradcheckReduce, MinOverTwoDims) {
  Tensor x = distinct_leaf({2, 3, 4}, 15);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return min(in[0], {1, 2}, true); }, {x}), "");
}

TEST(GradcheckReduce, VarOfEverything) {
  Tensor x = normal_leaf({3, 4}, 16);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return var(in[0]); }, {x}), "");
}

TEST(GradcheckReduce, VarOverOneDimWithKeepdim) {
  Tensor x = normal_leaf({2, 3, 4}, 17);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return var(in[0], {1}, 1, true); }, {x}), "");
}

TEST(GradcheckReduce, VarWithoutCorrectionOverTwoDims) {
  Tensor x = normal_leaf({2, 3, 4}, 18);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return var(in[0], {0, 2}, 0); }, {x}), "");
}

TEST(GradcheckReduce, VarOfATransposedLeaf) {
  Tensor x = transposed_leaf(3, 4, 19);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return var(in[0], {-1}); }, {x}), "");
}

}  // namespace
}  // namespace spool
