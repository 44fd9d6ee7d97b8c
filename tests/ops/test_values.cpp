// Forward values of ops against numbers worked out by hand (or from the defining formula).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "engine/autograd.h"
#include "ops/ops.h"

namespace spool {
namespace {

using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::Pointwise;

Tensor f64(const std::vector<double>& v, const Shape& shape) { return from_vector(v, shape); }
Tensor i64(const std::vector<int64_t>& v, const Shape& shape) { return from_vector(v, shape); }

// ---- softmax --------------------------------------------------------------------------------

TEST(Values, SoftmaxOfOneTwoThree) {
  // e^k / (e + e^2 + e^3)
  Tensor y = softmax(f64({1, 2, 3}, {3}), 0);
  EXPECT_THAT(y.to_vector<double>(),
              Pointwise(DoubleNear(1e-8), {0.09003057, 0.24472847, 0.66524096}));
}

TEST(Values, SoftmaxIsUnchangedByAddingAConstantToARow) {
  Tensor y = softmax(f64({1001, 1002, 1003}, {3}), 0);  // would overflow without the max shift
  EXPECT_THAT(y.to_vector<double>(),
              Pointwise(DoubleNear(1e-8), {0.09003057, 0.24472847, 0.66524096}));
}

TEST(Values, SoftmaxAlongDimZeroNormalisesColumns) {
  // Column 0: [0, ln 3] -> [1/4, 3/4]; column 1: equal entries -> [1/2, 1/2].
  Tensor y = softmax(f64({0, 5, std::log(3.0), 5}, {2, 2}), 0);
  EXPECT_THAT(y.to_vector<double>(), Pointwise(DoubleNear(1e-12), {0.25, 0.5, 0.75, 0.5}));
}

TEST(Values, LogSoftmaxOfOneTwoThree) {
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  Tensor y = log_softmax(f64({1, 2, 3}, {1, 3}), 1);
  EXPECT_THAT(y.to_vector<double>(), Pointwise(DoubleNear(1e-12), {1 - lse, 2 - lse, 3 - lse}));
}

// ---- losses ---------------------------------------------------------------------------------

TEST(Values, CrossEntropyOfATinyBatch) {
  // Row 0: logits [1, 2, 0], target 1; row 1: logits [0, 0, 3], target 0.
  Tensor logits = f64({1, 2, 0, 0, 0, 3}, {2, 3});
  Tensor targets = i64({1, 0}, {2});
  const double l0 = -(2 - std::log(std::exp(1.0) + std::exp(2.0) + 1.0));
  const double l1 = -(0 - std::log(2.0 + std::exp(3.0)));
  EXPECT_NEAR(cross_entropy(logits, targets).item(), (l0 + l1) / 2, 1e-12);

  CrossEntropyOptions sum_opts;
  sum_opts.reduction = Reduction::sum;
  EXPECT_NEAR(cross_entropy(logits, targets, sum_opts).item(), l0 + l1, 1e-12);

  CrossEntropyOptions none_opts;
  none_opts.reduction = Reduction::none;
  EXPECT_THAT(cross_entropy(logits, targets, none_opts).to_vector<double>(),
              Pointwise(DoubleNear(1e-12), {l0, l1}));
}

TEST(Values, CrossEntropyMeanSkipsIgnoredTargets) {
  Tensor logits = f64({1, 2, 0, 0, 0, 3, 5, 5, 5}, {3, 3});
  Tensor targets = i64({1, -100, 0}, {3});
  const double l0 = -(2 - std::log(std::exp(1.0) + std::exp(2.0) + 1.0));
  const double l2 = std::log(3.0);  // uniform logits
  EXPECT_NEAR(cross_entropy(logits, targets).item(), (l0 + l2) / 2, 1e-12);
}

TEST(Values, CrossEntropyWithLabelSmoothing) {
  // (1 - eps) * (-log p_target) + eps * mean_c(-log p_c), eps = 0.1.
  Tensor logits = f64({1, 2, 0}, {1, 3});
  Tensor targets = i64({0}, {1});
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + 1.0);
  const double nll = lse - 1;
  const double smooth = ((lse - 1) + (lse - 2) + (lse - 0)) / 3;
  CrossEntropyOptions o;
  o.label_smoothing = 0.1;
  EXPECT_NEAR(cross_entropy(logits, targets, o).item(), 0.9 * nll + 0.1 * smooth, 1e-12);
}

TEST(Values, CrossEntropyOfASingleSampleWithAScalarTarget) {
  Tensor logits = f64({1, 2, 0}, {3});
  Tensor target = i64({1}, {});
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + 1.0);
  EXPECT_NEAR(cross_entropy(logits, target).item(), lse - 2, 1e-12);
}

