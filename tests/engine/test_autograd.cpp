// The tape: recording, backward, gradient accumulation and the in-place safety checks.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>

#include "engine/allocator.h"
#include "engine/factory.h"
#include "engine/flops.h"
#include "nn/linear.h"
#include "ops/ops.h"
#include "tests/support/helpers.h"

using spool::test_support::error_of;

namespace spool {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

Tensor leaf(const std::vector<double>& v, const Shape& shape) {
  Tensor t = from_vector<double>(v, shape);
  t.requires_grad_();
  return t;
}

// A parameter's first gradient of a step is adopted, not copied, when nothing else can see it:
// the backward's peak holds one gradient-sized buffer, not two. Gradients that alias (x + x
// hands the same tensor to both inputs) are still copied, and add up right.
// The tape's entries are what the planner's profiles read: each op in recording order, with its
// forward's FLOPs (StageCost::flops) and the bytes it saves for backward.
TEST(Tape, EntriesListEachOpInOrderWithItsFlopsAndSavedBytes) {
  Generator gen(1);
  nn::Linear l1(8, 16, true, &gen), l2(16, 4, true, &gen);
  Tensor x = randn({5, 8}, DType::f32, &gen);
  Tensor y = from_vector(std::vector<int64_t>{0, 1, 2, 3, 0});
  Tape& tape = Tape::current();
  tape.clear();
  Tensor loss = cross_entropy(l2.forward(relu(l1.forward(x))), y);
  const auto entries = tape.entries();
  ASSERT_GE(entries.size(), 6u);
  // The first linear: matmul, add bias; then relu, which saves its output.
  int64_t mm = -1, relu_at = -1;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i]->op == "matmul" && mm < 0) mm = int64_t(i);
    if (entries[i]->op == "relu") relu_at = int64_t(i);
  }
  ASSERT_GE(mm, 0);
  ASSERT_GT(relu_at, mm);
  EXPECT_EQ(entries[size_t(mm)]->cost.flops, 2.0 * 5 * 16 * 8);
  EXPECT_EQ(entries[size_t(relu_at)]->saved_bytes(), 5 * 16 * 4);
  EXPECT_EQ(entries[size_t(relu_at)]->cost.flops, 5.0 * 16) << "estimated: one per output element";
  for (size_t i = 1; i < entries.size(); ++i) EXPECT_GT(entries[i]->seq, entries[i - 1]->seq);
  backward(loss);  // the graph is intact
  EXPECT_TRUE(l1.weight.grad().defined());
  tape.clear();
}

TEST(Tape, ForwardFlopsSumTheCostsOfWhatTheForwardRecordsAlone) {
  Generator gen(1);
  Tensor w = randn({8, 16}, DType::f32, &gen), x = randn({5, 8}, DType::f32, &gen);
  w.requires_grad_();
  const Tensor earlier = relu(matmul(x, w));  // recorded before: not counted
  const Tensor x2 = x * 2.0;                  // no input needs a gradient: nothing recorded
  // matmul 2 x 5 x 16 x 8, then relu one per output element.
  EXPECT_EQ(forward_flops([&] { return relu(matmul(x2, w)); }), 2.0 * 5 * 16 * 8 + 5 * 16);
  EXPECT_EQ(forward_flops([&] { return x2 + 1.0; }), 0.0);
  NoGrad no_grad;
  EXPECT_EQ(forward_flops([&] { return matmul(x, w); }), 0.0);
}

TEST(Autograd, FirstLeafGradientIsAdoptedWithoutACopy) {
  const int64_t n = 1 << 18;  // 2 MiB of f64
  Tensor w = zeros({n}, DType::f64);
  w.requires_grad_();
  Tensor loss = sum(w * 3.0);
  const int64_t before = memory_stats().live_bytes;
  reset_peak();
  backward(loss);
  const int64_t grad_bytes = n * 8;
  EXPECT_LT(memory_stats().peak_bytes - before, grad_bytes * 3 / 2);
  EXPECT_EQ(w.grad().to_vector<double>()[size_t(n - 1)], 3.0);
  Tensor x = leaf({1, 2}, {2});
  backward(sum(x + x));
  EXPECT_THAT(x.grad().to_vector<double>(), ElementsAre(2, 2));
  backward(sum(x * 5.0));  // accumulates into the adopted or copied buffer
  EXPECT_THAT(x.grad().to_vector<double>(), ElementsAre(7, 7));
}

TEST(Autograd, BackwardGivesTheGradientOfASimpleProduct) {
  Tensor x = leaf({1, 2, 3}, {3});
  Tensor w = leaf({4, 5, 6}, {3});
  backward(sum(x * w));
  EXPECT_THAT(x.grad().to_vector<double>(), ElementsAre(4, 5, 6));
  EXPECT_THAT(w.grad().to_vector<double>(), ElementsAre(1, 2, 3));
}

