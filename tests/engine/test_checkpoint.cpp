// checkpoint(): the same gradients as the plain run (bit for bit on the CPU), dropout replayed
// exactly, nesting, and intermediates freed after the forward; state put back after replays;
// checkpoint_in_parts, and the channel ranges of convolutions and BatchNorm it is used with.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/checkpoint.h"
#include "engine/factory.h"
#include "models/gpt.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "nn/norm.h"
#include "ops/gradcheck.h"
#include "ops/ops.h"
#include "tests/support/helpers.h"

using namespace spool;
using spool::test_support::error_of;

namespace {

struct TwoBlocks {
  Generator gen{11};
  nn::Linear a{16, 32, true, &gen}, b{32, 32, true, &gen}, c{32, 4, true, &gen};
  Tensor block1(const Tensor& x) { return dropout(gelu(a.forward(x)), 0.3, true, &gen); }
  Tensor block2(const Tensor& x) { return dropout(tanh(b.forward(x)), 0.2, true, &gen); }
  Tensors params() {
    Tensors p;
    for (auto* m : {&a, &b, &c})
      for (auto& t : m->parameters()) p.push_back(t);
    return p;
  }
};

std::vector<std::vector<float>> grads_of(const Tensors& params) {
  std::vector<std::vector<float>> out;
  for (const auto& p : params) out.push_back(p.grad().to_vector<float>());
  return out;
}

}  // namespace

TEST(Checkpoint, GradientsAreBitIdenticalToThePlainRunWithDropout) {
  Generator data(1);
  Tensor x = randn({8, 16}, DType::f32, &data);
  TwoBlocks plain, ckpt;  // same seeds, same weights
  plain.gen.manual_seed(5);
  ckpt.gen.manual_seed(5);

  backward(sum(plain.c.forward(plain.block2(plain.block1(x)))));
  Tensor h = checkpoint([&](const Tensor& t) { return ckpt.block1(t); }, x, {&ckpt.gen});
  h = checkpoint([&](const Tensor& t) { return ckpt.block2(t); }, h, {&ckpt.gen});
  backward(sum(ckpt.c.forward(h)));
  EXPECT_EQ(grads_of(plain.params()), grads_of(ckpt.params()));
  EXPECT_EQ(plain.gen.state(), ckpt.gen.state()) << "the replay must leave the generator as it was";
}

TEST(Checkpoint, NestedCheckpointsGiveTheSameGradients) {
  Generator data(2);
  Tensor x = randn({4, 16}, DType::f32, &data).requires_grad_();
  TwoBlocks plain, ckpt;
  plain.gen.manual_seed(9);
  ckpt.gen.manual_seed(9);
  backward(sum(plain.c.forward(plain.block2(plain.block1(x)))));
  auto gx_plain = x.grad().to_vector<float>();
  x.impl().grad.reset();
  Tensor y = checkpoint(
      [&](const Tensor& t) {
        Tensor inner = checkpoint([&](const Tensor& u) { return ckpt.block1(u); }, t, {&ckpt.gen});
        return ckpt.block2(inner);
      },
      x, {&ckpt.gen});
  backward(sum(ckpt.c.forward(y)));
  EXPECT_EQ(grads_of(plain.params()), grads_of(ckpt.params()));
  EXPECT_EQ(x.grad().to_vector<float>(), gx_plain);
}

TEST(Checkpoint, KeepsOnlyItsInputsAfterTheForward) {
  Generator g(3);
  models::Gpt model({256, 64, 64, 2, 2, 0, true}, &g);
  Tensor idx = zeros({4, 64}, DType::i64);
  const int64_t base = memory_stats().live_bytes;
  Tensor plain = model.forward(idx);
  const int64_t plain_bytes = memory_stats().live_bytes - base;
  plain = Tensor();
  const int64_t base2 = memory_stats().live_bytes;
  Tensor ck = checkpoint([&](const Tensor& t) { return model.forward(t); }, idx);
  const int64_t ckpt_bytes = memory_stats().live_bytes - base2;
  // The checkpointed forward holds its output only (the token ids are an input already held).
  EXPECT_EQ(ckpt_bytes, int64_t(ck.nbytes()));
  EXPECT_GT(plain_bytes, 4 * ckpt_bytes);
}