TEST(Values, NllLossPicksTheNegatedTargetEntries) {
  Tensor lp = f64({-0.5, -1.0, -2.0, -3.0, -0.25, -4.0}, {2, 3});
  EXPECT_NEAR(nll_loss(lp, i64({2, 1}, {2})).item(), (2.0 + 0.25) / 2, 1e-12);
  EXPECT_NEAR(nll_loss(lp, i64({0, 0}, {2}), -100, Reduction::sum).item(), 3.5, 1e-12);
}

TEST(Values, MseLossIsTheMeanOfSquaredDifferences) {
  Tensor a = f64({1, 2, 3, 4}, {2, 2}), b = f64({1, 0, 5, 1}, {2, 2});
  EXPECT_NEAR(mse_loss(a, b).item(), (0 + 4 + 4 + 9) / 4.0, 1e-12);
  EXPECT_NEAR(mse_loss(a, b, Reduction::sum).item(), 17.0, 1e-12);
}

// ---- layer_norm -----------------------------------------------------------------------------

TEST(Values, LayerNormOfARow) {
  // mean 2.5, biased variance 1.25.
  Tensor y = layer_norm(f64({1, 2, 3, 4}, {1, 4}), {4});
  const double s = std::sqrt(1.25 + 1e-5);
  EXPECT_THAT(y.to_vector<double>(),
              Pointwise(DoubleNear(1e-12), {-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s}));
}

TEST(Values, LayerNormAppliesWeightAndBiasPerFeature) {
  Tensor x = f64({1, 3, 10, 14}, {2, 2});  // rows normalise to [-1, 1] (up to eps)
  Tensor w = f64({2, 3}, {2}), b = f64({0.5, -1}, {2});
  Tensor y = layer_norm(x, {2}, w, b, 0.0);
  EXPECT_THAT(y.to_vector<double>(), Pointwise(DoubleNear(1e-12), {-1.5, 2.0, -1.5, 2.0}));
}

TEST(Values, LayerNormOverTwoTrailingDimsNormalisesTheWholeSlab) {
  // Each [2, 2] slab: {0, 2, 4, 6}, mean 3, biased variance 5.
  Tensor x = f64({0, 2, 4, 6, 10, 12, 14, 16}, {2, 2, 2});
  Tensor y = layer_norm(x, {2, 2}, Tensor(), Tensor(), 0.0);
  const double s = std::sqrt(5.0);
  const std::vector<double> row = {-3 / s, -1 / s, 1 / s, 3 / s};
  std::vector<double> want = row;
  want.insert(want.end(), row.begin(), row.end());
  EXPECT_THAT(y.to_vector<double>(), Pointwise(DoubleNear(1e-12), want));
}

// ---- matmul ---------------------------------------------------------------------------------

TEST(Values, MatmulOfTwoByTwoMatrices) {
  Tensor a = f64({1, 2, 3, 4}, {2, 2}), b = f64({5, 6, 7, 8}, {2, 2});
  EXPECT_THAT(matmul(a, b).to_vector<double>(), ElementsAre(19, 22, 43, 50));
}

TEST(Values, MatmulOfTransposedViews) {
  // a^T @ b^T with a, b as above: [[1, 3], [2, 4]] @ [[5, 7], [6, 8]].
  Tensor a = f64({1, 2, 3, 4}, {2, 2}), b = f64({5, 6, 7, 8}, {2, 2});
  EXPECT_THAT(matmul(transpose(a, 0, 1), transpose(b, 0, 1)).to_vector<double>(),
              ElementsAre(23, 31, 34, 46));
}

TEST(Values, MatmulInF32) {
  Tensor a = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = from_vector<float>({1, 0, 0, 1, 1, 1}, {3, 2});
  EXPECT_THAT(matmul(a, b).to_vector<float>(), ElementsAre(4, 5, 10, 11));
}

TEST(Values, MatmulOfVectorsIsTheDotProduct) {
  Tensor y = matmul(f64({1, 2, 3}, {3}), f64({4, 5, 6}, {3}));
  EXPECT_EQ(y.dim(), 0);
  EXPECT_EQ(y.item(), 32);
}

