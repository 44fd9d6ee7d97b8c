// softmax, losses and layer_norm: backward formulas agree with finite differences.
#include <gtest/gtest.h>

#include "ops/ops.h"
#include "tests/ops/gradcheck_inputs.h"

namespace spool {
namespace {

using namespace spool::test;

// ---- softmax --------------------------------------------------------------------------------

TEST(GradcheckSoftmax, SoftmaxAlongEachDim) {
  Tensor x = normal_leaf({2, 3, 4}, 1);
  for (int64_t dim : {0, 1, 2, -1})
    EXPECT_EQ(gradcheck([dim](const Tensors& in) { return softmax(in[0], dim); }, {x}), "")
        << "dim " << dim;
}

TEST(GradcheckSoftmax, SoftmaxOfATransposedLeaf) {
  Tensor x = transposed_leaf(3, 4, 2);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return softmax(in[0], 1); }, {x}), "");
}

TEST(GradcheckSoftmax, LogSoftmaxAlongEachDim) {
  Tensor x = normal_leaf({2, 3, 4}, 3);
  for (int64_t dim : {0, 1, 2, -2})
    EXPECT_EQ(gradcheck([dim](const Tensors& in) { return log_softmax(in[0], dim); }, {x}), "")
        << "dim " << dim;
}

TEST(GradcheckSoftmax, LogSoftmaxOfAStridedLeaf) {
  Tensor x = strided_leaf({3, 4}, 4);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return log_softmax(in[0], -1); }, {x}), "");
}

// ---- cross_entropy --------------------------------------------------------------------------

TEST(GradcheckLoss, CrossEntropyMeanOverClassIndices) {
  Tensor logits = normal_leaf({4, 5}, 10);
  Tensor t = indices({1, 0, 4, 2}, {4});
  EXPECT_EQ(gradcheck([t](const Tensors& in) { return cross_entropy(in[0], t); }, {logits}), "");
}

TEST(GradcheckLoss, CrossEntropySum) {
  Tensor logits = normal_leaf({4, 5}, 11);
  Tensor t = indices({3, 3, 0, 1}, {4});
  CrossEntropyOptions o;
  o.reduction = Reduction::sum;
  EXPECT_EQ(gradcheck([t, o](const Tensors& in) { return cross_entropy(in[0], t, o); }, {logits}),
            "");
}

TEST(GradcheckLoss, CrossEntropyNoReduction) {
  Tensor logits = normal_leaf({3, 4}, 12);
  Tensor t = indices({3, 0, 1}, {3});
  CrossEntropyOptions o;
  o.reduction = Reduction::none;
  EXPECT_EQ(gradcheck([t, o](const Tensors& in) { return cross_entropy(in[0], t, o); }, {logits}),
            "");
}

TEST(GradcheckLoss, CrossEntropyWithTheDefaultIgnoreIndex) {
  Tensor logits = normal_leaf({4, 3}, 13);
  Tensor t = indices({2, -100, 0, -100}, {4});
  EXPECT_EQ(gradcheck([t](const Tensors& in) { return cross_entropy(in[0], t); }, {logits}), "");
}

TEST(GradcheckLoss, CrossEntropyWithACustomIgnoreIndexSummed) {
  Tensor logits = normal_leaf({4, 3}, 14);
  Tensor t = indices({2, 1, 0, 1}, {4});
  CrossEntropyOptions o;
  o.ignore_index = 1;
  o.reduction = Reduction::sum;
  EXPECT_EQ(gradcheck([t, o](const Tensors& in) { return cross_entropy(in[0], t, o); }, {logits}),
            "");
}

TEST(GradcheckLoss, CrossEntropyWithLabelSmoothingMean) {
  Tensor logits = normal_leaf({3, 4}, 15);
  Tensor t = indices({0, 3, 2}, {3});
  CrossEntropyOptions o;
  o.label_smoothing = 0.1;
  EXPECT_EQ(gradcheck([t, o](const Tensors& in) { return cross_entropy(in[0], t, o); }, {logits}),
            "");
}

TEST(GradcheckLoss, CrossEntropyWithLabelSmoothingSumAndIgnoredTargets) {
  Tensor logits = normal_leaf({4, 4}, 16);
  Tensor t = indices({0, -100, 2, 1}, {4});
  CrossEntropyOptions o;
  o.label_smoothing = 0.25;
  o.reduction = Reduction::sum;
  EXPECT_EQ(gradcheck([t, o](const Tensors& in) { return cross_entropy(in[0], t, o); }, {logits}),
            "");
}

