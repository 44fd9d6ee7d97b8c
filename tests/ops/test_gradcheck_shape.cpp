// Shape ops' backward formulas agree with finite differences.
#include <gtest/gtest.h>

#include "ops/ops.h"
#include "tests/ops/gradcheck_inputs.h"

namespace spool {
namespace {

using namespace spool::test;

TEST(GradcheckShape, ReshapeOfAContiguousLeaf) {
  Tensor x = normal_leaf({2, 3, 2}, 1);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return reshape(in[0], {3, -1}); }, {x}), "");
}

TEST(GradcheckShape, ReshapeOfATransposedLeafCopies) {
  Tensor x = transposed_leaf(3, 4, 2);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return reshape(in[0], {2, 6}); }, {x}), "");
}

TEST(GradcheckShape, Permute) {
  Tensor x = normal_leaf({2, 3, 4}, 3);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return permute(in[0], {2, 0, 1}); }, {x}), "");
}

TEST(GradcheckShape, PermuteOfAStridedLeaf) {
  Tensor x = strided_leaf({2, 3}, 4);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return permute(in[0], {1, 0}) * 2.0; }, {x}), "");
}

TEST(GradcheckShape, Transpose) {
  Tensor x = normal_leaf({2, 3, 4}, 5);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return transpose(in[0], 0, -1); }, {x}), "");
}

TEST(GradcheckShape, Narrow) {
  Tensor x = normal_leaf({3, 5}, 6);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return narrow(in[0], 1, 1, 3); }, {x}), "");
}

TEST(GradcheckShape, NarrowOfATransposedLeaf) {
  Tensor x = transposed_leaf(4, 3, 7);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return narrow(in[0], 0, 1, 2); }, {x}), "");
}

TEST(GradcheckShape, SliceWithAStep) {
  Tensor x = normal_leaf({3, 7}, 8);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return slice(in[0], 1, 1, 7, 2); }, {x}), "");
}

TEST(GradcheckShape, SliceWithNegativeBounds) {
  Tensor x = normal_leaf({6, 2}, 9);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return slice(in[0], 0, -4, -1); }, {x}), "");
}

TEST(GradcheckShape, SliceOfASlice) {
  Tensor x = normal_leaf({10}, 10);
  EXPECT_EQ(
      gradcheck([](const Tensors& in) { return slice(slice(in[0], 0, 1, 10, 2), 0, 1, 5, 2); },
                {x}),
      "");
}

TEST(GradcheckShape, Expand) {
  Tensor x = normal_leaf({3, 1}, 11);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return expand(in[0], {2, 3, 4}); }, {x}), "");
}

TEST(GradcheckShape, ExpandKeepingASizeWithMinusOne) {
  Tensor x = normal_leaf({1, 3}, 12);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return expand(in[0], {4, -1}); }, {x}), "");
}

TEST(GradcheckShape, SqueezeEverySizeOneDim) {
  Tensor x = normal_leaf({1, 3, 1, 2}, 13);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return squeeze(in[0]); }, {x}), "");
}

TEST(GradcheckShape, SqueezeOneDim) {
  Tensor x = normal_leaf({3, 1, 2}, 14);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return squeeze(in[0], 1); }, {x}), "");
}

TEST(GradcheckShape, Unsqueeze) {
  Tensor x = normal_leaf({3, 2}, 15);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return unsqueeze(in[0], -1); }, {x}), "");
  EXPECT_EQ(gradcheck([](const Tensors& in) { return unsqueeze(in[0], 0); }, {x}), "");
}

TEST(GradcheckShape, UnsqueezeOfATransposedLeaf) {
  Tensor x = transposed_leaf(3, 2, 16);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return unsqueeze(in[0], 1); }, {x}), "");
}

TEST(GradcheckShape, Flatten) {
  Tensor x = normal_leaf({2, 3, 2}, 17);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return flatten(in[0]); }, {x}), "");
  EXPECT_EQ(gradcheck([](const Tensors& in) { return flatten(in[0], 1); }, {x}), "");
}

TEST(GradcheckShape, FlattenOfAPermutedLeaf) {
  Tensor x = as_leaf(permute(normal_leaf({2, 3, 2}, 18).detach(), {2, 0, 1}));
  EXPECT_EQ(gradcheck([](const Tensors& in) { return flatten(in[0], 0, 1); }, {x}), "");
}

TEST(GradcheckShape, ContiguousOfATransposedLeaf) {
  Tensor x = transposed_leaf(3, 4, 19);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return contiguous(in[0]); }, {x}), "");
}

TEST(GradcheckShape, CatAlongTheFirstDim) {
  Tensor a = normal_leaf({1, 3}, 20), b = normal_leaf({2, 3}, 21), c = normal_leaf({3, 3}, 22);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return cat(in, 0); }, {a, b, c}), "");
}

TEST(GradcheckShape, CatAlongTheLastDimOfNonContiguousLeaves) {
  Tensor a = transposed_leaf(3, 2, 23), b = strided_leaf({3, 1}, 24), c = normal_leaf({3, 2}, 25);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return cat(in, -1); }, {a, b, c}), "");
}

TEST(GradcheckShape, CatWithAnInputThatNeedsNoGrad) {
  Tensor a = normal_leaf({2, 2}, 26);
  Tensor fixed = ones({1, 2}, DType::f64);
  EXPECT_EQ(gradcheck([fixed](const Tensors& in) { return cat({fixed, in[0]}, 0); }, {a}), "");
}

TEST(GradcheckShape, Stack) {
  Tensor a = normal_leaf({2, 3}, 27), b = normal_leaf({2, 3}, 28);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return stack(in, 0); }, {a, b}), "");
  EXPECT_EQ(gradcheck([](const Tensors& in) { return stack(in, 2); }, {a, b}), "");
}

TEST(GradcheckShape, SplitIntoPiecesOfUnequalSize) {
  Tensor x = normal_leaf({2, 5}, 29);
  EXPECT_EQ(gradcheck(
                [](const Tensors& in) {
                  Tensors p = split(in[0], 2, 1);  // sizes 2, 2, 1
                  return cat({p[2] * 3.0, p[0], p[1] * p[1]}, 1);
                },
                {x}),
            "");
}

TEST(GradcheckShape, Chunk) {
  Tensor x = normal_leaf({6, 2}, 30);
  EXPECT_EQ(gradcheck(
                [](const Tensors& in) {
                  Tensors p = chunk(in[0], 3, 0);  // three [2, 2] pieces
                  return p[0] * p[1] + p[2];
                },
                {x}),
            "");
}

}  // namespace
}  // namespace spool
