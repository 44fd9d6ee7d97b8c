// spool train: trains a model on its data set and reports the evaluation metrics.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "data/digits.h"
#include "engine/autograd.h"
#include "engine/factory.h"
#include "models/mlp.h"
#include "nn/optim.h"
#include "ops/ops.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace spool::cli {

namespace {

struct TrainConfig {
  std::string model, data;
  int64_t steps = 0, epochs = 0, batch = 0;
  double lr = 0;
  uint64_t seed = 0;
  std::optional<std::string> log;
};

// Rows `idx` of x (index_select without recording).
Tensor rows(const Tensor& x, const std::vector<int64_t>& idx) {
  return index_select(x, 0, from_vector(idx));
}

double accuracy(const models::Mlp& model, const Tensor& x, const Tensor& y) {
  NoGrad no_grad;
  Tensor pred = argmax(model.forward(x), 1);
  return mean(to(eq(pred, y), DType::f32)).item();
}

int train_mlp(const TrainConfig& c) {
  std::string path = c.data == "digits" ? data::find_digits() : c.data;
  if (c.data != "digits" && !std::filesystem::exists(path))
    throw UsageError("train: --data '" + c.data + "' is neither 'digits' nor an existing file");
  data::Split d = data::digits_split(path);
  const int64_t n = d.x_train.size(0);
  const int64_t batch = std::min(c.batch, n);
  const int64_t per_epoch = (n + batch - 1) / batch;
  const int64_t total = c.steps > 0 ? c.steps : c.epochs * per_epoch;

  JsonlLog log(c.log);
  Generator gen(c.seed);
  models::Mlp model(64, {128, 64}, 10, &gen);
  nn::AdamW opt(model.parameters(), {.lr = c.lr});
  Progress progress(total);
  std::vector<int64_t> order(static_cast<size_t>(n));
  double last_loss = NAN, t0 = now_seconds();
  for (int64_t step = 0; step < total; ++step) {
    const int64_t pos = step % per_epoch;
    if (pos == 0) {  // a new shuffle each epoch, from the training seed
      RngState s = gen.take(n);
      for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
      for (int64_t i = n - 1; i > 0; --i)
        std::swap(order[size_t(i)], order[size_t(int64_t(uniform_at(s, i) * double(i + 1)))]);
    }
    std::vector<int64_t> idx(order.begin() + pos * batch,
                             order.begin() + std::min(n, (pos + 1) * batch));
    opt.zero_grad();
    Tensor loss = cross_entropy(model.forward(rows(d.x_train, idx)), rows(d.y_train, idx));
    backward(loss);
    opt.step();
    last_loss = loss.item();
    if (step % 10 == 0 || step + 1 == total)
      log.write(Json().add("step", step).add("loss", last_loss).str());
    char status[64];
    std::snprintf(status, sizeof status, "loss %.4f", last_loss);
    progress.update(step + 1, status);
  }
  progress.finish();
  model.eval();
  const double test_acc = accuracy(model, d.x_test, d.y_test);
  const double train_acc = accuracy(model, d.x_train, d.y_train);
  const double secs = now_seconds() - t0;
  log.write(Json()
                .add("final", true)
                .add("model", c.model)
                .add("steps", total)
                .add("loss", last_loss)
                .add("train_acc", train_acc)
                .add("test_acc", test_acc)
                .add("seconds", secs)
                .str());
  log.commit();
  std::printf("mlp on digits: %lld steps, final loss %.4f, train accuracy %.4f, test accuracy "
              "%.4f (%lld test images), %.1f s\n",
              (long long)total, last_loss, train_acc, test_acc, (long long)d.y_test.numel(), secs);
  return 0;
}

}  // namespace

int cmd_train(int argc, char** argv) {
  Args a(argc, argv, 2,
         {{"model", true}, {"data", true}, {"steps", true}, {"epochs", true}, {"batch", true},
          {"lr", true}, {"seed", true}, {"device", true}, {"log", true}},
         "train");
  if (!a.has("model")) throw UsageError("train: --model is required (available: mlp)");
  TrainConfig c;
  c.model = a.str("model", "");
  if (c.model != "mlp") throw UsageError("train: unknown model '" + c.model + "' (available: mlp)");
  if (a.has("steps") && a.has("epochs"))
    throw UsageError("train: give --steps or --epochs, not both");
  const std::string device = a.str("device", "cpu");
  if (device != "cpu" && device != "cuda")
    throw UsageError("train: --device '" + device + "' is not cpu or cuda");
  if (device == "cuda")
    throw UsageError("train: --device cuda: the CUDA backend does not run models yet");
  c.data = a.str("data", "digits");
  c.steps = a.positive_int("steps", 0);
  c.epochs = a.positive_int("epochs", 30);
  c.batch = a.positive_int("batch", 32);
  c.lr = a.positive_double("lr", 1e-3);
  c.seed = a.seed("seed", 0);
  if (a.has("log")) c.log = a.str("log", "");
  return train_mlp(c);
}

}  // namespace spool::cli
