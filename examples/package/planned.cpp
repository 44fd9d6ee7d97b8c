// A model of the user's own, run under a memory plan through the installed headers: a deep MLP
// written as a chain of stages, profiled once, planned by the dp policy for a budget between the
// smallest it can meet and the plain step's peak, then trained under that plan. Exit status 0
// when at every step the plan's predicted peak is what the allocator measured, the peak is within
// the budget, and the loss is the one a plain forward gives, bit for bit.
#include <cstdio>
#include <memory>

#include "engine/factory.h"
#include "engine/planner/chain.h"
#include "engine/planner/planner.h"
#include "nn/linear.h"
#include "nn/module.h"
#include "nn/optim.h"
#include "ops/ops.h"

using namespace spool;

// Eight residual blocks x + W2 gelu(W1 x), then a classifier.
class DeepMlp : public nn::Module {
 public:
  DeepMlp(int64_t width, int blocks, int64_t classes, Generator* gen) {
    for (int b = 0; b < blocks; ++b) {
      up_.push_back(register_module("up" + std::to_string(b),
                                    std::make_shared<nn::Linear>(width, 4 * width, true, gen)));
      down_.push_back(register_module("down" + std::to_string(b),
                                      std::make_shared<nn::Linear>(4 * width, width, true, gen)));
    }
    head_ = register_module("head", std::make_shared<nn::Linear>(width, classes, true, gen));
  }
  std::string type_name() const override { return "DeepMlp"; }
  Tensor block(size_t b, const Tensor& x) {
    return x + down_[b]->forward(gelu(up_[b]->forward(x)));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = x;
    for (size_t b = 0; b < up_.size(); ++b) h = block(b, h);
    return head_->forward(h);
  }
  // The training step as stages: one per block, and the head with the loss.
  Chain chain(const Tensor& x, const Tensor& labels) {
    Chain c;
    c.input = x;
    for (size_t b = 0; b < up_.size(); ++b)
      c.stages.emplace_back("block" + std::to_string(b),
                            [this, b](const Tensor& h) { return block(b, h); });
    c.stages.emplace_back("head", [this, labels](const Tensor& h) {
      return cross_entropy(head_->forward(h), labels);
    });
    return c;
  }

 private:
  std::vector<std::shared_ptr<nn::Linear>> up_, down_;
  std::shared_ptr<nn::Linear> head_;
};

int main() {
  Generator gen(0);
  DeepMlp model(256, 8, 10, &gen);
  const Tensor x = randn({512, 256}, DType::f32, &gen);
  std::vector<int64_t> labels(512);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = int64_t(i * 7 % 10);
  const Tensor y = from_vector(labels);
  nn::AdamW opt(model.parameters(), {.lr = 1e-3});

  // A first plain step creates AdamW's state, so the profile's base (the bytes live at the
  // step's start) is every later step's: parameters, optimizer state and the batch.
  backward(cross_entropy(model.forward(x), y));
  opt.step();
  model.zero_grad();  // drops the gradients: the profile counts the ones its backward makes

  Chain chain = model.chain(x, y);
  const ChainProfile profile = profile_chain(chain);
  model.zero_grad();
  const int64_t full = make_plan(profile, "none", kUnlimited).predicted_peak;
  const int64_t least = smallest_budget(profile, "dp");
  const int64_t budget = least + (full - least) / 4;
  const Plan plan = make_plan(profile, "dp", budget);
  std::printf("plain step's peak %lld B, the least dp can meet %lld B, budget %lld B\n",
              (long long)full, (long long)least, (long long)budget);
  std::printf("plan %s: predicted peak %lld B, replays %.2f ms\n", plan.describe().c_str(),
              (long long)plan.predicted_peak, plan.recompute_ms);

  // Training under the plan: the same profile and plan serve every step of this shape.
  bool ok = true;
  for (int step = 0; step < 5; ++step) {
    double plain_loss;
    {
      NoGrad no_grad;  // the loss without the plan, for comparison
      plain_loss = cross_entropy(model.forward(x), y).item();
    }
    const StepResult r = run_step(chain, profile, plan);
    opt.step();
    model.zero_grad();
    const bool good = r.mismatch.empty() && r.measured_peak == r.predicted_peak &&
                      r.measured_peak <= budget && r.loss == plain_loss;
    std::printf(
        "step %d  loss %.6f (without the plan %.6f)  peak %lld B measured, %lld B "
        "predicted%s\n",
        step, r.loss, plain_loss, (long long)r.measured_peak, (long long)r.predicted_peak,
        good ? "" : "  FAILED");
    if (!r.mismatch.empty())
      std::printf("  the account differed from the allocator after %s\n", r.mismatch.c_str());
    ok = ok && good;
  }
  return ok ? 0 : 1;
}
