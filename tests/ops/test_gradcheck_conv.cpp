// Convolution, pooling and batch norm: backward formulas agree with finite differences, and a
// few forward values worked out by hand.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/factory.h"
#include "engine/window.h"
#include "ops/conv.h"
#include "ops/norm.h"
#include "ops/ops.h"
#include "ops/pool.h"
#include "tests/ops/gradcheck_inputs.h"
#include "tests/support/helpers.h"

namespace spool {
namespace {

using namespace spool::test;
using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::Pointwise;

std::string check_conv(const Tensor& x, const Tensor& w, const Tensor& b, const ConvOptions& o) {
  return gradcheck([o](const Tensors& in) { return conv(in[0], in[1], in[2], o); }, {x, w, b});
}

// ---- convolution ----------------------------------------------------------------------------

TEST(GradcheckConv, Conv1dWithBias) {
  EXPECT_EQ(
      check_conv(normal_leaf({2, 2, 6}, 1), normal_leaf({3, 2, 3}, 2), normal_leaf({3}, 3), {}),
      "");
}

TEST(GradcheckConv, Conv1dWithStridePaddingAndDilation) {
  ConvOptions o;
  o.stride = {2};
  o.padding = {1};
  o.dilation = {2};
  EXPECT_EQ(
      check_conv(normal_leaf({1, 2, 7}, 4), normal_leaf({2, 2, 3}, 5), normal_leaf({2}, 6), o), "");
}

TEST(GradcheckConv, Conv2dWithoutBias) {
  Tensor x = normal_leaf({1, 2, 4, 4}, 7), w = normal_leaf({2, 2, 3, 3}, 8);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return conv2d(in[0], in[1]); }, {x, w}), "");
}

TEST(GradcheckConv, Conv2dWithPerDimStrideAndPadding) {
  ConvOptions o;
  o.stride = {2, 1};
  o.padding = {1, 0};
  EXPECT_EQ(check_conv(normal_leaf({2, 1, 5, 4}, 9), normal_leaf({2, 1, 3, 2}, 10),
                       normal_leaf({2}, 11), o),
            "");
}

TEST(GradcheckConv, Conv2dWithGroups) {
  ConvOptions o;
  o.groups = 2;
  o.padding = {1};
  EXPECT_EQ(check_conv(normal_leaf({1, 4, 3, 3}, 12), normal_leaf({4, 2, 2, 2}, 13),
                       normal_leaf({4}, 14), o),
            "");
}

TEST(GradcheckConv, Conv2dOfAPermutedInput) {
  Tensor x = as_leaf(permute(normal_leaf({1, 4, 4, 2}, 15).detach(), {0, 3, 1, 2}));  // NHWC
  ASSERT_FALSE(x.is_contiguous());
  EXPECT_EQ(check_conv(x, normal_leaf({3, 2, 2, 2}, 16), normal_leaf({3}, 17), {}), "");
}

TEST(GradcheckConv, Conv3d) {
  ConvOptions o;
  o.padding = {1, 0, 0};
  EXPECT_EQ(check_conv(normal_leaf({1, 2, 3, 3, 3}, 18), normal_leaf({2, 2, 3, 2, 2}, 19),
                       normal_leaf({2}, 20), o),
            "");
}

TEST(Conv, Conv1dIsACrossCorrelation) {
  // out[i] = x[i] * 1 + x[i + 1] * 0 + x[i + 2] * (-1), plus bias 0.5.
  Tensor x = from_vector<double>({1, 2, 4, 8}, {1, 1, 4});
  Tensor w = from_vector<double>({1, 0, -1}, {1, 1, 3});
  Tensor b = from_vector<double>({0.5}, {1});
  EXPECT_THAT(conv1d(x, w, b).to_vector<double>(), ElementsAre(-2.5, -5.5));
}

TEST(Conv, Conv2dWithZeroPaddingSumsTheNeighbourhood) {
  // A 3x3 kernel of ones with padding 1 sums each pixel's in-bounds neighbours.
  Tensor x = from_vector<double>({1, 2, 3, 4}, {1, 1, 2, 2});
  Tensor w = ones({1, 1, 3, 3}, DType::f64);
  ConvOptions o;
  o.padding = {1};
  EXPECT_THAT(conv2d(x, w, {}, o).to_vector<double>(), ElementsAre(10, 10, 10, 10));
}