// state: BatchNorm's running statistics, updated by the forward, are put back after the replay,
// so a checkpointed step updates them once, as the plain step does.
TEST(Checkpoint, StateUpdatedInTheForwardIsPutBackAfterTheReplay) {
  Generator gen(5);
  Tensor x = randn({4, 3, 5, 5}, DType::f32, &gen);
  auto run = [&](bool ckpt) {
    nn::BatchNorm2d bn(3);
    bn.train();
    Tensor xl = clone(x);
    xl.requires_grad_();
    Tensors state = {bn.running_mean, bn.running_var, bn.num_batches_tracked};
    auto f = [&bn](const Tensor& t) { return tanh(bn.forward(t)); };
    Tensor y = ckpt ? checkpoint(f, xl, {}, state) : f(xl);
    backward(sum(y));
    return std::tuple{bn.running_mean.to_vector<float>(), bn.running_var.to_vector<float>(),
                      bn.num_batches_tracked.item(), xl.grad().to_vector<float>()};
  };
  EXPECT_EQ(run(true), run(false));
}

// checkpoint_in_parts: the stem of a ResNet (conv, BatchNorm + relu, max pool) run whole and
// replayed in four channel groups gives the plain BatchNorm gradients and running statistics
// bit for bit, and the convolution's weight gradient to BLAS's rounding (a group's is a GEMM
// with fewer rows, which OpenBLAS may sum in another order); from the forward to the end of the
// backward it holds one group's intermediates instead of the whole stem's.
TEST(CheckpointInParts, ChannelGroupsGiveThePlainGradientsWithLessMemory) {
  Generator gen(9);
  Tensor x = randn({2, 3, 40, 40}, DType::f32, &gen);
  struct Result {
    std::vector<std::vector<float>> grads;
    std::vector<float> rm;
    double tracked;
    int64_t backward_peak;
  };
  auto run = [&](int groups) {
    Generator g(4);
    nn::Conv2d conv({.in_channels = 3,
                     .out_channels = 16,
                     .kernel = {7},
                     .stride = {2},
                     .padding = {3},
                     .bias = false},
                    &g);
    nn::BatchNorm2d bn(16);
    auto pool = [](const Tensor& t) {
      return max_pool(t, {.kernel = {3}, .stride = {2}, .padding = {1}});
    };
    auto whole = [&](const Tensor& t) { return pool(bn.forward_relu(conv.forward(t))); };
    std::vector<std::function<Tensor(const Tensor&)>> parts;
    const int64_t count = 16 / groups;
    for (int k = 0; k < groups; ++k)
      parts.push_back([&, k, count](const Tensor& t) {
        return pool(bn.forward_channels(conv.forward_channels(t, k * count, count), k * count,
                                        count, true));
      });
    const int64_t before = memory_stats().live_bytes;
    Tensor y = groups == 1
                   ? whole(x)
                   : checkpoint_in_parts(whole, parts, 1, x,
                                         {bn.running_mean, bn.running_var, bn.num_batches_tracked});
    Tensor loss = sum(y * y);
    reset_peak();  // from here: what the forward kept, and the backward's own
    backward(loss);
    Result r;
    r.backward_peak = memory_stats().peak_bytes - before;
    for (const Tensor& p : {conv.weight, bn.weight, bn.bias})
      r.grads.push_back(p.grad().to_vector<float>());
    r.rm = bn.running_mean.to_vector<float>();
    r.tracked = bn.num_batches_tracked.item();
    return r;
  };
  const Result plain = run(1), parts = run(4);
  ASSERT_EQ(parts.grads[0].size(), plain.grads[0].size());
  float scale = 0;  // the weight gradient's largest entry: sums of thousands of f32 products
  for (float v : plain.grads[0]) scale = std::max(scale, std::abs(v));
  for (size_t e = 0; e < plain.grads[0].size(); ++e)
    EXPECT_NEAR(parts.grads[0][e], plain.grads[0][e], 1e-5 * scale) << "element " << e;
  EXPECT_EQ(parts.grads[1], plain.grads[1]);
  EXPECT_EQ(parts.grads[2], plain.grads[2]);
  EXPECT_EQ(parts.rm, plain.rm);
  EXPECT_EQ(parts.tracked, 1);
  // The plain stem keeps its conv output, the normalised output and the pool's indices (each
  // about conv_out) until its backward; the parts keep the pooled output, and replay a quarter.
  const int64_t conv_out = 2 * 16 * 20 * 20 * 4;
  EXPECT_GT(plain.backward_peak, 3 * conv_out);
  EXPECT_LT(parts.backward_peak, 2 * conv_out);
}

