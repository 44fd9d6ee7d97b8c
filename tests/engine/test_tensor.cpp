// Tensor handles, factories, views and printing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "ops/ops.h"

namespace spool {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ---- factories -----------------------------------------------------------------------------

TEST(Factories, ZerosHasShapeDtypeAndAllZeroValues) {
  Tensor t = zeros({2, 3}, DType::f64);
  EXPECT_EQ(t.shape(), (Shape{2, 3}));
  EXPECT_EQ(t.dtype(), DType::f64);
  EXPECT_EQ(t.numel(), 6);
  EXPECT_THAT(t.to_vector<double>(), ElementsAre(0, 0, 0, 0, 0, 0));
}

TEST(Factories, OnesFillsEveryElementWithOne) {
  Tensor t = ones({4}, DType::i32);
  EXPECT_EQ(t.dtype(), DType::i32);
  EXPECT_THAT(t.to_vector<int32_t>(), ElementsAre(1, 1, 1, 1));
}

TEST(Factories, FullFillsEveryElementWithTheValue) {
  Tensor t = full({2, 2}, 2.5, DType::f32);
  EXPECT_THAT(t.to_vector<float>(), ElementsAre(2.5f, 2.5f, 2.5f, 2.5f));
}

TEST(Factories, ScalarIsZeroDimensionalWithOneElement) {
  Tensor t = scalar(7.0, DType::f64);
  EXPECT_EQ(t.dim(), 0);
  EXPECT_EQ(t.numel(), 1);
  EXPECT_EQ(t.item(), 7.0);
}

TEST(Factories, ArangeCountsFromStartBelowEndByStep) {
  EXPECT_THAT(arange(5).to_vector<int64_t>(), ElementsAre(0, 1, 2, 3, 4));
  EXPECT_THAT(arange(2, 11, 3).to_vector<int64_t>(), ElementsAre(2, 5, 8));
  EXPECT_THAT(arange(0, 1, 0.25, DType::f64).to_vector<double>(),
              ElementsAre(0.0, 0.25, 0.5, 0.75));
  EXPECT_EQ(arange(3, 3).numel(), 0);
}

TEST(Factories, FromVectorKeepsRowMajorOrder) {
  Tensor t = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(t.dtype(), DType::f32);
  EXPECT_EQ(t.at({0, 2}), 3);
  EXPECT_EQ(t.at({1, 0}), 4);
  EXPECT_THAT(t.to_vector<float>(), ElementsAre(1, 2, 3, 4, 5, 6));
}

TEST(Factories, FromVectorRefusesTheWrongElementCount) {
  EXPECT_THROW(from_vector<float>({1, 2, 3}, {2, 2}), Error);
}

TEST(Factories, RandIsReproducibleWithTheSameSeed) {
  Generator g1(42), g2(42);
  Tensor a = rand({16}, DType::f64, &g1), b = rand({16}, DType::f64, &g2);
  EXPECT_EQ(a.to_vector<double>(), b.to_vector<double>());
}

TEST(Factories, RandDiffersWithADifferentSeed) {
  Generator g1(42), g2(43);
  Tensor a = rand({16}, DType::f64, &g1), b = rand({16}, DType::f64, &g2);
  EXPECT_NE(a.to_vector<double>(), b.to_vector<double>());
}

TEST(Factories, RandStaysInsideItsBounds) {
  Generator g(1);
  for (double v : rand({1000}, DType::f64, &g, -2, 3).to_vector<double>()) {
    EXPECT_GE(v, -2);
    EXPECT_LT(v, 3);
  }
}

TEST(Factories, SuccessiveDrawsFromOneGeneratorDiffer) {
  Generator g(5);
  Tensor a = randn({8}, DType::f64, &g), b = randn({8}, DType::f64, &g);
  EXPECT_NE(a.to_vector<double>(), b.to_vector<double>());
}

TEST(Factories, RandnIsReproducibleWithTheSameSeed) {
  Generator g1(9), g2(9);
  Tensor a = randn({3, 5}, DType::f32, &g1), b = randn({3, 5}, DType::f32, &g2);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
}

TEST(Factories, RandnDiffersWithADifferentSeed) {
  Generator g1(9), g2(10);
  Tensor a = randn({3, 5}, DType::f32, &g1), b = randn({3, 5}, DType::f32, &g2);
  EXPECT_NE(a.to_vector<float>(), b.to_vector<float>());
}

TEST(Factories, ManualSeedMakesTheDefaultGeneratorRepeat) {
  manual_seed(123);
  std::vector<double> a = randn({10}, DType::f64).to_vector<double>();
  manual_seed(123);
  std::vector<double> b = randn({10}, DType::f64).to_vector<double>();
  EXPECT_EQ(a, b);
}

TEST(Factories, RandnHasRoughlyTheRequestedMeanAndStd) {
  Generator g(3);
  std::vector<double> v = randn({20000}, DType::f64, &g, 1.0, 2.0).to_vector<double>();
  double s = 0, s2 = 0;
  for (double x : v) s += x, s2 += x * x;
  const double m = s / double(v.size()), sd = std::sqrt(s2 / double(v.size()) - m * m);
  EXPECT_NEAR(m, 1.0, 0.05);
  EXPECT_NEAR(sd, 2.0, 0.05);
}

// ---- views ---------------------------------------------------------------------------------

TEST(Views, WriteThroughAViewIsSeenByTheBase) {
  Tensor base = zeros({3, 4}, DType::f64);
  Tensor view = transpose(base, 0, 1);  // [4, 3]
  view.set_at({2, 1}, 5.0);
  EXPECT_EQ(base.at({1, 2}), 5.0);
  EXPECT_EQ(view.storage(), base.storage());
}

TEST(Views, SliceSharesStorageAndOffsetsIntoIt) {
  Tensor base = from_vector<double>({0, 1, 2, 3, 4, 5, 6, 7}, {8});
  Tensor s = slice(base, 0, 1, 8, 3);  // elements 1, 4, 7
  EXPECT_EQ(s.storage(), base.storage());
  EXPECT_THAT(s.to_vector<double>(), ElementsAre(1, 4, 7));
  s.set_at({1}, -4);
  EXPECT_EQ(base.at({4}), -4);
}

TEST(Views, ExpandSharesStorageWithStrideZero) {
  Tensor base = from_vector<float>({1, 2, 3}, {3, 1});
  Tensor e = expand(base, {3, 4});
  EXPECT_EQ(e.storage(), base.storage());
  EXPECT_EQ(e.stride(1), 0);
  EXPECT_EQ(e.at({2, 3}), 3);
}

TEST(Views, ReshapeOfAContiguousTensorSharesStorage) {
  Tensor base = arange(6, DType::f32);
  Tensor r = reshape(base, {2, 3});
  EXPECT_EQ(r.storage(), base.storage());
  EXPECT_EQ(r.at({1, 0}), 3);
}

TEST(Views, ReshapeOfANonContiguousTensorCopies) {
  Tensor base = reshape(arange(6, DType::f32), {2, 3});
  Tensor t = transpose(base, 0, 1);  // [3, 2], not contiguous
  Tensor r = reshape(t, {6});
  EXPECT_NE(r.storage(), base.storage());
  EXPECT_TRUE(r.is_contiguous());
  EXPECT_THAT(r.to_vector<float>(), ElementsAre(0, 3, 1, 4, 2, 5));
}

TEST(Views, IsContiguousFollowsTheStrides) {
  Tensor t = zeros({2, 3, 4});
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_FALSE(permute(t, {2, 0, 1}).is_contiguous());
  EXPECT_FALSE(slice(t, 2, 0, 4, 2).is_contiguous());
  EXPECT_FALSE(expand(zeros({3, 1}), {3, 5}).is_contiguous());
  EXPECT_TRUE(narrow(t, 0, 1, 1).is_contiguous());  // a leading slab stays contiguous
  EXPECT_TRUE(contiguous(permute(t, {2, 0, 1})).is_contiguous());
}

TEST(Views, ToVectorOfAPermutedViewIsInTheViewsRowMajorOrder) {
  Tensor base = reshape(arange(6, DType::i64), {2, 3});
  EXPECT_THAT(permute(base, {1, 0}).to_vector<int64_t>(), ElementsAre(0, 3, 1, 4, 2, 5));
  Tensor cube = reshape(arange(8, DType::i64), {2, 2, 2});
  // permute(2, 0, 1): out[i][j][k] = cube[j][k][i] = 4j + 2k + i.
  EXPECT_THAT(permute(cube, {2, 0, 1}).to_vector<int64_t>(), ElementsAre(0, 2, 4, 6, 1, 3, 5, 7));
}

TEST(Views, DetachSharesStorageButDropsHistory) {
  Tensor x = ones({3}, DType::f64);
  x.requires_grad_();
  Tensor y = exp(x);
  Tensor d = y.detach();
  EXPECT_EQ(d.storage(), y.storage());
  EXPECT_FALSE(d.requires_grad());
  EXPECT_TRUE(d.is_leaf());
}

// ---- element access ------------------------------------------------------------------------

TEST(ElementAccess, AtRefusesAnOutOfBoundsIndex) {
  Tensor t = zeros({2, 3});
  EXPECT_THROW(t.at({2, 0}), Error);
  EXPECT_THROW(t.at({0}), Error);
}

TEST(ElementAccess, ItemNeedsExactlyOneElement) {
  EXPECT_EQ(full({1, 1}, 3.0).item(), 3.0);
  EXPECT_THROW(zeros({2}).item(), Error);
}

TEST(ElementAccess, SetAtBumpsTheVersionCounter) {
  Tensor t = zeros({2});
  const uint64_t before = t.storage()->version();
  t.set_at({0}, 1);
  EXPECT_EQ(t.storage()->version(), before + 1);
}

// ---- printing ------------------------------------------------------------------------------

TEST(Printing, ShowsValuesAndDtype) {
  std::ostringstream os;
  os << from_vector<float>({1.5f, -2.25f, 3}, {3});
  EXPECT_THAT(os.str(), HasSubstr("1.5000"));
  EXPECT_THAT(os.str(), HasSubstr("-2.2500"));
  EXPECT_THAT(os.str(), HasSubstr("3.0000"));
  EXPECT_THAT(os.str(), HasSubstr("f32"));
}

TEST(Printing, ShowsIntegersWithoutDecimals) {
  std::ostringstream os;
  os << from_vector<int64_t>({4, -7}, {2});
  EXPECT_THAT(os.str(), HasSubstr("[4, -7]"));
  EXPECT_THAT(os.str(), HasSubstr("i64"));
}

TEST(Printing, ShowsAPermutedViewInItsOwnOrder) {
  std::ostringstream os;
  os << permute(reshape(arange(4, DType::i64), {2, 2}), {1, 0});
  EXPECT_THAT(os.str(), HasSubstr("[[0, 2]"));
  EXPECT_THAT(os.str(), HasSubstr("[1, 3]]"));
}

TEST(Printing, ElidesTheMiddleOfALongDimension) {
  std::ostringstream os;
  os << arange(100, DType::i64);
  EXPECT_THAT(os.str(), HasSubstr("..."));
  EXPECT_THAT(os.str(), HasSubstr("99"));
  EXPECT_THAT(os.str(), ::testing::Not(HasSubstr("50")));
}

TEST(Printing, DescribeGivesDtypeAndShape) { EXPECT_EQ(describe(zeros({8, 3})), "f32[8, 3]"); }

// ---- broadcasting --------------------------------------------------------------------------

TEST(Broadcasting, AlignsTrailingDimsAndStretchesOnes) {
  EXPECT_EQ(broadcast_shapes({3, 1, 4}, {2, 4}, "t"), (Shape{3, 2, 4}));
  EXPECT_EQ(broadcast_shapes({4}, {3, 4}, "t"), (Shape{3, 4}));
  EXPECT_EQ(broadcast_shapes({5, 1}, {1, 6}, "t"), (Shape{5, 6}));
  EXPECT_EQ(broadcast_shapes({}, {2, 3}, "t"), (Shape{2, 3}));
  EXPECT_EQ(broadcast_shapes({2, 3}, {2, 3}, "t"), (Shape{2, 3}));
}

TEST(Broadcasting, RefusesUnequalSizesThatAreNotOne) {
  EXPECT_THROW(broadcast_shapes({2, 3}, {4}, "t"), Error);
  EXPECT_THROW(broadcast_shapes({2, 3}, {3, 2, 2}, "t"), Error);  // 3 vs 2 at the end
}

TEST(Broadcasting, AddOfColumnAndRowMakesATable) {
  Tensor col = from_vector<double>({10, 20}, {2, 1});
  Tensor row = from_vector<double>({1, 2, 3}, {3});
  Tensor y = add(col, row);
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  EXPECT_THAT(y.to_vector<double>(), ElementsAre(11, 12, 13, 21, 22, 23));
}

// ---- shape helpers -------------------------------------------------------------------------

TEST(ShapeHelpers, ContiguousStridesAreRowMajor) {
  EXPECT_EQ(contiguous_strides({2, 3, 4}), (Shape{12, 4, 1}));
  EXPECT_EQ(numel({2, 3, 4}), 24);
  EXPECT_EQ(numel({}), 1);
  EXPECT_EQ(str({8, 3}), "[8, 3]");
}

TEST(ShapeHelpers, WrapDimAcceptsNegativeDimsAndRefusesOutOfRange) {
  EXPECT_EQ(wrap_dim(-1, 3, "t"), 2);
  EXPECT_EQ(wrap_dim(0, 3, "t"), 0);
  EXPECT_THROW(wrap_dim(3, 3, "t"), Error);
  EXPECT_THROW(wrap_dim(-4, 3, "t"), Error);
}

}  // namespace
}  // namespace spool
