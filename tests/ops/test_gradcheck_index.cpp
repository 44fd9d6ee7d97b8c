// Indexing ops' backward formulas agree with finite differences, repeated indices included.
#include <gtest/gtest.h>

#include "ops/ops.h"
#include "tests/ops/gradcheck_inputs.h"

namespace spool {
namespace {

using namespace spool::test;

TEST(GradcheckIndex, IndexSelectRowsWithARepeat) {
  Tensor x = normal_leaf({4, 3}, 1);
  Tensor idx = indices({2, 0, 2}, {3});
  EXPECT_EQ(gradcheck([idx](const Tensors& in) { return index_select(in[0], 0, idx); }, {x}), "");
}

TEST(GradcheckIndex, IndexSelectAlongAMiddleDim) {
  Tensor x = normal_leaf({2, 4, 3}, 2);
  Tensor idx = indices({3, 1, 1, 0}, {4});
  EXPECT_EQ(gradcheck([idx](const Tensors& in) { return index_select(in[0], 1, idx); }, {x}), "");
}

TEST(GradcheckIndex, IndexSelectOfATransposedLeaf) {
  Tensor x = transposed_leaf(4, 3, 3);
  Tensor idx = indices({1, 1, 0}, {3});
  EXPECT_EQ(gradcheck([idx](const Tensors& in) { return index_select(in[0], -1, idx); }, {x}), "");
}

TEST(GradcheckIndex, EmbeddingWithRepeatedIndices) {
  Tensor w = normal_leaf({5, 3}, 4);
  Tensor idx = indices({4, 0, 4, 1, 1, 1}, {2, 3});
  EXPECT_EQ(gradcheck([idx](const Tensors& in) { return embedding(in[0], idx); }, {w}), "");
}

TEST(GradcheckIndex, EmbeddingOfATransposedTable) {
  Tensor w = transposed_leaf(5, 2, 5);
  Tensor idx = indices({3, 0, 3}, {3});
  EXPECT_EQ(gradcheck([idx](const Tensors& in) { return embedding(in[0], idx); }, {w}), "");
}

TEST(GradcheckIndex, GatherAlongDimOne) {
  Tensor x = normal_leaf({3, 4}, 6);
  Tensor idx = indices({0, 3, 3, 1, 2, 2, 0, 1}, {2, 4});  // fewer rows than x
  EXPECT_EQ(gradcheck([idx](const Tensors& in) { return gather(in[0], 1, idx); }, {x}), "");
}

TEST(GradcheckIndex, GatherAlongDimZero) {
  Tensor x = normal_leaf({3, 2}, 7);
  Tensor idx = indices({2, 0, 2, 2, 1, 0, 0, 1}, {4, 2});  // more rows than x
  EXPECT_EQ(gradcheck([idx](const Tensors& in) { return gather(in[0], 0, idx); }, {x}), "");
}

TEST(GradcheckIndex, GatherOfATransposedLeaf) {
  Tensor x = transposed_leaf(3, 4, 8);
  Tensor idx = indices({1, 1, 0, 3, 2, 0}, {3, 2});
  EXPECT_EQ(gradcheck([idx](const Tensors& in) { return gather(in[0], 1, idx); }, {x}), "");
}

TEST(GradcheckIndex, ScatterAddIntoBothInputsWithRepeats) {
  Tensor x = normal_leaf({2, 4}, 9), src = normal_leaf({2, 3}, 10);
  Tensor idx = indices({1, 1, 3, 0, 2, 0}, {2, 3});
  EXPECT_EQ(
      gradcheck([idx](const Tensors& in) { return scatter_add(in[0], 1, idx, in[1]); }, {x, src}),
      "");
}

TEST(GradcheckIndex, ScatterAddAlongDimZero) {
  Tensor x = normal_leaf({3, 2}, 11), src = normal_leaf({4, 2}, 12);
  Tensor idx = indices({0, 2, 2, 2, 1, 0, 0, 1}, {4, 2});
  EXPECT_EQ(
      gradcheck([idx](const Tensors& in) { return scatter_add(in[0], 0, idx, in[1]); }, {x, src}),
      "");
}

TEST(GradcheckIndex, ScatterAddWithANonLinearSource) {
  Tensor x = normal_leaf({2, 3}, 13), src = normal_leaf({2, 2}, 14);
  Tensor idx = indices({2, 2, 0, 1}, {2, 2});
  EXPECT_EQ(
      gradcheck(
          [idx](const Tensors& in) { return scatter_add(in[0] * in[0], 1, idx, tanh(in[1])); },
          {x, src}),
      "");
}

}  // namespace
}  // namespace spool
