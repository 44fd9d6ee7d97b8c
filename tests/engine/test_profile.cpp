// profile_step: the graph of one step with sizes, lifetimes and costs.
#include <gtest/gtest.h>

#include "engine/factory.h"
#include "engine/profile.h"
#include "nn/linear.h"
#include "ops/ops.h"

using namespace spool;

TEST(Profile, ListsEveryEntryWithBytesLifetimesAndCosts) {
  Generator gen(1);
  nn::Linear l1(8, 16, true, &gen), l2(16, 4, true, &gen);
  Tensor x = randn({5, 8}, DType::f32, &gen);
  Tensor y = from_vector(std::vector<int64_t>{0, 1, 2, 3, 0});
  StepProfile p = profile_step([&] { return cross_entropy(l2.forward(relu(l1.forward(x))), y); });
  ASSERT_GE(p.ops.size(), 6u);
  // The first linear: transpose (a view), matmul, add bias; then relu.
  int64_t mm = -1, relu_at = -1;
  for (size_t i = 0; i < p.ops.size(); ++i) {
    if (p.ops[i].op == "matmul" && mm < 0) mm = int64_t(i);
    if (p.ops[i].op == "relu") relu_at = int64_t(i);
  }
  ASSERT_GE(mm, 0);
  ASSERT_GT(relu_at, mm);
  EXPECT_EQ(p.ops[size_t(mm)].flops, 2.0 * 5 * 16 * 8);
  EXPECT_EQ(p.ops[size_t(mm)].output_bytes, 5 * 16 * 4);
  // relu saves its output and reads the bias add, whose output it is the last to read.
  const OpProfile& r = p.ops[size_t(relu_at)];
  EXPECT_EQ(r.saved_bytes, 5 * 16 * 4);
  ASSERT_EQ(r.reads.size(), 1u);
  EXPECT_EQ(p.ops[size_t(r.reads[0])].op, "add");
  EXPECT_EQ(p.ops[size_t(r.reads[0])].last_read, relu_at);
  EXPECT_EQ(p.ops.back().last_read, -1) << "the loss is read by nothing";
  int64_t saved = 0;
  for (const auto& o : p.ops) {
    saved += o.saved_bytes;
    EXPECT_GE(o.forward_ms, 0);
  }
  EXPECT_EQ(p.saved_bytes(), saved);
  EXPECT_NE(p.table().find("relu"), std::string::npos);
  backward(p.loss);  // the graph is intact
  EXPECT_TRUE(l1.weight.grad().defined());
}
