// Elementwise ops' backward formulas agree with finite differences.
#include <gtest/gtest.h>

#include <limits>

#include "ops/ops.h"
#include "tests/ops/gradcheck_inputs.h"

namespace spool {
namespace {

using namespace spool::test;

// ---- binary arithmetic ----------------------------------------------------------------------

TEST(GradcheckElementwise, AddOfSameShapes) {
  Tensor a = normal_leaf({2, 3}, 1), b = normal_leaf({2, 3}, 2);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return add(in[0], in[1]); }, {a, b}), "");
}

TEST(GradcheckElementwise, AddBroadcastsBothOperands) {
  Tensor a = normal_leaf({3, 1, 4}, 3), b = normal_leaf({2, 4}, 4);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return add(in[0], in[1]); }, {a, b}), "");
}

TEST(GradcheckElementwise, AddOfAZeroDimTensorBroadcastsIt) {
  Tensor a = normal_leaf({2, 3}, 5), s = leaf({0.7}, {});
  EXPECT_EQ(gradcheck([](const Tensors& in) { return add(in[0], in[1]); }, {a, s}), "");
}

TEST(GradcheckElementwise, AddOfNonContiguousLeaves) {
  Tensor a = transposed_leaf(3, 4, 6), b = strided_leaf({3, 4}, 7);
  ASSERT_FALSE(a.is_contiguous());
  ASSERT_FALSE(b.is_contiguous());
  EXPECT_EQ(gradcheck([](const Tensors& in) { return add(in[0], in[1]); }, {a, b}), "");
}

TEST(GradcheckElementwise, AddOfADoubleScalar) {
  Tensor a = normal_leaf({4}, 8);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return add(in[0], 2.5); }, {a}), "");
}

TEST(GradcheckElementwise, AddWithOnlyOneInputRequiringGrad) {
  Tensor a = normal_leaf({2, 3}, 9);
  Tensor c = from_vector<double>({1, 2, 3}, {3});
  EXPECT_EQ(gradcheck([c](const Tensors& in) { return add(c, in[0]); }, {a}), "");
}

TEST(GradcheckElementwise, SubOfSameShapes) {
  Tensor a = normal_leaf({2, 3}, 10), b = normal_leaf({2, 3}, 11);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return sub(in[0], in[1]); }, {a, b}), "");
}

TEST(GradcheckElementwise, SubBroadcastsARowAgainstATable) {
  Tensor a = normal_leaf({3}, 12), b = normal_leaf({2, 3}, 13);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return sub(in[0], in[1]); }, {a, b}), "");
}

TEST(GradcheckElementwise, SubFromADoubleScalar) {
  Tensor a = normal_leaf({4}, 14);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return 1.0 - in[0]; }, {a}), "");
}

TEST(GradcheckElementwise, MulOfSameShapes) {
  Tensor a = normal_leaf({2, 3}, 15), b = normal_leaf({2, 3}, 16);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return mul(in[0], in[1]); }, {a, b}), "");
}

TEST(GradcheckElementwise, MulBroadcastsAVectorOverRows) {
  Tensor a = normal_leaf({4}, 17), b = normal_leaf({3, 4}, 18);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return mul(in[0], in[1]); }, {a, b}), "");
}

TEST(GradcheckElementwise, MulBroadcastsAColumnAgainstARow) {
  Tensor a = normal_leaf({3, 1}, 19), b = normal_leaf({1, 4}, 20);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return mul(in[0], in[1]); }, {a, b}), "");
}

TEST(GradcheckElementwise, MulOfATransposedLeafWithABroadcastOperand) {
  Tensor a = transposed_leaf(3, 4, 21), b = normal_leaf({4}, 22);
  ASSERT_FALSE(a.is_contiguous());
  EXPECT_EQ(gradcheck([](const Tensors& in) { return mul(in[0], in[1]); }, {a, b}), "");
}

TEST(GradcheckElementwise, MulOfAnInputWithItself) {
  Tensor a = normal_leaf({5}, 23);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return mul(in[0], in[0]); }, {a}), "");
}

TEST(GradcheckElementwise, DivOfSameShapes) {
  Tensor a = normal_leaf({2, 3}, 24), b = uniform_leaf({2, 3}, 25, 0.5, 2.0);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return div(in[0], in[1]); }, {a, b}), "");
}

TEST(GradcheckElementwise, DivBroadcastsTheDenominator) {
  Tensor a = normal_leaf({3, 1, 4}, 26), b = uniform_leaf({2, 4}, 27, 0.5, 2.0);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return div(in[0], in[1]); }, {a, b}), "");
}