TEST(CheckpointInParts, PartsThatDoNotCoverTheOutputAreAnError) {
  Tensor x = zeros({2, 4});
  x.requires_grad_();
  std::vector<std::function<Tensor(const Tensor&)>> parts = {
      [](const Tensor& t) { return narrow(t, 1, 0, 2) * 2.0; }};
  Tensor y = checkpoint_in_parts([](const Tensor& t) { return t * 2.0; }, parts, 1, x);
  const std::string e = error_of([&] { backward(sum(y)); });
  EXPECT_NE(e.find("checkpoint_in_parts: the parts cover 2 of 4 along dim 1"), std::string::npos)
      << e;
}

TEST(ChannelRanges, ConvAndBatchNormChannelRangesAreSlicesOfTheWholeAndCheckTheirRange) {
  Generator g(6);
  nn::Conv2d conv({.in_channels = 2, .out_channels = 6, .kernel = {3}, .padding = {1}}, &g);
  Tensor x = randn({2, 2, 5, 5}, DType::f32, &g);
  NoGrad no_grad;
  EXPECT_EQ(conv.forward_channels(x, 2, 3).to_vector<float>(),
            contiguous(narrow(conv.forward(x), 1, 2, 3)).to_vector<float>());
  EXPECT_NE(error_of([&] {
              conv.forward_channels(x, 4, 3);
            }).find("channels [4, 7) are not within the layer's 6 output channels"),
            std::string::npos);
  nn::BatchNorm2d bn(6);
  Tensor h = randn({2, 6, 3, 3}, DType::f32, &g);
  EXPECT_NE(error_of([&] {
              bn.forward_channels(narrow(h, 1, 0, 2), 0, 3);
            }).find("input has 2 channels, the channel range has 3"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              bn.forward_channels(h, 5, 2);
            }).find("channels [5, 7) are not within the layer's 6"),
            std::string::npos);
}

// The input's gradient flows through the parts (f64, against finite differences), a part that
// is not the matching slice of the whole is refused by name before anything is read from it,
// and under NoGrad the whole runs alone.
TEST(CheckpointInParts, InputGradientsPartMismatchesAndNoGrad) {
  auto whole = [](const Tensor& t) { return tanh(t) * t; };
  std::vector<std::function<Tensor(const Tensor&)>> parts = {[](const Tensor& t) {
                                                               Tensor a = narrow(t, 1, 0, 2);
                                                               return tanh(a) * a;
                                                             },
                                                             [](const Tensor& t) {
                                                               Tensor a = narrow(t, 1, 2, 3);
                                                               return tanh(a) * a;
                                                             }};
  Tensor x = from_vector<double>({0.3, -1.2, 0.8, 2.0, -0.4, 1.1, 0.05, -2.2, 0.6, 1.7}, {2, 5});
  x.requires_grad_();
  EXPECT_EQ(
      gradcheck([&](const Tensors& in) { return checkpoint_in_parts(whole, parts, 1, in[0]); },
                {x}),
      "");
  std::vector<std::function<Tensor(const Tensor&)>> wrong = {
      [](const Tensor& t) { return narrow(t, 0, 0, 1) * 2.0; },  // rows, not columns
      [](const Tensor& t) { return t * 2.0; }};
  Tensor y = checkpoint_in_parts([](const Tensor& t) { return t * 2.0; }, wrong, 1, x);
  const std::string e = error_of([&] { backward(sum(y)); });
  EXPECT_NE(e.find("checkpoint_in_parts: part 0 is"), std::string::npos) << e;
  EXPECT_NE(e.find("expected a slice from 0 along dim 1 of the output"), std::string::npos) << e;
  NoGrad no_grad;
  Tensor z = checkpoint_in_parts(whole, parts, 1, x);
  EXPECT_FALSE(z.requires_grad());
  EXPECT_EQ(z.to_vector<double>(), whole(x).to_vector<double>());
}

TEST(ChannelRanges, GroupedConvolutionsAreRefusedAndEvalUsesTheRangesStatistics) {
  Generator g(8);
  nn::Conv2d grouped({.in_channels = 4, .out_channels = 4, .kernel = {1}, .groups = 2}, &g);
  Tensor x = randn({1, 4, 3, 3}, DType::f32, &g);
  EXPECT_NE(error_of([&] {
              grouped.forward_channels(x, 0, 2);
            }).find("a grouped convolution (2 groups) mixes channel ranges"),
            std::string::npos);
  nn::BatchNorm2d bn(4);
  bn.eval();
  {
    NoGrad no_grad;
    copy_(bn.running_mean, from_vector<float>({0, 1, 2, 3}, {4}));
    copy_(bn.running_var, from_vector<float>({1, 4, 9, 16}, {4}));
  }
  Tensor h = randn({2, 4, 3, 3}, DType::f32, &g);
  NoGrad no_grad;
  EXPECT_EQ(bn.forward_channels(contiguous(narrow(h, 1, 1, 2)), 1, 2).to_vector<float>(),
            contiguous(narrow(bn.forward(h), 1, 1, 2)).to_vector<float>());
  EXPECT_EQ(bn.num_batches_tracked.item(), 0);
}

