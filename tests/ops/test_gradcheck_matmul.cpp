// matmul's and linear's backward formulas agree with finite differences, for every operand rank
// and batch broadcast.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ops/ops.h"
#include "tests/ops/gradcheck_inputs.h"
#include "tests/support/helpers.h"

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

// gelu_matmul: matmul(gelu(x), w) whose backward recomputes gelu(x); batched and 2-D x, both
// GELU forms; and its values and gradients equal the unfused ops' bit for bit.
TEST(GradcheckMatmul, GeluMatmulRecomputesTheGelu) {
  for (GeluApprox approx : {GeluApprox::none, GeluApprox::tanh}) {
    auto fn = [approx](const Tensors& in) { return gelu_matmul(in[0], in[1], approx); };
    EXPECT_EQ(gradcheck(fn, {uniform_leaf({2, 3, 4}, 11, -3, 3), normal_leaf({4, 5}, 12)}), "");
    EXPECT_EQ(gradcheck(fn, {uniform_leaf({3, 4}, 13, -3, 3), normal_leaf({4, 2}, 14)}), "");
  }
  Generator g(15);
  Tensor x = randn({2, 5, 8}, DType::f32, &g).requires_grad_();
  Tensor w = randn({8, 6}, DType::f32, &g).requires_grad_();
  Tensor fused = gelu_matmul(x, w, GeluApprox::tanh);
  Tensor up = randn({2, 5, 6}, DType::f32, &g);
  backward(sum(fused * up));
  const auto gx = x.grad().to_vector<float>(), gw = w.grad().to_vector<float>();
  x.set_grad({}), w.set_grad({});
  Tensor plain = matmul(gelu(x, GeluApprox::tanh), w);
  backward(sum(plain * up));
  EXPECT_EQ(fused.to_vector<float>(), plain.to_vector<float>());
  EXPECT_EQ(gx, x.grad().to_vector<float>());
  EXPECT_EQ(gw, w.grad().to_vector<float>());
  EXPECT_THAT(test_support::error_of([&] {
                gelu_matmul(x, randn({7, 6}, DType::f32, &g));
              }),
              ::testing::HasSubstr("x's last dimension must equal w's first"));
  EXPECT_THAT(test_support::error_of([&] { gelu_matmul(randn({8}, DType::f32, &g), w); }),
              ::testing::HasSubstr("need w [in, out] and x [..., rows, in]"));
}

}  // namespace
}  // namespace spool