TEST(GradcheckElementwise, DivOfADoubleByATensor) {
  Tensor b = uniform_leaf({4}, 28, 0.5, 2.0);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return 3.0 / in[0]; }, {b}), "");
}

TEST(GradcheckElementwise, DivOfAStridedLeaf) {
  Tensor a = strided_leaf({2, 3}, 29);
  Generator g(30);
  Tensor b = as_leaf(slice(rand({2, 6}, DType::f64, &g, 0.5, 2.0), 1, 1, 6, 2));
  ASSERT_FALSE(b.is_contiguous());
  EXPECT_EQ(gradcheck([](const Tensors& in) { return div(in[0], in[1]); }, {a, b}), "");
}

// ---- powers ---------------------------------------------------------------------------------

TEST(GradcheckElementwise, PowOfATensorToAFractionalScalar) {
  Tensor x = uniform_leaf({2, 3}, 30, 0.5, 2.0);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return pow(in[0], 2.5); }, {x}), "");
}

TEST(GradcheckElementwise, PowOfATensorToTheSquare) {
  Tensor x = normal_leaf({2, 3}, 31);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return pow(in[0], 2.0); }, {x}), "");
}

TEST(GradcheckElementwise, PowOfATensorToANegativeScalar) {
  Tensor x = uniform_leaf({4}, 32, 0.5, 2.0);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return pow(in[0], -1.5); }, {x}), "");
}

TEST(GradcheckElementwise, PowOfANegativeBaseToAnIntegerScalar) {
  Tensor x = uniform_leaf({4}, 33, -2.0, -0.5);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return pow(in[0], 3.0); }, {x}), "");
}

TEST(GradcheckElementwise, PowOfATensorToATensorWithPositiveBase) {
  Tensor a = uniform_leaf({2, 3}, 34, 0.5, 2.0), b = normal_leaf({2, 3}, 35);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return pow(in[0], in[1]); }, {a, b}), "");
}

TEST(GradcheckElementwise, PowOfATensorToATensorBroadcasts) {
  Tensor a = uniform_leaf({3, 1}, 36, 0.5, 2.0), b = normal_leaf({4}, 37);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return pow(in[0], in[1]); }, {a, b}), "");
}

// ---- unary math -----------------------------------------------------------------------------

TEST(GradcheckElementwise, Neg) {
  Tensor x = strided_leaf({2, 3}, 40);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return neg(in[0]); }, {x}), "");
}

TEST(GradcheckElementwise, Exp) {
  Tensor x = normal_leaf({2, 3}, 41);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return exp(in[0]); }, {x}), "");
}

TEST(GradcheckElementwise, ExpOfATransposedLeaf) {
  Tensor x = transposed_leaf(2, 3, 42);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return exp(in[0]); }, {x}), "");
}

TEST(GradcheckElementwise, LogOfPositiveInputs) {
  Tensor x = uniform_leaf({2, 3}, 43, 0.5, 3.0);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return log(in[0]); }, {x}), "");
}

TEST(GradcheckElementwise, SqrtOfPositiveInputs) {
  Tensor x = uniform_leaf({2, 3}, 44, 0.5, 3.0);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return sqrt(in[0]); }, {x}), "");
}

TEST(GradcheckElementwise, AbsAwayFromZero) {
  Tensor x = away_from_zero_leaf({2, 4}, 45);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return abs(in[0]); }, {x}), "");
}

TEST(GradcheckElementwise, Tanh) {
  Tensor x = normal_leaf({2, 3}, 46);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return tanh(in[0]); }, {x}), "");
}

TEST(GradcheckElementwise, Sigmoid) {
  Tensor x = normal_leaf({2, 3}, 47);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return sigmoid(in[0]); }, {x}), "");
}

TEST(GradcheckElementwise, LogSigmoid) {
  Tensor x = normal_leaf({2, 3}, 147);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return log_sigmoid(in[0] * 4.0); }, {x}), "");
}

TEST(GradcheckElementwise, ReluAwayFromZero) {
  Tensor x = away_from_zero_leaf({3, 4}, 48);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return relu(in[0]); }, {x}), "");
}

TEST(GradcheckElementwise, ReluOfATransposedLeafAwayFromZero) {
  Tensor x = as_leaf(permute(away_from_zero_leaf({4, 3}, 49).detach(), {1, 0}));
  ASSERT_FALSE(x.is_contiguous());
  EXPECT_EQ(gradcheck([](const Tensors& in) { return relu(in[0]); }, {x}), "");
}

TEST(GradcheckElementwise, GeluExact) {
  Tensor x = uniform_leaf({3, 4}, 50, -3, 3);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return gelu(in[0]); }, {x}), "");
}