TEST(Values, MatmulBroadcastsAMatrixOverABatch) {
  Tensor a = f64({1, 0, 0, 1, 2, 0, 0, 2}, {2, 2, 2});  // I and 2I
  Tensor b = f64({1, 2, 3, 4}, {2, 2});
  Tensor y = matmul(a, b);
  EXPECT_EQ(y.shape(), (Shape{2, 2, 2}));
  EXPECT_THAT(y.to_vector<double>(), ElementsAre(1, 2, 3, 4, 2, 4, 6, 8));
}

TEST(Values, MatmulOfANonContiguousBatchTimesAMatrix) {
  // Batch i of a is row-block i of a [2, 2, 2] tensor permuted (1, 0, 2).
  Tensor base = f64({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2});
  Tensor a = permute(base, {1, 0, 2});  // a[i][j] = base[j][i]
  Tensor b = f64({1, 0, 0, 1}, {2, 2});
  EXPECT_THAT(matmul(a, b).to_vector<double>(), ElementsAre(1, 2, 5, 6, 3, 4, 7, 8));
}

TEST(Values, LinearIsXTimesWTransposedPlusBias) {
  Tensor x = f64({1, 2}, {1, 2});
  Tensor w = f64({1, 1, 2, -1, 0, 3}, {3, 2});
  Tensor b = f64({10, 20, 30}, {3});
  EXPECT_THAT(linear(x, w, b).to_vector<double>(), ElementsAre(13, 20, 36));
}

// ---- reductions -----------------------------------------------------------------------------

TEST(Values, VarWithAndWithoutCorrection) {
  Tensor x = f64({1, 2, 3, 4}, {4});  // squared deviations sum to 5
  EXPECT_NEAR(var(x).item(), 5.0 / 3.0, 1e-12);
  EXPECT_NEAR(var(x, {}, 0).item(), 5.0 / 4.0, 1e-12);
}

TEST(Values, VarAlongADim) {
  Tensor x = f64({1, 3, 2, 2, 0, 10}, {3, 2});
  // Columns: {1, 2, 0} (mean 1, ss 2) and {3, 2, 10} (mean 5, ss 38).
  EXPECT_THAT(var(x, {0}).to_vector<double>(), Pointwise(DoubleNear(1e-12), {1.0, 19.0}));
  Tensor k = var(x, {0}, 1, true);
  EXPECT_EQ(k.shape(), (Shape{1, 2}));
}

TEST(Values, SumMeanMaxMinAlongDims) {
  Tensor x = f64({1, -2, 3, 4, 5, -6}, {2, 3});
  EXPECT_EQ(sum(x).item(), 5);
  EXPECT_THAT(sum(x, {1}).to_vector<double>(), ElementsAre(2, 3));
  EXPECT_THAT(mean(x, {0}).to_vector<double>(), ElementsAre(2.5, 1.5, -1.5));
  EXPECT_THAT(max(x, {1}).to_vector<double>(), ElementsAre(3, 5));
  EXPECT_THAT(min(x, {0}).to_vector<double>(), ElementsAre(1, -2, -6));
  EXPECT_EQ(max(x).item(), 5);
  EXPECT_EQ(min(x).item(), -6);
  EXPECT_EQ(sum(x, {1}, true).shape(), (Shape{2, 1}));
}

// The reductions start from -inf / +inf: a row that is all -inf (a fully masked score row) has
// max -inf, not the largest finite float (-FLT_MAX before), in f32 and f64.
TEST(Values, MaxOfInfinitiesIsInfinite) {
  for (DType t : {DType::f32, DType::f64}) {
    Tensor lo = full({2, 3}, -INFINITY, t), hi = full({2, 3}, INFINITY, t);
    EXPECT_THAT(max(lo, {1}).to_vector<double>(), ElementsAre(-INFINITY, -INFINITY));
    EXPECT_EQ(max(lo).item(), -INFINITY);
    EXPECT_THAT(min(hi, {0}).to_vector<double>(), ElementsAre(INFINITY, INFINITY, INFINITY));
    EXPECT_EQ(min(hi).item(), INFINITY);
  }
}

TEST(Values, SumOfAPermutedView) {
  Tensor x = permute(f64({1, 2, 3, 4, 5, 6}, {2, 3}), {1, 0});  // [[1, 4], [2, 5], [3, 6]]
  EXPECT_THAT(sum(x, {1}).to_vector<double>(), ElementsAre(5, 7, 9));
}