TEST(GradcheckLoss, CrossEntropyWithSpatialDims) {
  Tensor logits = normal_leaf({2, 3, 2}, 17);  // [N, C, d]
  Tensor t = indices({0, 2, 1, 1}, {2, 2});
  EXPECT_EQ(gradcheck([t](const Tensors& in) { return cross_entropy(in[0], t); }, {logits}), "");
}

TEST(GradcheckLoss, CrossEntropyOfTransposedLogits) {
  Tensor logits = transposed_leaf(3, 4, 18);
  Tensor t = indices({1, 3, 0}, {3});
  EXPECT_EQ(gradcheck([t](const Tensors& in) { return cross_entropy(in[0], t); }, {logits}), "");
}

// ---- nll_loss and mse_loss ------------------------------------------------------------------

TEST(GradcheckLoss, NllLossMean) {
  Tensor lp = normal_leaf({4, 3}, 20);
  Tensor t = indices({2, 0, 1, 2}, {4});
  EXPECT_EQ(gradcheck([t](const Tensors& in) { return nll_loss(in[0], t); }, {lp}), "");
}

TEST(GradcheckLoss, NllLossSumWithAnIgnoredTarget) {
  Tensor lp = normal_leaf({4, 3}, 21);
  Tensor t = indices({2, 0, 0, 1}, {4});
  EXPECT_EQ(
      gradcheck([t](const Tensors& in) { return nll_loss(in[0], t, 0, Reduction::sum); }, {lp}),
      "");
}

TEST(GradcheckLoss, NllLossOfLogSoftmax) {
  Tensor x = normal_leaf({3, 4}, 22);
  Tensor t = indices({3, 1, 1}, {3});
  EXPECT_EQ(gradcheck([t](const Tensors& in) { return nll_loss(log_softmax(in[0], 1), t); }, {x}),
            "");
}

TEST(GradcheckLoss, MseLossInEachReduction) {
  Tensor a = normal_leaf({2, 3}, 23), b = normal_leaf({2, 3}, 24);
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none})
    EXPECT_EQ(gradcheck([r](const Tensors& in) { return mse_loss(in[0], in[1], r); }, {a, b}), "")
        << "reduction " << int(r);
}

TEST(GradcheckLoss, MseLossOfATransposedInput) {
  Tensor a = transposed_leaf(2, 3, 25), b = normal_leaf({2, 3}, 26);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return mse_loss(in[0], in[1]); }, {a, b}), "");
}

// ---- layer_norm -----------------------------------------------------------------------------

TEST(GradcheckNorm, LayerNormWithWeightAndBias) {
  Tensor x = normal_leaf({3, 4}, 30), w = normal_leaf({4}, 31), b = normal_leaf({4}, 32);
  EXPECT_EQ(
      gradcheck([](const Tensors& in) { return layer_norm(in[0], {4}, in[1], in[2]); }, {x, w, b}),
      "");
}

TEST(GradcheckNorm, LayerNormWithoutWeightOrBias) {
  Tensor x = normal_leaf({2, 3, 4}, 33);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return layer_norm(in[0], {4}); }, {x}), "");
}

TEST(GradcheckNorm, LayerNormWithWeightOnly) {
  Tensor x = normal_leaf({3, 5}, 34), w = normal_leaf({5}, 35);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return layer_norm(in[0], {5}, in[1]); }, {x, w}), "");
}

TEST(GradcheckNorm, LayerNormWithBiasOnly) {
  Tensor x = normal_leaf({3, 5}, 36), b = normal_leaf({5}, 37);
  EXPECT_EQ(
      gradcheck([](const Tensors& in) { return layer_norm(in[0], {5}, Tensor(), in[1]); }, {x, b}),
      "");
}

TEST(GradcheckNorm, LayerNormOfATransposedInput) {
  Tensor x = transposed_leaf(3, 4, 38), w = normal_leaf({4}, 39), b = normal_leaf({4}, 40);
  EXPECT_EQ(
      gradcheck([](const Tensors& in) { return layer_norm(in[0], {4}, in[1], in[2]); }, {x, w, b}),
      "");
}

TEST(GradcheckNorm, LayerNormOverTwoTrailingDims) {
  Tensor x = normal_leaf({2, 2, 3}, 41), w = normal_leaf({2, 3}, 42), b = normal_leaf({2, 3}, 43);
  EXPECT_EQ(gradcheck(
                [](const Tensors& in) {
                  return layer_norm(in[0], {2, 3}, in[1], in[2]);
                },
                {x, w, b}),
            "");
}

}  // namespace
}  // namespace spool