TEST(Conv, MismatchedChannelsNameTheOpAndShapes) {
  try {
    conv2d(zeros({1, 3, 4, 4}), zeros({2, 2, 3, 3}));
    ADD_FAILURE() << "expected a spool::Error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("conv2d"));
    EXPECT_THAT(e.what(), ::testing::HasSubstr("[2, 2, 3, 3]"));
  }
}

// ---- pooling --------------------------------------------------------------------------------

TEST(GradcheckPool, MaxPool2dWithDistinctValues) {
  Tensor x = distinct_leaf({1, 2, 4, 4}, 30);
  PoolOptions o;
  o.kernel = {2};
  EXPECT_EQ(gradcheck([o](const Tensors& in) { return max_pool(in[0], o); }, {x}), "");
}

TEST(GradcheckPool, MaxPool1dWithOverlappingWindowsAndPadding) {
  Tensor x = distinct_leaf({2, 1, 7}, 31);
  PoolOptions o;
  o.kernel = {3};
  o.stride = {2};
  o.padding = {1};
  EXPECT_EQ(gradcheck([o](const Tensors& in) { return max_pool(in[0], o); }, {x}), "");
}

TEST(GradcheckPool, MaxPool3d) {
  Tensor x = distinct_leaf({1, 1, 2, 4, 4}, 32);
  PoolOptions o;
  o.kernel = {2};
  EXPECT_EQ(gradcheck([o](const Tensors& in) { return max_pool(in[0], o); }, {x}), "");
}

TEST(GradcheckPool, AvgPool2d) {
  Tensor x = normal_leaf({1, 2, 4, 4}, 33);
  PoolOptions o;
  o.kernel = {2};
  EXPECT_EQ(gradcheck([o](const Tensors& in) { return avg_pool(in[0], o); }, {x}), "");
}

TEST(GradcheckPool, AvgPoolWithPaddingExcludedFromTheCount) {
  Tensor x = normal_leaf({1, 1, 5, 5}, 34);
  PoolOptions o;
  o.kernel = {3};
  o.stride = {2};
  o.padding = {1};
  o.count_include_pad = false;
  EXPECT_EQ(gradcheck([o](const Tensors& in) { return avg_pool(in[0], o); }, {x}), "");
}

TEST(GradcheckPool, AvgPoolInCeilMode) {
  Tensor x = normal_leaf({1, 1, 5}, 35);
  PoolOptions o;
  o.kernel = {2};
  o.ceil_mode = true;
  EXPECT_EQ(gradcheck([o](const Tensors& in) { return avg_pool(in[0], o); }, {x}), "");
}

TEST(GradcheckPool, GlobalAveragePool) {
  Tensor x = normal_leaf({2, 2, 3, 3}, 36);
  EXPECT_EQ(gradcheck([](const Tensors& in) { return adaptive_avg_pool_global(in[0]); }, {x}), "");
}

TEST(GradcheckPool, UpsampleNearestByTwoAndToAnUnevenSize) {
  Generator gen(14);
  Tensor x = randn({2, 3, 3, 4}, DType::f64, &gen).requires_grad_();
  EXPECT_EQ(gradcheck([](const Tensors& in) { return upsample_nearest(in[0], 6, 8); }, {x}), "");
  EXPECT_EQ(gradcheck([](const Tensors& in) { return upsample_nearest(in[0], 5, 3); }, {x}), "");
}

TEST(Pool, UpsampleNearestReadsTheRowsTorchReads) {
  // torch.nn.functional.interpolate(x, size, mode="nearest") on a 1 x 3 row [0, 1, 2]: to 7
  // columns it reads floor(i * 3 / 7) = 0 0 0 1 1 2 2; to 6, i / 2; to 2, floor(i * 1.5) = 0 1.
  const Tensor x = from_vector(std::vector<double>{0, 1, 2}, {1, 1, 1, 3});
  EXPECT_EQ(upsample_nearest(x, 1, 7).to_vector<double>(),
            (std::vector<double>{0, 0, 0, 1, 1, 2, 2}));
  EXPECT_EQ(upsample_nearest(x, 1, 6).to_vector<double>(), (std::vector<double>{0, 0, 1, 1, 2, 2}));
  EXPECT_EQ(upsample_nearest(x, 1, 2).to_vector<double>(), (std::vector<double>{0, 1}));
  EXPECT_EQ(upsample_nearest(x, 2, 3).to_vector<double>(), (std::vector<double>{0, 1, 2, 0, 1, 2}));
  EXPECT_THROW(upsample_nearest(x, 0, 3), Error);
  EXPECT_THROW(upsample_nearest(zeros({3, 3}), 2, 2), Error);
}