// relu_backward leaves a gradient its caller holds alone; only a backward function's
// overwriting variant writes over the one it was handed.
TEST(ReluBackward, TheCallersGradientIsNeverOverwritten) {
  Tensor y = from_vector<float>({1, 0, 2, -0.0f}, {4});
  Tensor g = from_vector<float>({5, 6, 7, 8}, {4});
  ASSERT_TRUE(sole_owner(g));
  Tensor r = relu_backward(y, g);
  EXPECT_EQ(r.to_vector<float>(), (std::vector<float>{5, 0, 7, 0}));
  EXPECT_EQ(g.to_vector<float>(), (std::vector<float>{5, 6, 7, 8}));
  EXPECT_NE(error_of([&] { relu_backward(y, zeros({3})); }).find("relu_backward: gradient is"),
            std::string::npos);
}

// grad(): the inputs' gradients come back, equal to backward()'s, and .grad is left as it was
// (here: a gradient from an earlier backward); a parameter the outputs reach accumulates as in
// backward(); an input that does not require grad or is not reached gets an undefined one.
TEST(Grad, ReturnsTheInputsGradientsAndLeavesTheirGradAsItWas) {
  Generator gen(3);
  Tensor w = randn({3, 4}, DType::f64, &gen).requires_grad_(true);
  Tensor x = randn({2, 3}, DType::f64, &gen).requires_grad_(true);
  Tensor unused = randn({5}, DType::f64, &gen).requires_grad_(true);
  Tensor frozen = randn({2, 4}, DType::f64, &gen);
  auto f = [&] { return sum(tanh(matmul(x, w)) * frozen); };

  backward(f());  // the reference: x.grad and w.grad from backward()
  const std::vector<double> gx_ref = x.grad().to_vector<double>();
  const std::vector<double> gw_ref = w.grad().to_vector<double>();

  // x.grad now holds gx_ref; grad() returns this backward's part alone and puts gx_ref back.
  Tensor y = f();
  const Tensors g = grad({y}, {ones_like(y)}, {x, frozen, unused});
  ASSERT_EQ(g.size(), 3u);
  EXPECT_EQ(g[0].to_vector<double>(), gx_ref);
  EXPECT_FALSE(g[1].defined()) << "frozen does not require grad";
  EXPECT_FALSE(g[2].defined()) << "unused is not reached";
  EXPECT_EQ(x.grad().to_vector<double>(), gx_ref) << "x.grad was put back";
  EXPECT_FALSE(unused.grad().defined());
  std::vector<double> twice = gw_ref;
  for (double& v : twice) v *= 2;
  EXPECT_EQ(w.grad().to_vector<double>(), twice) << "w, not an input, accumulated";

  Tensor z = f();
  EXPECT_THAT(error_of([&] { grad({z}, {ones_like(z)}, {z}); }), testing::HasSubstr("not a leaf"));
  EXPECT_THAT(error_of([&] { grad({z}, {}, {x}); }), testing::HasSubstr("1 outputs but 0"));
}

// ReplayScope: inside, the generators draw what they drew after `first` and the state may
// change; after, the generators continue where the step had them and the state is as before,
// also when the replay throws.
TEST(ReplayScope, PutsGeneratorsAndStateBackAlsoWhenTheReplayThrows) {
  Generator gen(9);
  Tensor state = from_vector(std::vector<float>{1, 2, 3});
  const RngSnapshot first({&gen});
  const std::vector<float> drawn = randn({4}, DType::f32, &gen).to_vector<float>();
  const std::vector<float> next = [&] {
    Generator copy(9);
    copy.set_state(gen.state());
    return randn({4}, DType::f32, &copy).to_vector<float>();
  }();
  const Tensors states = {state};
  {
    ReplayScope replay(&first, states);
    EXPECT_EQ(randn({4}, DType::f32, &gen).to_vector<float>(), drawn) << "the same draw";
    fill_(state, 7);
  }
  EXPECT_EQ(state.to_vector<float>(), (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(randn({4}, DType::f32, &gen).to_vector<float>(), next) << "where the step was";
  EXPECT_THROW(
      {
        ReplayScope replay(nullptr, states);
        fill_(state, 5);
        fail("a replay that throws");
      },
      Error);
  EXPECT_EQ(state.to_vector<float>(), (std::vector<float>{1, 2, 3}));
}
