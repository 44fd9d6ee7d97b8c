// The fused softmax + cross-entropy kernel (cross_entropy) against the same loss composed of ops
// (detail::cross_entropy_composite): values and gradients, every reduction, ignored targets,
// label smoothing and spatial dims; what it keeps for backward; NaN and infinite logits.
// Its gradient against finite differences is in test_gradcheck_nn.cpp, values against PyTorch
// in test_pytorch_ops.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/factory.h"
#include "ops/ops.h"

namespace spool {
namespace {

// max |a - b| / max(|b|, floor) over the elements.
double rel_diff(const Tensor& a, const Tensor& b, double floor) {
  const auto x = a.to_vector<double>(), y = b.to_vector<double>();
  EXPECT_EQ(x.size(), y.size());
  double worst = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i)
    worst = std::max(worst, std::abs(x[i] - y[i]) / std::max(std::abs(y[i]), floor));
  return worst;
}

Tensor targets_with_ignored(int64_t n, int64_t classes, uint64_t seed, int64_t ignore) {
  std::vector<int64_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    t[size_t(i)] =
        i % 4 == 1 ? ignore : int64_t((seed * 7919 + uint64_t(i) * 104729) % uint64_t(classes));
  return from_vector(t, {n});
}

TEST(CrossEntropyKernel, EqualsTheCompositionForwardAndBackward) {
  Generator gen(11);
  for (DType dt : {DType::f64, DType::f32}) {
    const double tol = dt == DType::f64 ? 1e-12 : 2e-6;
    for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
      for (double smoothing : {0.0, 0.2}) {
        for (int64_t ignore : {int64_t(-100), int64_t(3)}) {
          Tensor a = randn({29, 13}, dt, &gen).requires_grad_();
          Tensor b = a.detach().requires_grad_();
          const Tensor t = targets_with_ignored(29, 13, uint64_t(ignore + 200), ignore);
          const CrossEntropyOptions o{ignore, smoothing, r};
          Tensor la = cross_entropy(a, t, o), lb = detail::cross_entropy_composite(b, t, o);
          EXPECT_LE(rel_diff(la, lb, 1e-3), tol) << name(dt) << " smoothing " << smoothing;
          const Tensor g = r == Reduction::none ? randn({29}, dt, &gen) : Tensor();
          if (g.defined()) {
            backward(la, g);
            backward(lb, g);
          } else {
            backward(la);
            backward(lb);
          }
          EXPECT_LE(rel_diff(a.grad(), b.grad(), 1e-3), tol)
              << name(dt) << " smoothing " << smoothing << " ignore " << ignore;
        }
      }
    }
  }
}

TEST(CrossEntropyKernel, EqualsTheCompositionWithSpatialDims) {
  Generator gen(12);
  Tensor a = randn({3, 5, 4, 2}, DType::f64, &gen).requires_grad_();
  Tensor b = a.detach().requires_grad_();
  const Tensor t = reshape(targets_with_ignored(24, 5, 9, -100), {3, 4, 2});
  Tensor la = cross_entropy(a, t, {-100, 0.1, Reduction::mean});
  Tensor lb = detail::cross_entropy_composite(b, t, {-100, 0.1, Reduction::mean});
  EXPECT_NEAR(la.item(), lb.item(), 1e-12);
  backward(la);
  backward(lb);
  EXPECT_LE(rel_diff(a.grad(), b.grad(), 1e-3), 1e-12);
}

// The composed loss keeps the [N, C] log-probabilities for its backward; the kernel keeps the
// logits (alive anyway here) and a value per row.
TEST(CrossEntropyKernel, KeepsAValuePerRowBesideTheLogitsNotTheLogProbabilities) {
  Generator gen(13);
  Tensor x = randn({64, 1000}, DType::f32, &gen).requires_grad_();
  const Tensor t = targets_with_ignored(64, 1000, 5, -100);
  const int64_t before = memory_stats().live_bytes;
  Tensor loss = cross_entropy(x, t);
  const int64_t kept = memory_stats().live_bytes - before;
  EXPECT_LT(kept, 64 * 1000 * 4 / 10) << kept << " bytes kept for backward";
  EXPECT_GT(kept, 0);
}

TEST(CrossEntropyKernel, IgnoredRowsHaveZeroLossAndGradientWhateverTheirLogits) {
  const double inf = std::numeric_limits<double>::infinity();
  Tensor x = from_vector(std::vector<double>{inf, -inf, 1, 0.5, 2, -1}, {2, 3}).requires_grad_();
  const Tensor t = from_vector(std::vector<int64_t>{-100, 1}, {2});
  Tensor l = cross_entropy(x, t, {-100, 0.1, Reduction::none});
  const auto v = l.to_vector<double>();
  EXPECT_EQ(v[0], 0);
  EXPECT_TRUE(std::isfinite(v[1]));
  backward(sum(l));
  const auto g = x.grad().to_vector<double>();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(g[size_t(i)], 0) << i;
}

TEST(CrossEntropyKernel, ANaNLogitGivesANaNLossForItsRowOnly) {
  Tensor x = from_vector(std::vector<double>{std::nan(""), 1, 2, 0.5, 2, -1}, {2, 3});
  const Tensor t = from_vector(std::vector<int64_t>{2, 1}, {2});
  const auto a = cross_entropy(x, t, {-100, 0, Reduction::none}).to_vector<double>();
  const auto b =
      detail::cross_entropy_composite(x, t, {-100, 0, Reduction::none}).to_vector<double>();
  EXPECT_TRUE(std::isnan(a[0]));
  EXPECT_NEAR(a[1], b[1], 1e-12);
}

}  // namespace
}  // namespace spool