TEST(Pool, MaxPoolTakesTheLargestOfEachWindow) {
  Tensor x = from_vector<double>({1, 5, 2, 0, 3, 4, -1, 7, 6}, {1, 1, 9});
  PoolOptions o;
  o.kernel = {3};
  EXPECT_THAT(max_pool(x, o).to_vector<double>(), ElementsAre(5, 4, 7));
}

// The CPU kernel against the window geometry's reference scan, value and index, on values with
// ties, NaNs and -inf, with padding and dilation, in 1, 2 and 3 dims, in f64 and f32. The rows
// wide enough for the kernel's row-at-a-time path (stride 1, 2 and 3, with and without padding)
// have runs of interior windows longer than a vector, and their ends reach into the padding.
TEST(Pool, MaxPoolKernelEqualsTheWindowScanWithTiesNansPaddingAndDilation) {
  struct Case {
    Shape x;
    std::vector<int64_t> k, s, p, d;
  };
  const Case cases[] = {
      {{2, 3, 11}, {3}, {2}, {1}, {1}},
      {{2, 3, 9, 10}, {3, 3}, {2, 2}, {1, 1}, {1, 1}},
      {{1, 2, 9, 9}, {3, 2}, {1, 3}, {1, 0}, {2, 3}},
      {{1, 2, 5, 6, 7}, {3, 3, 3}, {2, 1, 2}, {1, 1, 1}, {1, 2, 1}},
      {{2, 3, 7, 41}, {3, 3}, {2, 2}, {1, 1}, {1, 1}},
      {{1, 2, 4, 35}, {2, 3}, {1, 1}, {1, 1}, {1, 1}},
      {{1, 2, 3, 40}, {1, 3}, {1, 3}, {0, 1}, {1, 2}},
      {{1, 2, 2, 5, 38}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {1, 1, 1}},
  };
  uint64_t seed = 7;
  for (const DType dt : {DType::f64, DType::f32})
    for (const Case& c : cases) {
      std::mt19937_64 rng(seed++);
      std::vector<double> v(size_t(numel(c.x)));
      for (double& e : v) {
        const uint64_t r = rng() % 16;  // few distinct values: many ties; some NaNs and -inf
        e = r == 0   ? std::nan("")
            : r == 1 ? -std::numeric_limits<double>::infinity()
                     : double(r % 5) - 2;
      }
      const Tensor x = to(from_vector<double>(v, c.x), dt);
      WindowParams w;
      w.kernel = c.k;
      w.stride = c.s;
      w.padding = c.p;
      w.dilation = c.d;
      Shape ys = {c.x[0], c.x[1]};
      for (size_t i = 0; i < c.k.size(); ++i) ys.push_back(w.out_size(i, c.x[i + 2]));
      const Tensor y = empty(ys, dt), idx = empty(ys, DType::i64);
      backend(Device::cpu()).max_pool(x, w, y, idx);
      const Window3 g = window3(c.x, ys, w);
      const auto got = to(y, DType::f64).to_vector<double>();
      const auto got_idx = idx.to_vector<int64_t>();
      const int64_t planes = c.x[0] * c.x[1];
      for (int64_t pl = 0; pl < planes; ++pl)
        for (int64_t o = 0; o < g.out_vol(); ++o) {
          int64_t oc[3], st[3], arg;
          g.out_coords(o, oc);
          g.window_start(oc, st);
          const double want = g.window_max(v.data() + pl * g.in_vol(), st, &arg);
          const size_t at = size_t(pl * g.out_vol() + o);
          EXPECT_EQ(got_idx[at], arg) << name(dt) << " plane " << pl << ", output " << o;
          if (std::isnan(want))
            EXPECT_TRUE(std::isnan(got[at])) << name(dt) << " plane " << pl << ", output " << o;
          else
            EXPECT_EQ(got[at], want) << name(dt) << " plane " << pl << ", output " << o;
        }
    }
}