TEST(GradcheckElementwise, GeluTanhApproximation) {
  Tensor x = uniform_leaf({3, 4}, 51, -3, 3);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return gelu(in[0], GeluApprox::tanh); }, {x}), "");
}

TEST(GradcheckElementwise, ClampAwayFromItsBounds) {
  // Below, inside and above [-0.5, 0.5], each at least 0.05 from a bound.
  Tensor x = leaf({-1.3, -0.7, -0.45, -0.2, 0.1, 0.3, 0.45, 0.8, 1.7}, {3, 3});
  EXPECT_EQ(gradcheck([](const Tensors& in) { return clamp(in[0], -0.5, 0.5); }, {x}), "");
}

TEST(GradcheckElementwise, OneSidedClampWithAnInfiniteBound) {
  Tensor x = leaf({-1.3, -0.2, 0.3, 1.7}, {4});
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(gradcheck([inf](const Tensors& in) { return clamp(in[0], 0.0, inf); }, {x}), "");
  EXPECT_EQ(gradcheck([inf](const Tensors& in) { return clamp(in[0], -inf, 0.0); }, {x}), "");
}

// ---- selection ------------------------------------------------------------------------------

TEST(GradcheckElementwise, WhereOfSameShapes) {
  Tensor cond = gt(from_vector<double>({1, -1, 2, -2, 0.5, -0.5}, {2, 3}), 0.0);
  Tensor a = normal_leaf({2, 3}, 60), b = normal_leaf({2, 3}, 61);
  EXPECT_EQ(gradcheck([cond](const Tensors& in) { return where(cond, in[0], in[1]); }, {a, b}), "");
}

TEST(GradcheckElementwise, WhereBroadcastsConditionAndBranches) {
  Tensor cond = gt(from_vector<double>({1, -1, 2}, {3, 1}), 0.0);  // [3, 1]
  Tensor a = normal_leaf({4}, 62), b = normal_leaf({3, 4}, 63);
  EXPECT_EQ(gradcheck([cond](const Tensors& in) { return where(cond, in[0], in[1]); }, {a, b}), "");
}

TEST(GradcheckElementwise, MaskedFill) {
  Tensor mask = gt(from_vector<double>({1, -1, -2, 2}, {4}), 0.0);  // broadcast over rows
  Tensor x = normal_leaf({3, 4}, 64);
  EXPECT_EQ(gradcheck([mask](const Tensors& in) { return masked_fill(in[0], mask, -5.0); }, {x}),
            "");
}

// ---- conversion, copies, dropout ------------------------------------------------------------

TEST(GradcheckElementwise, ToF32AndBack) {
  // to() is linear, so a large step is exact; f32 rounding needs the looser tolerance.
  Tensor x = normal_leaf({2, 3}, 70);
  GradcheckOptions o;
  o.eps = 1e-2;
  o.atol = 1e-4;
  o.rtol = 1e-4;
  EXPECT_EQ(
      gradcheck([](const Tensors& in) { return to(to(in[0], DType::f32), DType::f64); }, {x}, o),
      "");
}

TEST(GradcheckElementwise, ToTheSameDtype) {
  Tensor x = normal_leaf({3}, 71);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return to(in[0], DType::f64) * 2.0; }, {x}), "");
}

TEST(GradcheckElementwise, CloneOfATransposedLeaf) {
  Tensor x = transposed_leaf(3, 2, 72);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return clone(in[0]); }, {x}), "");
}

TEST(GradcheckElementwise, DropoutWithAFixedGenerator) {
  Tensor x = normal_leaf({4, 5}, 73);
  EXPECT_EQ(gradcheck(
                [](const Tensors& in) {
                  Generator g(7);
                  return dropout(in[0], 0.3, true, &g);
                },
                {x}),
            "");
}

TEST(GradcheckElementwise, DropoutOfAStridedLeaf) {
  Tensor x = strided_leaf({3, 4}, 74);
  EXPECT_EQ(gradcheck(
                [](const Tensors& in) {
                  Generator g(7);
                  return dropout(in[0], 0.5, true, &g);
                },
                {x}),
            "");
}

TEST(GradcheckElementwise, AChainOfOps) {
  Tensor x = uniform_leaf({2, 3}, 75, 0.5, 2.0), w = normal_leaf({3}, 76);
  EXPECT_EQ(gradcheck(
                [](const Tensors& in) {
                  return tanh(log(in[0]) * in[1]) + sigmoid(in[0] - in[1]) / sqrt(in[0]);
                },
                {x, w}),
            "");
}

}  // namespace
}  // namespace spool