TEST(Autograd, GradsAccumulateAcrossTwoBackwardCalls) {
  Tensor x = leaf({1, 2, 3}, {3});
  backward(sum(x * 3.0));
  EXPECT_THAT(x.grad().to_vector<double>(), ElementsAre(3, 3, 3));
  backward(sum(x * x));  // adds 2x
  EXPECT_THAT(x.grad().to_vector<double>(), ElementsAre(5, 7, 9));
}

TEST(Autograd, TheGradReadyHookReportsEachLeafOnceItsGradientIsComplete) {
  // w is used by two ops, one early and one late in the graph; b by one. Each is reported once,
  // when every edge to it has been passed, with its whole gradient in .grad.
  Tensor x = leaf({1, 2, 3}, {3});
  Tensor w = leaf({4, 5, 6}, {3});
  Tensor b = leaf({1, 1, 1}, {3});
  Tensor h = x * w + b;
  Tensor y = sum(exp(h * 0.1) * w);
  std::vector<std::pair<const TensorImpl*, std::vector<double>>> reports;
  GradReadyHook before = set_grad_ready_hook(
      [&](TensorImpl& t) { reports.emplace_back(&t, Tensor(t.grad).to_vector<double>()); });
  EXPECT_FALSE(before);
  backward(y);
  EXPECT_TRUE(set_grad_ready_hook({}));  // the hook was ours; now removed
  EXPECT_FALSE(set_grad_ready_hook({}));
  ASSERT_EQ(reports.size(), 3u);
  std::map<const TensorImpl*, std::vector<double>> got(reports.begin(), reports.end());
  for (const Tensor& t : {x, w, b}) {
    ASSERT_EQ(got.count(t.impl_ptr().get()), 1u);
    EXPECT_EQ(got[t.impl_ptr().get()], t.grad().to_vector<double>());
  }
  // w's gradient has both terms: exp(h / 10) + w exp(h / 10) x / 10.
  const auto gw = w.grad().to_vector<double>();
  for (int i = 0; i < 3; ++i) {
    const double xi = i + 1, wi = i + 4, e = std::exp((xi * wi + 1) * 0.1);
    EXPECT_NEAR(gw[size_t(i)], e + wi * e * xi * 0.1, 1e-12);
  }
  // Without a hook nothing is reported.
  reports.clear();
  backward(sum(x * w));
  EXPECT_TRUE(reports.empty());
}

TEST(Autograd, ASharedInputUsedTwiceGetsBothContributions) {
  Tensor x = leaf({1, -2, 0.5}, {3});
  backward(sum(x * x + x));  // d/dx = 2x + 1
  EXPECT_THAT(x.grad().to_vector<double>(), ElementsAre(3, -3, 2));
}

TEST(Autograd, AnIntermediateUsedByTwoBranchesSumsTheirGradients) {
  Tensor x = leaf({2}, {1});
  Tensor e = exp(x);
  backward(sum(e * 3.0 + e * e));  // d/dx = 3 e^x + 2 e^{2x}
  const double ex = std::exp(2.0);
  EXPECT_NEAR(x.grad().item(), 3 * ex + 2 * ex * ex, 1e-9);
}

TEST(Autograd, AnInputNotRequiringGradGetsNoGrad) {
  Tensor x = leaf({1, 2}, {2});
  Tensor c = from_vector<double>({3, 4}, {2});
  backward(sum(x * c));
  EXPECT_TRUE(x.grad().defined());
  EXPECT_FALSE(c.grad().defined());
  EXPECT_FALSE(c.requires_grad());
}

TEST(Autograd, OpsOnTensorsNotRequiringGradRecordNothing) {
  Tensor a = ones({2}, DType::f64), b = ones({2}, DType::f64);
  Tensor y = a + b;
  EXPECT_FALSE(y.requires_grad());
  EXPECT_TRUE(y.is_leaf());
}

TEST(Autograd, ResultsOfRecordedOpsRequireGradAndAreNotLeaves) {
  Tensor x = leaf({1}, {1});
  Tensor y = exp(x);
  EXPECT_TRUE(y.requires_grad());
  EXPECT_FALSE(y.is_leaf());
  ASSERT_NE(y.grad_fn(), nullptr);
  EXPECT_EQ(y.grad_fn()->op, "exp");
}

TEST(Autograd, NoGradDisablesRecording) {
  Tensor x = leaf({1, 2}, {2});
  Tensor y;
  {
    NoGrad guard;
    EXPECT_FALSE(grad_enabled());
    y = exp(x) * 2.0;
  }
  EXPECT_TRUE(grad_enabled());
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.grad_fn(), nullptr);
}