TEST(Values, MaxGradientIsSharedAmongTiedMaxima) {
  Tensor x = f64({1, 3, 3, 2}, {4});
  x.requires_grad_();
  backward(max(x));
  EXPECT_THAT(x.grad().to_vector<double>(), ElementsAre(0, 0.5, 0.5, 0));
}

TEST(Values, ArgmaxPicksTheFirstMaximum) {
  Tensor x = f64({1, 5, 3, 7, 2, 7}, {2, 3});
  EXPECT_THAT(argmax(x, 1).to_vector<int64_t>(), ElementsAre(1, 0));
  EXPECT_THAT(argmax(x, 0).to_vector<int64_t>(), ElementsAre(1, 0, 1));
  EXPECT_EQ(argmax(x, 1, true).shape(), (Shape{2, 1}));
  EXPECT_EQ(argmax(x, -1).dtype(), DType::i64);
}

// ---- activations ----------------------------------------------------------------------------

TEST(Values, GeluExactMatchesXTimesTheNormalCdf) {
  const std::vector<double> xs = {-3, -1, -0.5, 0, 0.5, 1, 2.5};
  std::vector<double> want;
  for (double x : xs) want.push_back(0.5 * x * (1 + std::erf(x / std::sqrt(2.0))));
  EXPECT_THAT(gelu(f64(xs, {7})).to_vector<double>(), Pointwise(DoubleNear(1e-12), want));
  EXPECT_NEAR(gelu(f64({1}, {1})).item(), 0.8413447460685429, 1e-12);
}

TEST(Values, GeluTanhMatchesItsFormula) {
  const std::vector<double> xs = {-3, -1, -0.5, 0, 0.5, 1, 2.5};
  const double c = std::sqrt(2.0 / M_PI);
  std::vector<double> want;
  for (double x : xs) want.push_back(0.5 * x * (1 + std::tanh(c * (x + 0.044715 * x * x * x))));
  EXPECT_THAT(gelu(f64(xs, {7}), GeluApprox::tanh).to_vector<double>(),
              Pointwise(DoubleNear(1e-12), want));
}

TEST(Values, ReluSigmoidTanhAtAFewPoints) {
  Tensor x = f64({-2, 0, 3}, {3});
  EXPECT_THAT(relu(x).to_vector<double>(), ElementsAre(0, 0, 3));
  EXPECT_THAT(
      sigmoid(x).to_vector<double>(),
      Pointwise(DoubleNear(1e-12), {1 / (1 + std::exp(2.0)), 0.5, 1 / (1 + std::exp(-3.0))}));
  EXPECT_THAT(tanh(x).to_vector<double>(),
              Pointwise(DoubleNear(1e-12), {std::tanh(-2.0), 0.0, std::tanh(3.0)}));
}

TEST(Values, LogSigmoidIsFiniteFarFromZeroAndHalvesTheSlopeAtZero) {
  // log(sigmoid(-200)) = -200 - log1p(e^-200); a naive log(sigmoid(x)) gives -inf in f32.
  Tensor x = to(f64({-200, -3, 0, 3, 200}, {5}), DType::f32);
  EXPECT_THAT(log_sigmoid(x).to_vector<double>(),
              Pointwise(DoubleNear(1e-5), {-200.0, -3 - std::log1p(std::exp(-3.0)), -std::log(2.0),
                                           -std::log1p(std::exp(-3.0)), 0.0}));
  Tensor z = zeros({1}, DType::f64).requires_grad_(true);
  backward(sum(log_sigmoid(z)));
  EXPECT_DOUBLE_EQ(z.grad().item(), 0.5);  // DPO starts here: policy == reference
}

TEST(Values, ClampLimitsToTheBounds) {
  EXPECT_THAT(clamp(f64({-3, -0.5, 0.2, 9}, {4}), -1, 1).to_vector<double>(),
              ElementsAre(-1, -0.5, 0.2, 1));
}

TEST(Values, PowAndArithmetic) {
  Tensor a = f64({1, 4, 9}, {3}), b = f64({2, 0.5, 0}, {3});
  EXPECT_THAT(pow(a, b).to_vector<double>(), ElementsAre(1, 2, 1));
  EXPECT_THAT(pow(a, 0.5).to_vector<double>(), ElementsAre(1, 2, 3));
  EXPECT_THAT((a / b).to_vector<double>(), ElementsAre(0.5, 8, INFINITY));
  EXPECT_THAT((2.0 - a).to_vector<double>(), ElementsAre(1, -2, -7));
}