TEST(Pool, AvgPoolCountsPaddingOnlyWhenAskedTo) {
  Tensor x = from_vector<double>({2, 4, 6, 8}, {1, 1, 4});
  PoolOptions o;
  o.kernel = {3};
  o.stride = {3};
  o.padding = {1};
  // Windows: [pad, 2, 4] and [6, 8, pad].
  EXPECT_THAT(avg_pool(x, o).to_vector<double>(),
              Pointwise(DoubleNear(1e-12), {6.0 / 3, 14.0 / 3}));
  o.count_include_pad = false;
  EXPECT_THAT(avg_pool(x, o).to_vector<double>(), Pointwise(DoubleNear(1e-12), {3.0, 7.0}));
}

// ---- batch norm -----------------------------------------------------------------------------

TEST(GradcheckBatchNorm, TrainingWithWeightAndBias) {
  Tensor x = normal_leaf({3, 2, 2}, 40), w = normal_leaf({2}, 41), b = normal_leaf({2}, 42);
  EXPECT_EQ(gradcheck(
                [](const Tensors& in) {
                  return batch_norm(in[0], Tensor(), Tensor(), in[1], in[2], true);
                },
                {x, w, b}),
            "");
}

TEST(GradcheckBatchNorm, TrainingWithoutWeightOrBias) {
  Tensor x = normal_leaf({4, 3}, 43);
  EXPECT_EQ(gradcheck(
                [](const Tensors& in) {
                  return batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true);
                },
                {x}),
            "");
}

TEST(GradcheckBatchNorm, TrainingOfAPermutedInput) {
  Tensor x = as_leaf(permute(normal_leaf({2, 3, 2}, 44).detach(), {0, 2, 1}));  // [2, 2, 3]
  Tensor w = normal_leaf({2}, 45), b = normal_leaf({2}, 46);
  EXPECT_EQ(gradcheck(
                [](const Tensors& in) {
                  return batch_norm(in[0], Tensor(), Tensor(), in[1], in[2], true);
                },
                {x, w, b}),
            "");
}

TEST(GradcheckBatchNorm, EvalUsesTheRunningStatistics) {
  Tensor x = normal_leaf({3, 2, 2}, 47), w = normal_leaf({2}, 48), b = normal_leaf({2}, 49);
  Tensor rm = from_vector<double>({0.5, -1}, {2}), rv = from_vector<double>({2, 0.5}, {2});
  EXPECT_EQ(
      gradcheck(
          [rm, rv](const Tensors& in) { return batch_norm(in[0], rm, rv, in[1], in[2], false); },
          {x, w, b}),
      "");
}

TEST(GradcheckBatchNorm, FusedReluWithAResidual) {
  Tensor x = normal_leaf({3, 2, 2}, 50), r = normal_leaf({3, 2, 2}, 51);
  Tensor w = normal_leaf({2}, 52), b = normal_leaf({2}, 53);
  EXPECT_EQ(gradcheck(
                [](const Tensors& in) {
                  return batch_norm_relu(in[0], in[1], Tensor(), Tensor(), in[2], in[3], true);
                },
                {x, r, w, b}),
            "");
}

TEST(GradcheckBatchNorm, FusedReluWithoutAResidualInEval) {
  Tensor x = normal_leaf({3, 2, 2}, 54), w = normal_leaf({2}, 55), b = normal_leaf({2}, 56);
  Tensor rm = from_vector<double>({0.5, -1}, {2}), rv = from_vector<double>({2, 0.5}, {2});
  EXPECT_EQ(gradcheck(
                [rm, rv](const Tensors& in) {
                  return batch_norm_relu(in[0], Tensor(), rm, rv, in[1], in[2], false);
                },
                {x, w, b}),
            "");
}

