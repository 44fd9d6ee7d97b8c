// Bad arguments throw spool::Error naming the op and the shapes or dtypes involved.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "ops/ops.h"
#include "tests/support/helpers.h"

using spool::test_support::error_of;

namespace spool {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

Tensor i64(const std::vector<int64_t>& v, const Shape& shape) { return from_vector(v, shape); }

TEST(Errors, MatmulInnerDimensionMismatchNamesBothShapes) {
  const std::string msg = error_of([] { matmul(zeros({8, 3}), zeros({4, 5})); });
  EXPECT_THAT(msg, AllOf(HasSubstr("matmul"), HasSubstr("[8, 3]"), HasSubstr("[4, 5]")));
}

TEST(Errors, MatmulOfTwoVectorsOfDifferentLength) {
  const std::string msg = error_of([] { matmul(zeros({3}), zeros({4})); });
  EXPECT_THAT(msg, AllOf(HasSubstr("matmul"), HasSubstr("[3]"), HasSubstr("[4]")));
}

TEST(Errors, MatmulBatchDimsThatDoNotBroadcast) {
  const std::string msg = error_of([] { matmul(zeros({2, 3, 4}), zeros({3, 4, 5})); });
  EXPECT_THAT(msg, AllOf(HasSubstr("matmul"), HasSubstr("[2]"), HasSubstr("[3]")));
}

TEST(Errors, MatmulOfIntegerTensors) {
  const std::string msg = error_of([] {
    matmul(zeros({2, 2}, DType::i64), zeros({2, 2}, DType::i64));
  });
  EXPECT_THAT(msg, AllOf(HasSubstr("matmul"), HasSubstr("i64")));
}

TEST(Errors, AddOfShapesThatDoNotBroadcast) {
  const std::string msg = error_of([] { add(zeros({2, 3}), zeros({4})); });
  EXPECT_THAT(
      msg, AllOf(HasSubstr("add"), HasSubstr("[2, 3]"), HasSubstr("[4]"), HasSubstr("broadcast")));
}

TEST(Errors, AddOfDifferentDtypes) {
  const std::string msg = error_of([] { add(zeros({2}, DType::f32), zeros({2}, DType::f64)); });
  EXPECT_THAT(msg, AllOf(HasSubstr("add"), HasSubstr("f32"), HasSubstr("f64")));
}

TEST(Errors, MulOfShapesThatDoNotBroadcastNamesMul) {
  const std::string msg = error_of([] { mul(zeros({3, 2}), zeros({3})); });
  EXPECT_THAT(msg, AllOf(HasSubstr("mul"), HasSubstr("[3, 2]"), HasSubstr("[3]")));
}

TEST(Errors, LinearWithMismatchedFeatures) {
  const std::string msg = error_of([] { linear(zeros({2, 3}), zeros({5, 4})); });
  EXPECT_THAT(msg, AllOf(HasSubstr("linear"), HasSubstr("[2, 3]"), HasSubstr("[5, 4]")));
}

TEST(Errors, EmbeddingWithFloatIndices) {
  const std::string msg = error_of([] { embedding(zeros({5, 3}), zeros({2}, DType::f32)); });
  EXPECT_THAT(msg, AllOf(HasSubstr("embedding"), HasSubstr("f32"), HasSubstr("i64")));
}

TEST(Errors, EmbeddingIndexOutOfRange) {
  const std::string msg = error_of([] { embedding(zeros({5, 3}), i64({1, 7, 2}, {3})); });
  EXPECT_THAT(msg, AllOf(HasSubstr("embedding"), HasSubstr("7"), HasSubstr("5")));
}

TEST(Errors, EmbeddingNegativeIndex) {
  const std::string msg = error_of([] { embedding(zeros({5, 3}), i64({0, -1}, {2})); });
  EXPECT_THAT(msg, AllOf(HasSubstr("embedding"), HasSubstr("-1")));
}

TEST(Errors, IndexSelectIndexOutOfRange) {
  const std::string msg = error_of([] { index_select(zeros({2, 3}), 1, i64({0, 3}, {2})); });
  EXPECT_THAT(msg, AllOf(HasSubstr("index_select"), HasSubstr("3")));
}

TEST(Errors, GatherIndexOutOfRange) {
  const std::string msg = error_of([] { gather(zeros({2, 3}), 1, i64({0, 1, 4, 0}, {2, 2})); });
  EXPECT_THAT(msg, AllOf(HasSubstr("gather"), HasSubstr("4"), HasSubstr("3")));
}

TEST(Errors, GatherWithAWrongNumberOfDims) {
  const std::string msg = error_of([] { gather(zeros({2, 3}), 1, i64({0, 1}, {2})); });
  EXPECT_THAT(msg, AllOf(HasSubstr("gather"), HasSubstr("[2]"), HasSubstr("[2, 3]")));
}

TEST(Errors, ScatterAddIndexOutOfRange) {
  const std::string msg = error_of([] {
    scatter_add(zeros({2, 3}), 1, i64({5, 0}, {1, 2}), zeros({1, 2}));
  });
  EXPECT_THAT(msg, AllOf(HasSubstr("scatter_add"), HasSubstr("5")));
}

TEST(Errors, CrossEntropyTargetOutOfRange) {
  const std::string msg = error_of([] { cross_entropy(zeros({2, 3}), i64({0, 3}, {2})); });
  EXPECT_THAT(msg,
              AllOf(HasSubstr("cross_entropy"), HasSubstr("target 3"), HasSubstr("3 classes")));
}

TEST(Errors, CrossEntropyNegativeTargetThatIsNotIgnored) {
  const std::string msg = error_of([] { cross_entropy(zeros({2, 3}), i64({-1, 0}, {2})); });
  EXPECT_THAT(msg, AllOf(HasSubstr("cross_entropy"), HasSubstr("-1")));
}

TEST(Errors, CrossEntropyWrongTargetDtype) {
  const std::string msg = error_of([] { cross_entropy(zeros({2, 3}), zeros({2}, DType::i32)); });
  EXPECT_THAT(msg, AllOf(HasSubstr("cross_entropy"), HasSubstr("i32"), HasSubstr("i64")));
}

TEST(Errors, CrossEntropyTargetsOfTheWrongShape) {
  const std::string msg = error_of([] { cross_entropy(zeros({2, 3}), i64({0, 1, 2}, {3})); });
  EXPECT_THAT(msg, AllOf(HasSubstr("cross_entropy"), HasSubstr("[2, 3]"), HasSubstr("[3]")));
}

TEST(Errors, NllLossTargetOutOfRange) {
  const std::string msg = error_of([] { nll_loss(zeros({2, 3}), i64({0, 9}, {2})); });
  EXPECT_THAT(msg, AllOf(HasSubstr("nll_loss"), HasSubstr("9")));
}

TEST(Errors, MseLossOfDifferentShapes) {
  const std::string msg = error_of([] { mse_loss(zeros({2, 3}), zeros({3, 2})); });
  EXPECT_THAT(msg, AllOf(HasSubstr("mse_loss"), HasSubstr("[2, 3]"), HasSubstr("[3, 2]")));
}

TEST(Errors, BackwardOnANonScalarWithoutAGradient) {
  Tensor x = ones({2, 3}, DType::f64);
  x.requires_grad_();
  Tensor y = x * 2.0;
  const std::string msg = error_of([&] { backward(y); });
  EXPECT_THAT(msg, AllOf(HasSubstr("backward"), HasSubstr("f64[2, 3]")));
}

TEST(Errors, BackwardWithAGradientOfTheWrongShape) {
  Tensor x = ones({2, 3}, DType::f64);
  x.requires_grad_();
  Tensor y = x * 2.0;
  const std::string msg = error_of([&] { backward(y, ones({3, 2}, DType::f64)); });
  EXPECT_THAT(msg, AllOf(HasSubstr("backward"), HasSubstr("[3, 2]"), HasSubstr("[2, 3]")));
}

TEST(Errors, ReshapeToTheWrongElementCount) {
  const std::string msg = error_of([] { reshape(zeros({2, 3}), {4, 2}); });
  EXPECT_THAT(msg, AllOf(HasSubstr("reshape"), HasSubstr("[2, 3]"), HasSubstr("[4, 2]")));
}

TEST(Errors, ReshapeWithAnImpossibleInferredSize) {
  const std::string msg = error_of([] { reshape(zeros({2, 3}), {4, -1}); });
  EXPECT_THAT(msg, AllOf(HasSubstr("reshape"), HasSubstr("[2, 3]"), HasSubstr("[4, -1]")));
}

TEST(Errors, CatWithMismatchedShapes) {
  const std::string msg = error_of([] { cat({zeros({2, 3}), zeros({2, 4})}, 0); });
  EXPECT_THAT(msg, AllOf(HasSubstr("cat"), HasSubstr("[2, 3]"), HasSubstr("[2, 4]")));
}

TEST(Errors, CatWithMismatchedDtypes) {
  const std::string msg = error_of([] { cat({zeros({2}), zeros({2}, DType::f64)}, 0); });
  EXPECT_THAT(msg, AllOf(HasSubstr("cat"), HasSubstr("f32"), HasSubstr("f64")));
}

TEST(Errors, StackWithMismatchedShapes) {
  const std::string msg = error_of([] { stack({zeros({2, 3}), zeros({3, 2})}, 0); });
  EXPECT_THAT(msg, AllOf(HasSubstr("stack"), HasSubstr("[2, 3]"), HasSubstr("[3, 2]")));
}

TEST(Errors, PermuteWithADuplicateDim) {
  const std::string msg = error_of([] { permute(zeros({2, 3, 4}), {0, 1, 0}); });
  EXPECT_THAT(msg, AllOf(HasSubstr("permute"), HasSubstr("twice"), HasSubstr("[2, 3, 4]")));
}

TEST(Errors, PermuteWithTheWrongNumberOfDims) {
  const std::string msg = error_of([] { permute(zeros({2, 3}), {0}); });
  EXPECT_THAT(msg, AllOf(HasSubstr("permute"), HasSubstr("[2, 3]")));
}

TEST(Errors, NarrowOutOfRange) {
  const std::string msg = error_of([] { narrow(zeros({3, 4}), 1, 2, 3); });
  EXPECT_THAT(msg, AllOf(HasSubstr("narrow"), HasSubstr("[3, 4]"), HasSubstr("size 4")));
}

TEST(Errors, DimOutOfRangeNamesTheOp) {
  const std::string msg = error_of([] { sum(zeros({2, 3}), {2}); });
  EXPECT_THAT(msg, AllOf(HasSubstr("sum"), HasSubstr("dim 2")));
}

TEST(Errors, ExpandOfANonSingletonDim) {
  const std::string msg = error_of([] { expand(zeros({2, 3}), {4, 3}); });
  EXPECT_THAT(msg, AllOf(HasSubstr("expand"), HasSubstr("[2, 3]"), HasSubstr("[4, 3]")));
}

TEST(Errors, SqueezeOfADimThatIsNotOne) {
  const std::string msg = error_of([] { squeeze(zeros({2, 3}), 1); });
  EXPECT_THAT(msg, AllOf(HasSubstr("squeeze"), HasSubstr("[2, 3]")));
}

TEST(Errors, LayerNormWithAWrongWeightShape) {
  const std::string msg = error_of([] { layer_norm(zeros({2, 3}), {3}, ones({4})); });
  EXPECT_THAT(
      msg, AllOf(HasSubstr("layer_norm"), HasSubstr("weight"), HasSubstr("[4]"), HasSubstr("[3]")));
}

TEST(Errors, LayerNormWithAWrongBiasDtype) {
  const std::string msg = error_of([] {
    layer_norm(zeros({2, 3}), {3}, ones({3}), zeros({3}, DType::f64));
  });
  EXPECT_THAT(msg, AllOf(HasSubstr("layer_norm"), HasSubstr("bias"), HasSubstr("f64")));
}

TEST(Errors, LayerNormOfAnInputNotEndingWithTheNormalizedShape) {
  const std::string msg = error_of([] { layer_norm(zeros({2, 3}), {2}); });
  EXPECT_THAT(msg, AllOf(HasSubstr("layer_norm"), HasSubstr("[2, 3]"), HasSubstr("[2]")));
}

TEST(Errors, ExpOfAnIntegerTensor) {
  const std::string msg = error_of([] { exp(zeros({2}, DType::i64)); });
  EXPECT_THAT(msg, AllOf(HasSubstr("exp"), HasSubstr("i64")));
}

TEST(Errors, WhereWithANonBooleanCondition) {
  const std::string msg = error_of([] { where(zeros({2}), zeros({2}), zeros({2})); });
  EXPECT_THAT(msg, AllOf(HasSubstr("where"), HasSubstr("f32")));
}

TEST(Errors, DropoutProbabilityOutsideTheUnitInterval) {
  const std::string msg = error_of([] { dropout(zeros({2}), 1.5); });
  EXPECT_THAT(msg, AllOf(HasSubstr("dropout"), HasSubstr("1.5")));
}

TEST(Errors, ClampWithCrossedBounds) {
  const std::string msg = error_of([] { clamp(zeros({2}), 1.0, -1.0); });
  EXPECT_THAT(msg, HasSubstr("clamp"));
}

TEST(Errors, InPlaceWriteToATensorRequiringGradNamesTheOp) {
  Tensor w = zeros({2}, DType::f64);
  w.requires_grad_();
  const std::string msg = error_of([&] { add_(w, ones_like(w)); });
  EXPECT_THAT(msg, AllOf(HasSubstr("add_"), HasSubstr("f64[2]"), HasSubstr("requires grad")));
}

TEST(Errors, GradcheckRefusesAnF32Input) {
  Tensor x = zeros({2});
  x.requires_grad_();
  const std::string msg =
      error_of([&] { gradcheck([](const Tensors& in) { return in[0]; }, {x}); });
  EXPECT_THAT(msg, AllOf(HasSubstr("gradcheck"), HasSubstr("f32[2]")));
}

}  // namespace
}  // namespace spool