TEST(Autograd, NestedNoGradRestoresThePreviousState) {
  {
    NoGrad outer;
    { NoGrad inner; }
    EXPECT_FALSE(grad_enabled());
  }
  EXPECT_TRUE(grad_enabled());
}

TEST(Autograd, BackwardOnANonScalarWithoutAGradientThrows) {
  Tensor x = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor y = x * 2.0;
  const std::string msg = error_of([&] { backward(y); });
  EXPECT_THAT(msg, HasSubstr("backward"));
  EXPECT_THAT(msg, HasSubstr("[2, 3]"));
}

TEST(Autograd, BackwardOnANonScalarWithAnExplicitGradientWeighsEachOutput) {
  Tensor x = leaf({1, 2, 3}, {3});
  Tensor y = x * x;
  backward(y, from_vector<double>({1, 10, 100}, {3}));  // 2x * g
  EXPECT_THAT(x.grad().to_vector<double>(), ElementsAre(2, 40, 600));
}

TEST(Autograd, BackwardOnATensorThatDoesNotRequireGradThrows) {
  Tensor y = sum(ones({3}, DType::f64));
  EXPECT_THROW(backward(y), Error);
}

TEST(Autograd, ASecondBackwardOverAFreedGraphThrowsMentioningRetainGraph) {
  Tensor x = leaf({1, 2}, {2});
  Tensor loss = sum(exp(x));
  backward(loss);
  const std::string msg = error_of([&] { backward(loss); });
  EXPECT_THAT(msg, HasSubstr("retain_graph"));
}

TEST(Autograd, RetainGraphAllowsASecondBackward) {
  Tensor x = leaf({0, 1}, {2});
  Tensor loss = sum(exp(x));
  backward(loss, {}, /*retain_graph=*/true);
  EXPECT_NO_THROW(backward(loss));
  // Two passes of d/dx sum(e^x) = e^x.
  EXPECT_NEAR(x.grad().at({0}), 2.0, 1e-12);
  EXPECT_NEAR(x.grad().at({1}), 2.0 * std::exp(1.0), 1e-12);
}

TEST(Autograd, ModifyingASavedTensorInPlaceMakesBackwardThrow) {
  Tensor a = leaf({0.5, 1.5}, {2});
  Tensor b = exp(a);  // exp saves its output
  {
    NoGrad guard;
    add_(b, ones_like(b));
  }
  const std::string msg = error_of([&] { backward(sum(b)); });
  EXPECT_THAT(msg, HasSubstr("modified in place"));
  EXPECT_THAT(msg, HasSubstr("exp"));
}

TEST(Autograd, ModifyingATensorThatWasNotSavedIsAllowed) {
  Tensor a = leaf({0.5, 1.5}, {2});
  Tensor b = a + 1.0;  // add saves nothing
  {
    NoGrad guard;
    mul_(b, 2.0);
  }
  backward(sum(b));
  EXPECT_THAT(a.grad().to_vector<double>(), ElementsAre(1, 1));
}

TEST(Autograd, InPlaceOpOnATensorRequiringGradInGradModeThrows) {
  Tensor w = leaf({1, 2}, {2});
  EXPECT_THROW(add_(w, ones_like(w)), Error);
  EXPECT_THROW(mul_(w, 2.0), Error);
  EXPECT_THROW(fill_(w, 0.0), Error);
  EXPECT_THROW(copy_(w, zeros_like(w)), Error);
  EXPECT_THAT(w.to_vector<double>(), ElementsAre(1, 2));  // and leaves it untouched
}

TEST(Autograd, InPlaceOpOnATensorRequiringGradIsAllowedUnderNoGrad) {
  Tensor w = leaf({1, 2}, {2});
  {
    NoGrad guard;
    add_(w, from_vector<double>({0.5, 0.5}, {2}), -2.0);
  }
  EXPECT_THAT(w.to_vector<double>(), ElementsAre(0, 1));
}

TEST(Autograd, TapeEntriesListOpNamesInRecordingOrder) {
  Tape::current().clear();
  Tensor x = leaf({1, 2}, {2});
  Tensor y = exp(x);
  Tensor z = y * y;
  Tensor loss = sum(z);
  std::vector<std::string> names;
  for (const auto& n : Tape::current().entries()) names.push_back(n->op);
  EXPECT_THAT(names, ElementsAre("exp", "mul", "sum"));
}