TEST(Values, WhereAndMaskedFill) {
  Tensor x = f64({1, -2, 3, -4}, {4});
  Tensor mask = lt(x, 0.0);
  EXPECT_THAT(where(mask, zeros({}, DType::f64), x).to_vector<double>(), ElementsAre(1, 0, 3, 0));
  EXPECT_THAT(masked_fill(x, mask, 9).to_vector<double>(), ElementsAre(1, 9, 3, 9));
}

TEST(Values, ComparisonsGiveABooleanMask) {
  Tensor a = f64({1, 2, 3}, {3}), b = f64({2, 2, 2}, {3});
  Tensor m = lt(a, b);
  EXPECT_EQ(m.dtype(), DType::b8);
  EXPECT_EQ(m.at({0}), 1);
  EXPECT_EQ(m.at({1}), 0);
  EXPECT_EQ(m.at({2}), 0);
  EXPECT_EQ(ge(a, b).at({1}), 1);
  EXPECT_EQ(ne(a, 2.0).at({1}), 0);
  EXPECT_EQ(eq(a, 3.0).at({2}), 1);
}

// ---- dropout --------------------------------------------------------------------------------

TEST(Values, DropoutZeroesOrScalesEachElement) {
  Generator g(7);
  Tensor y = dropout(ones({1000}, DType::f64), 0.25, true, &g);
  int64_t kept = 0;
  for (double v : y.to_vector<double>()) {
    EXPECT_TRUE(v == 0 || std::abs(v - 1 / 0.75) < 1e-12) << v;
    kept += v != 0;
  }
  EXPECT_NEAR(double(kept) / 1000, 0.75, 0.05);
}

TEST(Values, DropoutWithTheSameGeneratorStateRepeatsItsMask) {
  Generator g1(11), g2(11);
  Tensor x = ones({64}, DType::f64);
  EXPECT_EQ(dropout(x, 0.5, true, &g1).to_vector<double>(),
            dropout(x, 0.5, true, &g2).to_vector<double>());
}

TEST(Values, DropoutInEvalModeIsTheIdentity) {
  Tensor x = f64({1, 2, 3}, {3});
  EXPECT_THAT(dropout(x, 0.9, false).to_vector<double>(), ElementsAre(1, 2, 3));
}

// ---- indexing -------------------------------------------------------------------------------

TEST(Values, EmbeddingLooksUpRows) {
  Tensor w = f64({0, 1, 10, 11, 20, 21}, {3, 2});
  Tensor y = embedding(w, i64({2, 0, 2}, {1, 3}));
  EXPECT_EQ(y.shape(), (Shape{1, 3, 2}));
  EXPECT_THAT(y.to_vector<double>(), ElementsAre(20, 21, 0, 1, 20, 21));
}

TEST(Values, GatherAndScatterAdd) {
  Tensor x = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_THAT(gather(x, 1, i64({2, 0, 1, 1}, {2, 2})).to_vector<double>(), ElementsAre(3, 1, 5, 5));
  Tensor y = scatter_add(zeros({2, 3}, DType::f64), 1, i64({2, 2, 0, 1}, {2, 2}),
                         f64({1, 10, 100, 1000}, {2, 2}));
  EXPECT_THAT(y.to_vector<double>(), ElementsAre(0, 0, 11, 100, 1000, 0));
}

TEST(Values, CatStackSplitChunk) {
  Tensor a = f64({1, 2}, {1, 2}), b = f64({3, 4, 5, 6}, {2, 2});
  EXPECT_THAT(cat({a, b}, 0).to_vector<double>(), ElementsAre(1, 2, 3, 4, 5, 6));
  Tensor s = stack({f64({1, 2}, {2}), f64({3, 4}, {2})}, 1);
  EXPECT_EQ(s.shape(), (Shape{2, 2}));
  EXPECT_THAT(s.to_vector<double>(), ElementsAre(1, 3, 2, 4));
  Tensors parts = split(arange(5, DType::f64), 2, 0);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_THAT(parts[2].to_vector<double>(), ElementsAre(4));
  Tensors chunks = chunk(arange(6, DType::f64), 4, 0);  // ceil(6 / 4) = 2 per chunk
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_THAT(chunks[1].to_vector<double>(), ElementsAre(2, 3));
}

}  // namespace
}  // namespace spool
