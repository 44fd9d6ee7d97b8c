// spool train --model gpt-tiny: byte-level language modelling on a text corpus with AdamW,
// linear warm-up and cosine decay, gradient clipping, and periodic validation loss.
#include <cmath>
#include <cstdio>
#include <optional>

#include "data/text.h"
#include "engine/autograd.h"
#include "engine/factory.h"
#include "models/gpt.h"
#include "ops/ops.h"
#include "tools/cli.h"
#include "tools/planned.h"
#include "tools/train.h"

namespace spool::cli {

namespace {

Tensor lm_loss(models::Gpt& model, const data::LmBatch& b) {
  Tensor logits = model.forward(b.idx, b.positions, b.segments);
  return cross_entropy(reshape(logits, {-1, logits.size(-1)}), reshape(b.targets, {-1}));
}

// Mean loss over a fixed set of validation windows (the same every time), in nats per byte.
double validation_loss(models::Gpt& model, const data::TextStream& val, int64_t batch, int64_t t,
                       Device device) {
  NoGrad no_grad;
  model.eval();
  double total = 0;
  const int batches = 8;
  for (int k = 0; k < batches; ++k)
    total +=
        lm_loss(model, on_device(val.sample(batch, t, RngState{0x7a1, uint64_t(k) << 32}), device))
            .item();
  model.train();
  return total / batches;
}

}  // namespace

int train_gpt(const TrainConfig& c) {
  const std::string path = c.data.empty() ? data::default_corpus_path() : c.data;
  data::TextCorpus corpus = data::load_text(path);
  Generator gen(c.seed);
  models::GptConfig config = models::gpt_tiny();
  config.recompute_gelu = c.recompute_gelu;
  models::Gpt model(config, &gen);
  const int64_t t = model.config().context, batch = c.batch, total = c.steps;
  nn::AdamW opt(nn::decay_matrices_only(model, 0.01), {.lr = c.lr, .beta2 = c.beta2});
  const nn::CosineSchedule schedule{c.lr, std::min<int64_t>(100, std::max<int64_t>(1, total / 10)),
                                    total, c.lr * 0.1};
  int64_t start = 0;
  if (c.resume) start = load_checkpoint(*c.resume, c, model, opt, gen, total);
  if (c.device != Device::cpu()) model.to(c.device);  // optimizer state follows at its first step
  // Both splits must hold a window of context + 1 bytes: found here, not at the first
  // evaluation after minutes of training.
  for (const auto& [split, bytes] :
       {std::pair<const char*, int64_t>{"training", corpus.train_bytes},
        {"validation", corpus.val_bytes}})
    if (bytes <= t + 1)
      throw UsageError("train: --data " + path + ": the " + split + " split holds " +
                       std::to_string(bytes) + " bytes, fewer than one window of " +
                       std::to_string(t + 2) +
                       " (every 20th document is held out for validation: give more text)");
  data::TextStream train_stream(corpus.train), val_stream(corpus.val);
  std::printf(
      "gpt-tiny: %lld parameters; corpus %s: %lld train bytes in %zu documents, %lld "
      "validation bytes\n",
      (long long)model.num_parameters(), path.c_str(), (long long)corpus.train_bytes,
      corpus.train.size(), (long long)corpus.val_bytes);

  std::optional<PlannedSteps> planned;
  if (!c.checkpoint_policy.empty()) planned.emplace(c.checkpoint_policy, c.memory_budget);
  LineLog log(c.log);
  Progress progress(total);
  model.train();
  size_t cursor = 0;  // packed batches walk the documents in order
  double last_loss = NAN, val_loss = NAN, t0 = now_seconds();
  int64_t tokens = 0;
  int64_t step = start;
  for (; step < total; ++step) {
    // With --time-limit the run stops when the time is spent: the warm-up counts steps, the
    // cosine follows the elapsed share of the time (or of the steps, when that is further on).
    const double elapsed = now_seconds() - t0;
    if (c.time_limit > 0 && elapsed >= c.time_limit) break;
    opt.set_lr(c.time_limit > 0 ? schedule.at_progress(step, std::max(elapsed / c.time_limit,
                                                                      double(step) / double(total)))
                                : schedule.at(step));
    data::LmBatch b =
        c.pack ? data::packed_batch(corpus.train, batch, t, cursor)
               : train_stream.sample(batch, t, RngState{c.seed ^ 0xb47c4, uint64_t(step) << 32});
    b = on_device(std::move(b), c.device);
    opt.zero_grad();
    // Forward, backward and a plan's replays alike under autocast (replays must repeat the
    // forward's precision); the optimizer updates the f32 parameters outside it.
    std::optional<Autocast> autocast;
    if (c.autocast) autocast.emplace();
    if (planned) {
      Chain chain = model.chain(b.idx, b.targets, b.positions, b.segments);
      const std::string key =
          str(b.idx.shape()) + (b.segments.defined() ? str(b.segments.shape()) : "");
      last_loss = planned->step(chain, key, [&] { opt.zero_grad(); });
    } else {
      Tensor loss = lm_loss(model, b);
      backward(loss);
      last_loss = loss.item();
    }
    autocast.reset();
    check_diverged(log, step, last_loss);
    nn::clip_grad_norm(model.parameters(), 1.0);
    opt.step();
    tokens += b.real_targets;
    const bool eval = (step + 1) % c.eval_every == 0 || step + 1 == total ||
                      (c.time_limit > 0 && now_seconds() - t0 >= c.time_limit);
    if (eval) {
      std::optional<Autocast> autocast_eval;
      if (c.autocast) autocast_eval.emplace();
      val_loss = validation_loss(model, val_stream, batch, t, c.device);
    }
    if (step % c.log_every == 0 || eval) {
      Json j;
      j.add("step", step).add("loss", last_loss).add("lr", opt.lr());
      if (eval) j.add("val_loss", val_loss);
      log.write(j.str());
    }
    char status[96];
    std::snprintf(status, sizeof status, "loss %.3f val %.3f", last_loss, val_loss);
    progress.update(step + 1, status);
  }
  progress.finish();
  if (c.save) save_checkpoint(*c.save, c, model, opt, step, gen);
  const double secs = now_seconds() - t0;
  log.write(Json()
                .add("final", true)
                .add("model", c.model)
                .add("steps", step)
                .add("loss", last_loss)
                .add("val_loss", val_loss)
                .add("tokens_per_s", double(tokens) / secs)
                .add("seconds", secs)
                .str());
  log.commit();
  std::printf(
      "gpt-tiny: %lld steps, train loss %.4f, validation loss %.4f nats/byte, %.0f "
      "tokens/s, %.1f s\n",
      (long long)step, last_loss, val_loss, double(tokens) / secs, secs);
  return 0;
}

}  // namespace spool::cli
