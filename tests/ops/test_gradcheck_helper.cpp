// gradcheck itself: it catches a wrong backward, and leaves its inputs as it found them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ops/ops.h"
#include "tests/ops/gradcheck_inputs.h"

namespace spool {
namespace {

using namespace spool::test;
using ::testing::AllOf;
using ::testing::HasSubstr;

// y = 2 x, recorded with a backward that claims dy/dx = 3.
Tensor doubled_with_a_wrong_backward(const Tensor& x) {
  Tensor y;
  {
    NoGrad no_grad;
    y = x * 2.0;
  }
  record("doubled", {x}, {y}, {},
         [](const Tensors&, const Tensors& g, const Needs&) { return Tensors{g[0] * 3.0}; });
  return y;
}

TEST(GradcheckHelper, ReportsAWrongBackwardNamingTheInputAndElement) {
  Tensor a = normal_leaf({3}, 1), x = normal_leaf({2, 2}, 2);
  const std::string report = gradcheck(
      [](const Tensors& in) { return in[0] * 1.0 + sum(doubled_with_a_wrong_backward(in[1])); },
      {a, x});
  EXPECT_THAT(report, AllOf(HasSubstr("input 1"), HasSubstr("f64[2, 2]"), HasSubstr("element")));
}

TEST(GradcheckHelper, ReportsAGradientThatIsMissing) {
  // The output depends on b, but detach() hides that from backward.
  Tensor a = normal_leaf({2}, 3), b = normal_leaf({2}, 4);
  const std::string report =
      gradcheck([](const Tensors& in) { return in[0] * in[1].detach(); }, {a, b});
  EXPECT_THAT(report, HasSubstr("input 1"));
}

TEST(GradcheckHelper, LeavesTheInputsValuesAndFlagsUnchanged) {
  Tensor x = normal_leaf({2, 3}, 5);
  const std::vector<double> before = x.to_vector<double>();
  EXPECT_EQ(gradcheck([](const Tensors& in) { return exp(in[0]); }, {x}), "");
  EXPECT_EQ(x.to_vector<double>(), before);
  EXPECT_TRUE(x.requires_grad());
  EXPECT_TRUE(grad_enabled());
}

TEST(GradcheckHelper, SaysSoWhenTheOutputDependsOnNoCheckedInput) {
  Tensor x = normal_leaf({2}, 6);
  const Tensor c = ones({2}, DType::f64);
  EXPECT_NE(gradcheck([c](const Tensors&) { return c * 2.0; }, {x}), "");
}

}  // namespace
}  // namespace spool
