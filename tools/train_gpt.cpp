// spool train --model gpt-tiny: byte-level language modelling on a text corpus with AdamW,
// linear warm-up and cosine decay, gradient clipping, and periodic validation loss.
#include <cmath>
#include <cstdio>
#include <optional>

#include "data/text.h"
#include "engine/autograd.h"
#include "engine/factory.h"
#include "engine/trace.h"
#include "models/gpt.h"
#include "ops/ops.h"
#include "tools/cli.h"
#include "tools/models.h"
#include "tools/planned.h"
#include "tools/task.h"
#include "tools/train.h"

namespace spool::cli {

namespace {

constexpr int64_t kIgnore = -100;  // cross_entropy's ignore_index: packing's padding targets

Tensor lm_loss(models::Gpt& model, const data::LmBatch& b) {
  Tensor logits = model.forward(b.idx, b.positions, b.segments);
  return cross_entropy(reshape(logits, {-1, logits.size(-1)}), reshape(b.targets, {-1}));
}

// gpt-tiny on a text corpus: AdamW with warm-up and cosine decay, clipping at 1, the validation
// loss every --eval-every steps; random windows or packed documents (--pack); optionally under
// bf16 autocast.
class GptTask : public Task {
 public:
  explicit GptTask(const TrainConfig& c)
      : Task(c),
        path_(c.data.empty() ? data::default_corpus_path() : c.data),
        corpus_(data::load_text(path_)),
        train_stream_(corpus_.train),
        val_stream_(corpus_.val) {
    models::GptConfig config = *find_model(c.model)->gpt;
    config.recompute_gelu = c.recompute_gelu;
    auto model = std::make_shared<models::Gpt>(config, &gen_);
    gpt_ = model.get();
    model_ = model;
    t_ = gpt_->config().context;
    total = c.steps;
    opt_ = std::make_unique<nn::AdamW>(nn::decay_matrices_only(*model_, 0.01),
                                       nn::AdamWOptions{.lr = c.lr, .beta2 = c.beta2});
    schedule = nn::CosineSchedule{c.lr, std::min<int64_t>(100, std::max<int64_t>(1, total / 10)),
                                  total, c.lr * 0.1};
    clip_norm = 1.0;
    eval_every = c.eval_every;
    stops_on_time = true;
    if (c.resume) start_step = load_checkpoint(*c.resume, c, *model_, *opt_, gen_, total);
    // The optimizer state follows the parameters at its first step.
    if (c.device != Device::cpu()) model_->to(c.device);
    // Both splits must hold a window of context + 1 bytes: found here, not at the first
    // evaluation after minutes of training.
    for (const auto& [split, bytes] :
         {std::pair<const char*, int64_t>{"training", corpus_.train_bytes},
          {"validation", corpus_.val_bytes}})
      if (bytes <= t_ + 1)
        throw UsageError("train: --data " + path_ + ": the " + split + " split holds " +
                         std::to_string(bytes) + " bytes, fewer than one window of " +
                         std::to_string(t_ + 2) +
                         " (every 20th document is held out for validation: give more text)");
    std::printf(
        "%s: %lld parameters; corpus %s: %lld train bytes in %zu documents, %lld "
        "validation bytes\n",
        c.model.c_str(), (long long)model_->num_parameters(), path_.c_str(),
        (long long)corpus_.train_bytes, corpus_.train.size(), (long long)corpus_.val_bytes);
  }

  Metrics step(int64_t step, PlannedSteps* planned,
               const std::function<void()>& zero_grad) override {
    std::optional<trace::Span> data_span(std::in_place, "data", "batch");  // until on the device
    data::LmBatch b =
        c_.pack
            ? data::packed_batch(corpus_.train, c_.batch, t_, cursor_)
            : train_stream_.sample(c_.batch, t_, RngState{c_.seed ^ 0xb47c4, uint64_t(step) << 32});
    tokens_ += b.real_targets;  // the global batch's: tokens_per_s is the whole run's
    if (c_.world > 1) {
      // Data parallel: this rank's rows; its share of the loss is its share of the targets that
      // count, so the ranks' weighted gradients sum to the whole batch's.
      const int64_t all = b.real_targets;
      const auto [first, end] = my_rows(b.idx.size(0));
      for (Tensor* t : {&b.idx, &b.targets, &b.positions, &b.segments})
        if (t->defined()) *t = contiguous(slice(*t, 0, first, end));
      b.real_targets = 0;
      for (int64_t v : b.targets.to_vector<int64_t>()) b.real_targets += v != kIgnore;
      share = all > 0 ? double(b.real_targets) / double(all) : share;
    }
    b = on_device(std::move(b), c_.device);
    data_span.reset();
    // Forward, backward and a plan's replays alike under autocast (replays must repeat the
    // forward's precision); the optimizer updates the f32 parameters outside it.
    std::optional<Autocast> autocast;
    if (c_.autocast) autocast.emplace();
    if (planned) {
      Chain chain = gpt_->chain(b.idx, b.targets, b.positions, b.segments);
      const std::string key =
          str(b.idx.shape()) + (b.segments.defined() ? str(b.segments.shape()) : "");
      return {{"loss", planned->step(chain, key, zero_grad)}};
    }
    Tensor loss = lm_loss(*gpt_, b);
    backward(loss);
    return {{"loss", loss.item()}};
  }

  // Mean loss over a fixed set of validation windows (the same every time), in nats per byte.
  Metrics evaluate() override {
    std::optional<Autocast> autocast;
    if (c_.autocast) autocast.emplace();
    NoGrad no_grad;
    gpt_->eval();
    double total_loss = 0;
    const int batches = 8;
    for (int k = 0; k < batches; ++k)
      total_loss +=
          lm_loss(*gpt_,
                  on_device(val_stream_.sample(c_.batch, t_, RngState{0x7a1, uint64_t(k) << 32}),
                            c_.device))
              .item();
    gpt_->train();
    return {{"val_loss", total_loss / batches}};
  }

  std::string status(const Metrics& m, const Metrics& eval) const override {
    char s[96];
    std::snprintf(s, sizeof s, "loss %.3f val %.3f", m.at("loss"),
                  eval.count("val_loss") ? eval.at("val_loss") : NAN);
    return s;
  }

  void finish(LineLog& log, int64_t steps, const Metrics& last, const Metrics& eval, double,
              double t0) override {
    const double secs = now_seconds() - t0;
    const double val_loss = eval.count("val_loss") ? eval.at("val_loss") : NAN;
    log.write(final_line(steps)
                  .add("loss", last.at("loss"))
                  .add("val_loss", val_loss)
                  .add("tokens_per_s", double(tokens_) / secs)
                  .add("seconds", secs)
                  .str());
    std::printf(
        "gpt-tiny: %lld steps, train loss %.4f, validation loss %.4f nats/byte, %.0f "
        "tokens/s, %.1f s\n",
        (long long)steps, last.at("loss"), val_loss, double(tokens_) / secs, secs);
  }

 private:
  std::string path_;
  data::TextCorpus corpus_;
  data::TextStream train_stream_, val_stream_;
  models::Gpt* gpt_ = nullptr;
  int64_t t_ = 0;
  size_t cursor_ = 0;  // packed batches walk the documents in order
  int64_t tokens_ = 0;
};

}  // namespace

std::unique_ptr<Task> make_gpt_task(const TrainConfig& c) { return std::make_unique<GptTask>(c); }

}  // namespace spool::cli
