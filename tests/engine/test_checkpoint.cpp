// checkpoint(): the same gradients as the plain run (bit for bit on the CPU), dropout replayed
// exactly, nesting, and intermediates freed after the forward.
#include <gtest/gtest.h>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/checkpoint.h"
#include "engine/factory.h"
#include "models/gpt.h"
#include "nn/linear.h"
#include "ops/ops.h"

using namespace spool;

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
