// A small CNN defined as a Module, trained on the 8x8 digits with AdamW and a cosine schedule,
// then saved as safetensors and loaded back.   build/example_cnn
#include <cstdio>

#include "data/digits.h"
#include "engine/safetensors.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "nn/norm.h"
#include "nn/optim.h"
#include "ops/ops.h"

using namespace spool;

struct Net : nn::Module {
  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::BatchNorm2d> bn1, bn2;
  std::shared_ptr<nn::Linear> fc;

  explicit Net(Generator* gen) {
    conv1 = register_module("conv1",
                            std::make_shared<nn::Conv2d>(nn::ConvSpec{1, 16, {3}, {1}, {1}}, gen));
    bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(16));
    conv2 = register_module("conv2",
                            std::make_shared<nn::Conv2d>(nn::ConvSpec{16, 32, {3}, {1}, {1}}, gen));
    bn2 = register_module("bn2", std::make_shared<nn::BatchNorm2d>(32));
    fc = register_module("fc", std::make_shared<nn::Linear>(32 * 2 * 2, 10, true, gen));
  }

  Tensor forward(const Tensor& x) override {                                      // x [N, 1, 8, 8]
    Tensor h = max_pool(relu(bn1->forward(conv1->forward(x))), {.kernel = {2}});  // [N, 16, 4, 4]
    h = max_pool(relu(bn2->forward(conv2->forward(h))), {.kernel = {2}});         // [N, 32, 2, 2]
    return fc->forward(flatten(h, 1));                                            // [N, 10]
  }
};

int main() {
  data::Split d = data::digits_split(data::find_digits());
  Tensor x_train = reshape(d.x_train, {-1, 1, 8, 8}), x_test = reshape(d.x_test, {-1, 1, 8, 8});
  Generator gen(0);
  Net net(&gen);
  nn::AdamW opt(nn::decay_matrices_only(net, 0.01), {.lr = 3e-3});
  const int64_t n = x_train.size(0), batch = 64, epochs = 8;
  const int64_t steps = epochs * ((n + batch - 1) / batch);
  nn::CosineSchedule schedule{3e-3, steps / 10, steps};

  int64_t step = 0;
  for (int64_t epoch = 0; epoch < epochs; ++epoch)
    for (int64_t at = 0; at < n; at += batch, ++step) {
      const int64_t m = std::min(batch, n - at);
      opt.set_lr(schedule.at(step));
      opt.zero_grad();
      Tensor loss =
          cross_entropy(net.forward(narrow(x_train, 0, at, m)), narrow(d.y_train, 0, at, m));
      backward(loss);
      nn::clip_grad_norm(net.parameters(), 1.0);
      opt.step();
    }

  net.eval();
  save_safetensors("/tmp/spool_example_cnn.safetensors", net.state_dict());
  Net restored(&gen);
  restored.load_state_dict(load_safetensors("/tmp/spool_example_cnn.safetensors").tensors);
  restored.eval();
  NoGrad no_grad;
  double acc = mean(to(eq(argmax(restored.forward(x_test), 1), d.y_test), DType::f32)).item();
  std::printf("cnn test accuracy after save and load: %.4f\n", acc);
  return acc > 0.9 ? 0 : 1;
}
