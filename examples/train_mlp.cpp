// A complete training program on spool's C++ API: an MLP learns the 8x8 digits.
//   build/example_mlp
#include <cstdio>

#include "data/digits.h"
#include "engine/autograd.h"
#include "engine/factory.h"
#include "models/mlp.h"
#include "nn/optim.h"
#include "ops/ops.h"

using namespace spool;

int main() {
  data::Split d = data::digits_split(data::find_digits());  // x [N, 64] f32, y [N] i64
  Generator gen(0);
  models::Mlp model(64, {128, 64}, 10, &gen);
  nn::AdamW opt(model.parameters(), {.lr = 1e-3});

  const int64_t n = d.x_train.size(0), batch = 32;
  for (int epoch = 0; epoch < 20; ++epoch) {
    for (int64_t at = 0; at < n; at += batch) {
      Tensor x = narrow(d.x_train, 0, at, std::min(batch, n - at));
      Tensor y = narrow(d.y_train, 0, at, std::min(batch, n - at));
      opt.zero_grad();
      Tensor loss = cross_entropy(model.forward(x), y);
      backward(loss);
      opt.step();
    }
  }
  NoGrad no_grad;
  Tensor pred = argmax(model.forward(d.x_test), 1);
  double acc = mean(to(eq(pred, d.y_test), DType::f32)).item();
  std::printf("test accuracy %.4f\n", acc);
  return acc > 0.9 ? 0 : 1;
}