TEST(Autograd, TapeEntriesOfDeadTensorsDisappear) {
  Tape::current().clear();
  Tensor x = leaf({1, 2}, {2});
  { Tensor tmp = tanh(x); }
  Tensor keep = exp(x);
  std::vector<std::string> names;
  for (const auto& n : Tape::current().entries()) names.push_back(n->op);
  EXPECT_THAT(names, ElementsAre("exp"));
}

TEST(Autograd, TapeEntriesHaveIncreasingSequenceNumbersAndEdgesToTheirInputs) {
  Tape::current().clear();
  Tensor x = leaf({1, 2}, {2});
  Tensor y = exp(x);
  Tensor z = log(y);
  auto entries = Tape::current().entries();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_LT(entries[0]->seq, entries[1]->seq);
  ASSERT_EQ(entries[1]->next.size(), 1u);
  EXPECT_EQ(entries[1]->next[0].node, entries[0]);
  EXPECT_EQ(entries[0]->next[0].leaf, x.impl_ptr());
}

TEST(Autograd, BackwardOnALeafSeedsItsOwnGradient) {
  Tensor x = leaf({5}, {});
  backward(x);
  EXPECT_EQ(x.grad().item(), 1.0);
}

TEST(Autograd, RequiresGradCanOnlyBeSetOnFloatLeaves) {
  Tensor i = zeros({2}, DType::i64);
  EXPECT_THROW(i.requires_grad_(), Error);
  Tensor x = leaf({1}, {1});
  Tensor y = exp(x);
  EXPECT_THROW(y.requires_grad_(), Error);
}

TEST(Autograd, GradientOfABroadcastInputIsSummedToItsShape) {
  Tensor a = leaf({1, 2, 3}, {3});
  Tensor b = leaf({10, 20}, {2, 1});
  backward(sum(a * b));  // [2, 3]
  EXPECT_THAT(a.grad().to_vector<double>(), ElementsAre(30, 30, 30));
  EXPECT_EQ(b.grad().shape(), (Shape{2, 1}));
  EXPECT_THAT(b.grad().to_vector<double>(), ElementsAre(6, 6));
}

TEST(Autograd, TheLeafGradientDoesNotAliasAnotherTensor) {
  Tensor x = leaf({1, 2}, {2});
  Tensor g = from_vector<double>({3, 4}, {2});
  backward(clone(x), g);  // clone passes the incoming gradient through unchanged
  g.set_at({0}, 100);
  EXPECT_EQ(x.grad().at({0}), 3);
}

// backward() owns the roots and gradients it is given: handed over with std::move, a gradient
// nothing else holds is the node's to overwrite (relu's backward writes its own over it), so
// the backward allocates no new buffer; a gradient the caller still holds is left alone.
TEST(Autograd, AHandedOverGradientIsOverwrittenAndOneStillHeldIsNot) {
  const int64_t n = 1 << 16;
  Tensor x = from_vector<double>(std::vector<double>(size_t(n), -1.0), {n});
  x.set_at({0}, 2.0);
  x.requires_grad_();
  auto run = [&](bool hand_over) {
    x.impl().grad.reset();
    Tensor y = relu(x);
    Tensor seed = full({n}, 3.0, DType::f64);
    const int64_t before = memory_stats().live_bytes;
    reset_peak();
    Tensors roots{y}, seeds;
    seeds.push_back(hand_over ? std::move(seed) : seed);
    y = Tensor();
    backward(std::move(roots), std::move(seeds));
    if (!hand_over) EXPECT_EQ(seed.to_vector<double>()[1], 3.0);  // the caller's, unchanged
    return memory_stats().peak_bytes - before;
  };
  const int64_t kept = run(false);
  EXPECT_EQ(x.grad().to_vector<double>()[0], 3.0);
  EXPECT_EQ(x.grad().to_vector<double>()[1], 0.0);
  const int64_t handed = run(true);
  EXPECT_EQ(x.grad().to_vector<double>()[0], 3.0);
  EXPECT_EQ(x.grad().to_vector<double>()[1], 0.0);
  EXPECT_GE(kept, n * 8);
  EXPECT_LT(handed, n * 8 / 2);
}

TEST(Autograd, SoleOwnerNeedsTheOnlyHandleToAWholeBuffer) {
  Tensor t = zeros({4, 4});
  EXPECT_TRUE(sole_owner(t));
  Tensor copy = t;
  EXPECT_FALSE(sole_owner(t));
  copy = Tensor();
  EXPECT_TRUE(sole_owner(t));
  Tensor view = t.detach();  // another handle on the storage
  EXPECT_FALSE(sole_owner(t));
  view = Tensor();
  EXPECT_FALSE(sole_owner(narrow(zeros({4, 4}), 0, 1, 2)));  // part of its buffer
  EXPECT_FALSE(sole_owner(Tensor()));
}

}  // namespace
}  // namespace spool
