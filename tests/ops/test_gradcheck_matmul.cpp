// matmul's and linear's backward formulas agree with finite differences, for every operand rank
// and batch broadcast.
#include <gtest/gtest.h>

#include "ops/ops.h"
#include "tests/ops/gradcheck_inputs.h"

namespace spool {
namespace {

using namespace spool::test;

std::string check_matmul(const Tensor& a, const Tensor& b) {
  return gradcheck([](const Tensors& in) { return matmul(in[0], in[1]); }, {a, b});
}

TEST(GradcheckMatmul, TwoDimensional) {
  EXPECT_EQ(check_matmul(normal_leaf({3, 4}, 1), normal_leaf({4, 2}, 2)), "");
}

TEST(GradcheckMatmul, TwoDimensionalOfTransposedLeaves) {
  Tensor a = transposed_leaf(3, 4, 3), b = transposed_leaf(4, 2, 4);
  ASSERT_FALSE(a.is_contiguous());
  ASSERT_FALSE(b.is_contiguous());
  EXPECT_EQ(check_matmul(a, b), "");
}

TEST(GradcheckMatmul, TwoDimensionalOfAStridedLeaf) {
  // Column stride 2: BLAS cannot describe it directly.
  Tensor a = strided_leaf({3, 4}, 5), b = normal_leaf({4, 2}, 6);
  EXPECT_EQ(check_matmul(a, b), "");
}

TEST(GradcheckMatmul, Batched) {
  EXPECT_EQ(check_matmul(normal_leaf({2, 3, 4}, 7), normal_leaf({2, 4, 2}, 8)), "");
}

TEST(GradcheckMatmul, BatchDimsBroadcast) {
  // Batch [2, 1] against [3]: [2, 3].
  EXPECT_EQ(check_matmul(normal_leaf({2, 1, 2, 3}, 9), normal_leaf({3, 3, 2}, 10)), "");
}

TEST(GradcheckMatmul, BatchedTimesAMatrix) {
  EXPECT_EQ(check_matmul(normal_leaf({2, 3, 4}, 11), normal_leaf({4, 2}, 12)), "");
}

TEST(GradcheckMatmul, NonContiguousBatchedTimesAMatrix) {
  Tensor a = as_leaf(permute(normal_leaf({3, 2, 4}, 13).detach(), {1, 0, 2}));  // [2, 3, 4]
  ASSERT_FALSE(a.is_contiguous());
  EXPECT_EQ(check_matmul(a, normal_leaf({4, 2}, 14)), "");
}

TEST(GradcheckMatmul, MatrixTimesBatched) {
  EXPECT_EQ(check_matmul(normal_leaf({3, 4}, 15), normal_leaf({2, 4, 2}, 16)), "");
}

TEST(GradcheckMatmul, VectorDotVector) {
  EXPECT_EQ(check_matmul(normal_leaf({4}, 17), normal_leaf({4}, 18)), "");
}

TEST(GradcheckMatmul, VectorTimesMatrix) {
  EXPECT_EQ(check_matmul(normal_leaf({4}, 19), normal_leaf({4, 3}, 20)), "");
}

TEST(GradcheckMatmul, MatrixTimesVector) {
  EXPECT_EQ(check_matmul(normal_leaf({3, 4}, 21), normal_leaf({4}, 22)), "");
}

TEST(GradcheckMatmul, VectorTimesBatched) {
  EXPECT_EQ(check_matmul(normal_leaf({4}, 23), normal_leaf({2, 4, 3}, 24)), "");
}

TEST(GradcheckMatmul, BatchedTimesVector) {
  EXPECT_EQ(check_matmul(normal_leaf({2, 3, 4}, 25), normal_leaf({4}, 26)), "");
}

TEST(GradcheckMatmul, LinearWithBias) {
  Tensor x = normal_leaf({3, 4}, 27), w = normal_leaf({2, 4}, 28), b = normal_leaf({2}, 29);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return linear(in[0], in[1], in[2]); }, {x, w, b}),
            "");
}

TEST(GradcheckMatmul, LinearWithoutBias) {
  Tensor x = normal_leaf({3, 4}, 30), w = normal_leaf({2, 4}, 31);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return linear(in[0], in[1]); }, {x, w}), "");
}

TEST(GradcheckMatmul, LinearOfABatchOfSequences) {
  Tensor x = normal_leaf({2, 3, 4}, 32), w = normal_leaf({5, 4}, 33), b = normal_leaf({5}, 34);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return linear(in[0], in[1], in[2]); }, {x, w, b}),
            "");
}

TEST(GradcheckMatmul, LinearOfAVector) {
  Tensor x = normal_leaf({4}, 35), w = normal_leaf({3, 4}, 36), b = normal_leaf({3}, 37);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return linear(in[0], in[1], in[2]); }, {x, w, b}),
            "");
}

}  // namespace
}  // namespace spool
