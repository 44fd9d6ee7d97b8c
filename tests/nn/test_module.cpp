// nn::Module: names, state_dict order, strict loading that leaves the model untouched on failure,
// train/eval, and layer argument errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/autograd.h"
#include "engine/factory.h"
#include "models/resnet.h"
#include "nn/container.h"
#include "nn/conv.h"
#include "nn/layers.h"
#include "nn/linear.h"
#include "nn/norm.h"
#include "ops/ops.h"
#include "tests/support/helpers.h"

using namespace spool;
using spool::test_support::error_of;
using ::testing::HasSubstr;

namespace {

std::vector<std::string> names(const nn::NamedTensors& ts) {
  std::vector<std::string> out;
  for (const auto& [n, t] : ts) out.push_back(n);
  return out;
}

}  // namespace

TEST(Module, StateDictListsParametersThenBuffersThenChildrenWithDottedNames) {
  nn::Sequential seq;
  seq.push_back(std::make_shared<nn::Linear>(3, 4));
  seq.push_back(std::make_shared<nn::BatchNorm1d>(4));
  EXPECT_EQ(names(seq.state_dict()),
            (std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                      "1.running_var", "1.num_batches_tracked"}));
  EXPECT_EQ(names(seq.named_parameters()).size(), 4u);
  EXPECT_EQ(seq.num_parameters(), 3 * 4 + 4 + 4 + 4);
}

TEST(Module, LoadStateDictCopiesValuesByName) {
  nn::Linear a(3, 2), b(3, 2);
  b.load_state_dict(a.state_dict());
  EXPECT_EQ(b.weight.to_vector<float>(), a.weight.to_vector<float>());
  EXPECT_EQ(b.bias.to_vector<float>(), a.bias.to_vector<float>());
}

TEST(Module, FailedLoadNamesEveryProblemAndChangesNothing) {
  nn::Linear model(3, 2);
  const auto before = model.weight.to_vector<float>();
  nn::NamedTensors bad = {{"weight", zeros({2, 3})}, {"bias", zeros({5})}, {"extra", zeros({1})}};
  std::string msg = error_of([&] { model.load_state_dict(bad); });
  EXPECT_THAT(msg, HasSubstr("'bias' is f32[5] in the file, f32[2] in the Linear"));
  EXPECT_THAT(msg, HasSubstr("unexpected 'extra'"));
  EXPECT_THAT(msg, HasSubstr("nothing was loaded"));
  EXPECT_EQ(model.weight.to_vector<float>(), before) << "weight was written despite the error";
  std::string missing = error_of([&] { model.load_state_dict({{"weight", zeros({2, 3})}}); });
  EXPECT_THAT(missing, HasSubstr("missing 'bias'"));
  EXPECT_EQ(model.weight.to_vector<float>(), before);
}

TEST(Module, NonStrictLoadIgnoresUnknownAndKeepsMissing) {
  nn::Linear model(3, 2);
  const auto bias = model.bias.to_vector<float>();
  model.load_state_dict({{"weight", ones({2, 3})}, {"other", zeros({7})}}, /*strict=*/false);
  EXPECT_EQ(model.weight.to_vector<float>(), std::vector<float>(6, 1.0f));
  EXPECT_EQ(model.bias.to_vector<float>(), bias);
}

TEST(Module, EvalSwitchesDropoutOffAndBatchNormToRunningStatistics) {
  nn::Sequential seq;
  seq.push_back(std::make_shared<nn::Dropout>(0.5));
  Tensor x = ones({100});
  seq.eval();
  EXPECT_EQ(seq.forward(x).to_vector<float>(), x.to_vector<float>());
  seq.train();
  auto y = seq.forward(x).to_vector<float>();
  EXPECT_TRUE(std::any_of(y.begin(), y.end(), [](float v) { return v == 0; }));
  EXPECT_TRUE(std::any_of(y.begin(), y.end(), [](float v) { return v == 2; }));

  nn::BatchNorm2d bn(2);
  Tensor img = randn({4, 2, 3, 3}) * 3.0 + 5.0;
  bn.forward(img);  // training: running stats move toward the batch's
  EXPECT_GT(bn.running_mean.at({0}), 0.3);
  EXPECT_EQ(bn.num_batches_tracked.item(), 1);
  bn.eval();
  Tensor before = clone(bn.running_mean);
  bn.forward(img);
  EXPECT_EQ(bn.running_mean.to_vector<float>(), before.to_vector<float>());
  EXPECT_EQ(bn.num_batches_tracked.item(), 1);
}

TEST(Module, LayersNameTheirModuleAndShapesOnBadInput) {
  nn::Conv2d conv({3, 8, {3}});
  EXPECT_THAT(error_of([&] {
                conv.forward(zeros({1, 4, 8, 8}));
              }),
              HasSubstr("Conv2d: input has 4 channels, the layer expects 3"));
  EXPECT_THAT(error_of([&] {
                conv.forward(zeros({1, 3, 8}));
              }),
              HasSubstr("Conv2d: input is [1, 3, 8]"));
  EXPECT_THAT(error_of([&] {
                conv.forward(zeros({1, 3, 2, 2}));
              }),
              HasSubstr("larger than the padded input"));
  EXPECT_THAT(error_of([] {
                nn::Conv2d({3, 8, {3}, {1}, {0}, {1}, 2});
              }),
              HasSubstr("groups 2 must divide in_channels 3"));
  nn::BatchNorm2d bn(4);
  EXPECT_THAT(error_of([&] {
                bn.forward(zeros({2, 3, 4, 4}));
              }),
              HasSubstr("BatchNorm2d: input has 3 channels, the layer has 4"));
  nn::Linear lin(5, 2);
  EXPECT_THAT(error_of([&] { lin.forward(zeros({3, 4})); }), HasSubstr("linear: input is [3, 4]"));
}

TEST(Module, ResNet18ForwardGivesLogitsAndEveryParameterAGradient) {
  Generator gen(1);
  models::ResNet model({10, 8, 3}, &gen);
  Tensor x = randn({2, 3, 32, 32}, DType::f32, &gen);
  Tensor y = model.forward(x);
  EXPECT_EQ(y.shape(), (Shape{2, 10}));
  backward(cross_entropy(y, from_vector(std::vector<int64_t>{1, 2})));
  for (const auto& [n, p] : model.named_parameters()) EXPECT_TRUE(p.grad().defined()) << n;
}

TEST(Module, PoolingLayersCheckTheirDimsAndComputeWindows) {
  nn::MaxPool2d pool({.kernel = {2}});
  Tensor x =
      from_vector(std::vector<float>{1, 5, 2, 0, 3, 4, 7, 6, 9, 8, 1, 2, 0, 1, 3, 4}, {1, 1, 4, 4});
  EXPECT_EQ(pool.forward(x).to_vector<float>(), (std::vector<float>{5, 7, 9, 4}));
  nn::AvgPool2d avg({.kernel = {2}});
  EXPECT_EQ(avg.forward(x).to_vector<float>(), (std::vector<float>{3.25f, 3.75f, 4.5f, 2.5f}));
  EXPECT_THAT(error_of([&] { nn::MaxPool3d({.kernel = {2}}).forward(x); }),
              HasSubstr("MaxPool3d: input is [1, 1, 4, 4]"));
}