// batch_norm_relu(x, r) gives relu(batch_norm(x) + r)'s values, gradients and running
// statistics bit for bit (f32), and its forward holds two tensors of x's size, not four.
TEST(BatchNorm, FusedReluEqualsTheUnfusedOpsBitForBit) {
  Generator gen(7);
  const Shape shape{4, 8, 6, 6};
  Tensor x0 = randn(shape, DType::f32, &gen), r0 = randn(shape, DType::f32, &gen);
  Tensor w0 = randn({8}, DType::f32, &gen), b0 = randn({8}, DType::f32, &gen);
  struct Run {
    std::vector<float> y, gx, gr, gw, gb, rm, rv;
    int64_t forward_peak;
  };
  auto run = [&](bool fused) {
    Tensor x = clone(x0), r = clone(r0), w = clone(w0), b = clone(b0);
    for (Tensor* t : {&x, &r, &w, &b}) t->requires_grad_();
    Tensor rm = zeros({8}), rv = ones({8});
    const int64_t before = memory_stats().live_bytes;
    reset_peak();
    Tensor y = fused ? batch_norm_relu(x, r, rm, rv, w, b, true)
                     : relu(batch_norm(x, rm, rv, w, b, true) + r);
    Run out;
    out.forward_peak = memory_stats().peak_bytes - before;
    backward(sum(y * y));
    out.y = y.to_vector<float>();
    out.gx = x.grad().to_vector<float>(), out.gr = r.grad().to_vector<float>();
    out.gw = w.grad().to_vector<float>(), out.gb = b.grad().to_vector<float>();
    out.rm = rm.to_vector<float>(), out.rv = rv.to_vector<float>();
    return out;
  };
  const Run fused = run(true), plain = run(false);
  EXPECT_EQ(fused.y, plain.y);
  EXPECT_EQ(fused.gx, plain.gx);
  EXPECT_EQ(fused.gr, plain.gr);
  EXPECT_EQ(fused.gw, plain.gw);
  EXPECT_EQ(fused.gb, plain.gb);
  EXPECT_EQ(fused.rm, plain.rm);
  EXPECT_EQ(fused.rv, plain.rv);
  const int64_t size = numel(shape) * 4;
  EXPECT_LT(fused.forward_peak, size + size / 2);  // the output (x is the caller's)
  EXPECT_GE(plain.forward_peak, 2 * size);
}

TEST(BatchNorm, FusedReluRefusesAResidualOfAnotherShapeByName) {
  Tensor x = zeros({2, 3, 4}), r = zeros({2, 3, 5});
  const std::string e = test_support::error_of(
      [&] { batch_norm_relu(x, r, Tensor(), Tensor(), Tensor(), Tensor(), true); });
  EXPECT_NE(e.find("batch_norm_relu: residual is"), std::string::npos) << e;
  EXPECT_NE(e.find("expected the same shape"), std::string::npos) << e;
}

TEST(BatchNorm, TrainingNormalisesEachChannelAndUpdatesRunningStatistics) {
  // Channel 0 holds {1, 3}, channel 1 holds {10, 30}: means 2 and 20, biased variances 1, 100.
  Tensor x = from_vector<double>({1, 10, 3, 30}, {2, 2});
  Tensor rm = zeros({2}, DType::f64), rv = ones({2}, DType::f64);
  Tensor y = batch_norm(x, rm, rv, Tensor(), Tensor(), true, 0.1, 0.0);
  EXPECT_THAT(y.to_vector<double>(), Pointwise(DoubleNear(1e-12), {-1.0, -1.0, 1.0, 1.0}));
  // r = 0.9 r + 0.1 stat, with the unbiased variance (2 and 200).
  EXPECT_THAT(rm.to_vector<double>(), Pointwise(DoubleNear(1e-12), {0.2, 2.0}));
  EXPECT_THAT(rv.to_vector<double>(), Pointwise(DoubleNear(1e-12), {0.9 + 0.2, 0.9 + 20.0}));
}

TEST(BatchNorm, EvalNormalisesWithTheRunningStatistics) {
  Tensor x = from_vector<double>({1, 10, 3, 30}, {2, 2});
  Tensor rm = from_vector<double>({1, 10}, {2}), rv = from_vector<double>({4, 25}, {2});
  Tensor y = batch_norm(x, rm, rv, Tensor(), Tensor(), false, 0.1, 0.0);
  EXPECT_THAT(y.to_vector<double>(), Pointwise(DoubleNear(1e-12), {0.0, 0.0, 1.0, 4.0}));
}

}  // namespace
}  // namespace spool
