// spool train: trains a model on its data set and reports the evaluation metrics. A checkpoint
// (--save) holds the model, the optimizer state, the step and the configuration; --resume
// continues from one and gives the same losses as an uninterrupted run.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "data/digits.h"
#include "dist/ddp.h"
#include "dist/sync_batch_norm.h"
#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/factory.h"
#include "engine/planner/policy.h"
#include "engine/profile.h"
#include "engine/safetensors.h"
#include "engine/trace.h"
#include "models/video.h"
#include "nn/checkpoint_meta.h"
#include "nn/optim.h"
#include "ops/ops.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/models.h"
#include "tools/planned.h"
#include "tools/task.h"
#include "tools/train.h"

namespace spool::cli {

std::vector<int64_t> epoch_order(uint64_t seed, int64_t epoch, int64_t n) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
  RngState s{seed ^ 0x5eedf00dULL, uint64_t(epoch) << 24};
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(order[size_t(i)], order[size_t(int64_t(uniform_at(s, i) * double(i + 1)))]);
  return order;
}

namespace {

double accuracy(nn::Module& model, const Tensor& x, const Tensor& y) {
  NoGrad no_grad;
  const int64_t n = x.size(0), chunk = 256;
  double correct = 0;
  for (int64_t at = 0; at < n; at += chunk) {
    const int64_t m = std::min(chunk, n - at);
    Tensor pred = argmax(model.forward(narrow(x, 0, at, m)), 1);
    correct += sum(to(eq(pred, narrow(y, 0, at, m)), DType::f32)).item();
  }
  return correct / double(n);
}

}  // namespace

void save_checkpoint(const std::string& path, const TrainConfig& c, const nn::Module& model,
                     const nn::Optimizer& opt, int64_t step, const Generator& gen) {
  nn::NamedTensors all;
  for (const auto& [n, t] : model.state_dict()) all.emplace_back("model." + n, t);
  for (const auto& [n, t] : opt.state()) all.emplace_back("optimizer." + n, t);
  save_safetensors(path, all,
                   {{"format", "spool-checkpoint-1"},
                    {"model", c.model},
                    {"step", std::to_string(step)},
                    {"seed", std::to_string(c.seed)},
                    {"batch", std::to_string(c.batch)},
                    {"lr", Json().add("lr", c.lr).str()},
                    {"rng_seed", std::to_string(gen.state().seed)},
                    {"rng_offset", std::to_string(gen.state().offset)}});
}

// Restores model, optimizer and generator from a checkpoint; returns the step to continue at.
int64_t load_checkpoint(const std::string& path, const TrainConfig& c, nn::Module& model,
                        nn::Optimizer& opt, Generator& gen, int64_t total) {
  TensorFile f = load_safetensors(path);
  nn::CheckpointMeta meta;
  try {
    meta = nn::read_checkpoint_meta(f);
  } catch (const Error& e) {
    throw UsageError(std::string("--resume: ") + e.what());
  }
  if (meta.model != c.model)
    throw UsageError("--resume: " + path + " holds a '" + meta.model + "' model, not '" + c.model +
                     "'");
  if (meta.seed != c.seed || meta.batch != c.batch)
    throw UsageError("--resume: " + path + " was trained with seed " + std::to_string(meta.seed) +
                     " and batch " + std::to_string(meta.batch) +
                     "; pass the same --seed and --batch");
  if (meta.step >= total)
    throw UsageError("--resume: the checkpoint is at step " + std::to_string(meta.step) +
                     (meta.step == total ? ", the end of" : ", past") + " the " +
                     std::to_string(total) + " steps asked for: nothing is left to train");
  check_finite(f, "--resume", c.allow_nonfinite);
  nn::NamedTensors model_state, opt_state;
  for (const auto& [n, t] : f.tensors) {
    if (n.rfind("model.", 0) == 0)
      model_state.emplace_back(n.substr(6), t);
    else if (n.rfind("optimizer.", 0) == 0)
      opt_state.emplace_back(n.substr(10), t);
  }
  try {
    model.load_state_dict(model_state);
    opt.load_state(opt_state);
  } catch (const Error& e) {
    throw UsageError("--resume: " + path + ": " + e.what());
  }
  gen.set_state({meta.rng_seed, meta.rng_offset});
  return meta.step;
}

Json Task::log_line(int64_t step, const Metrics& m, const Metrics& eval) const {
  Json j;
  j.add("step", step).add("loss", m.at("loss"));
  if (schedule) j.add("lr", opt_->lr());
  for (const auto& [k, v] : eval) j.add(k, v);
  return j;
}

std::string Task::status(const Metrics& m, const Metrics&) const {
  char s[64];
  std::snprintf(s, sizeof s, "loss %.4f", m.at("loss"));
  return s;
}

std::pair<int64_t, int64_t> Task::my_rows(int64_t n) {
  const int64_t first = n * c_.rank / c_.world, end = n * (c_.rank + 1) / c_.world;
  if (end <= first)
    throw UsageError("train: a batch of " + std::to_string(n) + " rows does not split over " +
                     std::to_string(c_.world) + " processes (each needs a row at least)");
  share = double(end - first) / double(n);
  set_batch_window({first, end - first, n});  // dropout draws this rank's rows of the whole draw
  return {first, end};
}

namespace {
// Stops the trace; writes it, saying where and how large (--trace), and prints the traced steps'
// op table against the machine's peaks (--profile).
void end_trace(const TrainConfig& c, const std::optional<MachinePeaks>& peaks) {
  trace::stop();
  if (c.trace) {
    trace::write(*c.trace);
    std::printf("trace: %lld events written to %s%s\n", (long long)trace::events(),
                c.trace->c_str(),
                trace::dropped() > 0
                    ? (", " + std::to_string(trace::dropped()) + " more dropped (the cap)").c_str()
                    : "");
  }
  if (peaks) print_profile(profile_of(trace::spans()), *peaks, stdout);
  std::fflush(stdout);
}
}  // namespace

int run_training(Task& task, const TrainConfig& c) {
  if (c.world > c.batch)
    throw UsageError("train: --batch " + std::to_string(c.batch) + " does not split over " +
                     std::to_string(c.world) + " processes (each needs a row at least)");
  nn::Optimizer& opt = task.optimizer();
  std::optional<PlannedSteps> planned;
  if (!c.checkpoint_policy.empty()) planned.emplace(c.checkpoint_policy, c.memory_budget);
  // Data parallel: every rank starts from rank 0's parameters, and steps on the gradients of the
  // whole global batch (dist/ddp.h). One process with --zero 1 runs the sharded path too (its
  // one shard is everything), which must give the plain path's numbers bit for bit.
  std::optional<dist::DataParallel> ddp;
  dist::ProcessGroup& group = dist::world();
  if (c.world > 1 || c.zero > 0) {
    ddp.emplace(group, task.model(), opt, dist::DataParallelOptions{c.bucket_mb, c.zero});
    ddp->broadcast_state();
  }
  // Batch norm normalises with the global batch's statistics (torch's SyncBatchNorm), so a run
  // of N processes computes what one process with the whole batch does.
  std::optional<dist::SyncBatchNormScope> sync_bn;
  if (c.world > 1) sync_bn.emplace(group, [&] { return task.share; });
  LineLog log(c.rank == 0 ? c.log : std::nullopt);
  Metrics last{{"loss", NAN}}, eval = task.start(log);
  // --profile: the machine's FMA peak and copy bandwidth, measured before the run's timer starts.
  std::optional<MachinePeaks> peaks;
  if (c.profile && c.rank == 0) peaks = measure_peaks();
  Progress progress(task.total);
  if (ddp) reset_peak(Device::cpu());  // the loop's peak, for the data-parallel report
  const double t0 = now_seconds();
  const bool timed = task.stops_on_time && c.time_limit > 0;
  // The time the run has taken, rank 0's on every rank: the ranks must agree on when to stop,
  // evaluate and which learning rate to use.
  const auto elapsed_now = [&] {
    double e = now_seconds() - t0;
    if (timed && c.world > 1) {
      Tensor t = full({1}, e, DType::f64);
      group.broadcast(t, 0);
      e = t.item();
    }
    return e;
  };
  const auto time_is_up = [&] { return timed && elapsed_now() >= c.time_limit; };
  int64_t step = task.start_step;
  for (; step < task.total; ++step) {
    // With --time-limit the run stops when the time is spent and the schedule follows the
    // elapsed share of the time (or of the steps, when that is further on): the cosine alone, or
    // warm-up and cosine both (Task::schedule_by_time).
    const double elapsed = timed ? elapsed_now() : 0;
    if (timed && elapsed >= c.time_limit) break;
    if (task.schedule) {
      const double share = timed ? elapsed / c.time_limit : 0;
      if (!timed)
        opt.set_lr(task.schedule->at(step));
      else if (task.schedule_by_time)
        opt.set_lr(task.schedule->at_share(step, share));
      else
        opt.set_lr(
            task.schedule->at_progress(step, std::max(share, double(step) / double(task.total))));
    }
    // --trace: rank 0 records steps [trace_first, trace_last), each in a "step" span.
    const bool traced =
        (c.trace || c.profile) && c.rank == 0 && step >= c.trace_first && step < c.trace_last;
    if (traced && !trace::on()) trace::start();
    std::optional<trace::Span> step_span;
    if (traced) step_span.emplace("step", "step " + std::to_string(step));
    opt.zero_grad();
    task.model().train();
    if (ddp) ddp->begin_step([&] { return task.share; });  // buckets reduced during backward
    last = task.step(step, planned ? &*planned : nullptr, [&] { opt.zero_grad(); });
    if (ddp) {
      trace::Span span("phase", "reduce gradients");
      ddp->reduce_gradients(task.share);
      // The step's metrics are means over the rank's rows: the global batch's are their
      // share-weighted sum (in the map's order, the same on every rank).
      for (auto& [name, value] : last) value = ddp->weighted_sum(value, task.share);
    }
    check_diverged(log, step, last.at("loss"));
    if (task.clip_norm > 0) {
      trace::Span span("phase", "clip gradients");
      if (ddp)
        ddp->clip_grad_norm(task.clip_norm);
      else
        nn::clip_grad_norm(task.model().parameters(), task.clip_norm);
    }
    {
      trace::Span span("phase", "optimizer");
      if (ddp) {
        ddp->step();
        if (c.world > 1) ddp->broadcast_buffers();  // running statistics follow rank 0's
      } else {
        opt.step();
      }
    }
    step_span.reset();
    if (traced && step + 1 == c.trace_last) end_trace(c, peaks);
    const bool last_step = step + 1 == task.total;
    const bool evaluated =
        task.eval_every > 0 && ((step + 1) % task.eval_every == 0 || last_step || time_is_up());
    if (evaluated) {
      trace::Span span("phase", "evaluate");
      eval = task.evaluate();
    }
    if (step % c.log_every == 0 || evaluated || last_step)
      log.write(task.log_line(step, last, evaluated ? eval : Metrics{}).str());
    if (c.rank == 0) progress.update(step + 1, task.status(last, eval));
  }
  if (c.rank == 0) progress.finish();
  if (trace::on()) end_trace(c, peaks);  // the run ended inside the traced steps
  set_batch_window({});
  const double train_seconds = now_seconds() - t0;
  if (ddp) {
    // What data parallel cost this rank (rank 0's, written by rank 0): the optimizer moments it
    // holds, its allocator's peak over the loop, and the seconds its collectives took.
    const int64_t peak = memory_stats(Device::cpu()).peak_bytes;
    const int64_t steps = step - task.start_step;
    log.write(Json()
                  .add("data_parallel", true)
                  .add("world", int64_t(c.world))
                  .add("zero", int64_t(c.zero))
                  .add("buckets", ddp->buckets())
                  .add("moment_bytes", ddp->moment_bytes())
                  .add("peak_bytes", peak)
                  .add("comm_seconds", ddp->comm_seconds())
                  .add("exposed_comm_seconds", ddp->exposed_seconds())
                  .add("seconds_per_step", steps > 0 ? train_seconds / double(steps) : 0.0)
                  .str());
    std::printf(
        "data parallel: %d process(es)%s, %lld bucket(s); rank 0 holds %.2f MB of optimizer "
        "moments, peaked at %.2f MB; the gradients' collectives took %.2f s of %.2f s, %.2f s "
        "of it not hidden behind backward\n",
        c.world, c.zero ? " with ZeRO-1" : "", (long long)ddp->buckets(),
        double(ddp->moment_bytes()) / 1e6, double(peak) / 1e6, ddp->comm_seconds(), train_seconds,
        ddp->exposed_seconds());
  }
  if (c.save) {
    // Under ZeRO-1 the whole optimizer state is gathered for the file (which any number of
    // processes resumes), written by rank 0; the others wait for it.
    if (ddp) ddp->gather_state();
    if (c.rank == 0) save_checkpoint(*c.save, c, task.model(), opt, step, task.generator());
    if (ddp) ddp->release_state();
    group.barrier();
  }
  task.finish(log, step, last, eval, train_seconds, t0);
  log.commit();
  return 0;
}

namespace {

// mlp and resnet18 on the 8x8 digits: AdamW at a constant rate over epochs of a seeded
// shuffle; the test accuracy at the end.
class ClassifierTask : public Task {
 public:
  explicit ClassifierTask(const TrainConfig& c) : Task(c) {
    const std::string path = c.data == "digits" ? data::find_digits() : c.data;
    if (c.data != "digits" && !is_file(path))
      throw UsageError("train: --data '" + c.data + "' is neither 'digits' nor an existing file");
    d_ = data::digits_split(path);
    x_train_ = prepare_images(c.model, d_.x_train);
    x_test_ = prepare_images(c.model, d_.x_test);
    n_ = x_train_.size(0);
    batch_ = std::min(c.batch, n_);
    per_epoch_ = (n_ + batch_ - 1) / batch_;
    if (c.world > 1 && n_ % batch_ != 0 && n_ % batch_ < c.world)
      throw UsageError("train: the epoch's last batch holds " + std::to_string(n_ % batch_) +
                       " images, fewer than the " + std::to_string(c.world) +
                       " processes; choose a --batch that leaves none or at least that many");
    total = c.steps;
    if (total <= 0 && __builtin_mul_overflow(c.epochs, per_epoch_, &total))
      throw UsageError("train: --epochs " + std::to_string(c.epochs) + " of " +
                       std::to_string(per_epoch_) +
                       " steps each is more steps than can be counted");
    model_ = make_model(c.model, &gen_);
    opt_ = std::make_unique<nn::AdamW>(nn::decay_matrices_only(*model_, 0.01),
                                       nn::AdamWOptions{.lr = c.lr});
    if (c.resume) start_step = load_checkpoint(*c.resume, c, *model_, *opt_, gen_, total);
    if (c.device != Device::cpu()) {
      model_->to(c.device);
      x_train_ = to(x_train_, c.device);
      x_test_ = to(x_test_, c.device);
      d_.y_train = to(d_.y_train, c.device);
      d_.y_test = to(d_.y_test, c.device);
    }
  }

  Metrics step(int64_t step, PlannedSteps* planned,
               const std::function<void()>& zero_grad) override {
    std::optional<trace::Span> data_span(std::in_place, "data", "batch");
    const int64_t epoch = step / per_epoch_, pos = step % per_epoch_;
    if (epoch != order_epoch_) {
      order_ = epoch_order(c_.seed, epoch, n_);
      order_epoch_ = epoch;
    }
    std::vector<int64_t> idx(order_.begin() + pos * batch_,
                             order_.begin() + std::min(n_, (pos + 1) * batch_));
    // Data parallel: this rank's rows of the global batch.
    const auto [first, end] = my_rows(int64_t(idx.size()));
    idx = std::vector<int64_t>(idx.begin() + first, idx.begin() + end);
    Tensor rows = to(from_vector(idx), c_.device);
    Tensor xb = index_select(x_train_, 0, rows), yb = index_select(d_.y_train, 0, rows);
    data_span.reset();
    if (planned) {
      // Fractions of the budget are of the standard staging's plain step (--stem-groups).
      Chain standard;
      Chain chain =
          classifier_chain(*model_, xb, yb, {0, c_.split_blocks, c_.stem_groups}, &standard);
      return {{"loss", planned->step(chain, str(xb.shape()), zero_grad,
                                     standard.stages.empty() ? nullptr : &standard)}};
    }
    Tensor loss = cross_entropy(model_->forward(xb), yb);
    backward(loss);
    return {{"loss", loss.item()}};
  }

  void finish(LineLog& log, int64_t steps, const Metrics& last, const Metrics&, double,
              double t0) override {
    model_->eval();
    const double test_acc = accuracy(*model_, x_test_, d_.y_test);
    const double secs = now_seconds() - t0;
    log.write(final_line(steps)
                  .add("loss", last.at("loss"))
                  .add("test_acc", test_acc)
                  .add("seconds", secs)
                  .str());
    std::printf(
        "%s on digits: %lld steps, final loss %.4f, test accuracy %.4f (%lld test images), "
        "%.1f s\n",
        c_.model.c_str(), (long long)steps, last.at("loss"), test_acc, (long long)d_.y_test.numel(),
        secs);
  }

 private:
  data::Split d_;
  Tensor x_train_, x_test_;
  int64_t n_ = 0, batch_ = 0, per_epoch_ = 0;
  std::vector<int64_t> order_;
  int64_t order_epoch_ = -1;
};

}  // namespace

std::unique_ptr<Task> make_classifier_task(const TrainConfig& c) {
  return std::make_unique<ClassifierTask>(c);
}

std::unique_ptr<Task> make_task(const TrainConfig& c) {
  switch (find_model(c.model)->family) {
    case Family::digits:
      return make_classifier_task(c);
    case Family::language:
      return c.sft ? make_sft_task(c) : make_gpt_task(c);
    case Family::preference:
      return make_dpo_task(c);
    case Family::reward:
      return make_reward_task(c);
    case Family::rlhf:
      return make_ppo_task(c);
    case Family::video:
      return make_video_task(c);
  }
  throw Error("train: no task for model '" + c.model + "'");
}

data::LmBatch on_device(data::LmBatch b, Device d) {
  if (d == Device::cpu()) return b;
  for (Tensor* t : {&b.idx, &b.targets, &b.positions, &b.segments})
    if (t->defined()) *t = to(*t, d);
  return b;
}

data::PairBatch on_device(data::PairBatch b, Device d) {
  if (d == Device::cpu()) return b;
  b.tokens = to(b.tokens, d);
  b.mask = to(b.mask, d);
  return b;
}

int cmd_train(int argc, char** argv) {
  Args a(
      argc, argv, 2,
      {{"model", true, "the model to train (see spool --help for the list)", "Run"},
       {"data", true,
        "mlp, resnet18: 'digits' (default) or a digits CSV(.gz); gpt-tiny: a text file or folder "
        "(default Debian's fortunes); preference models: a pairs JSONL file; video: 'synthetic' "
        "(default: the order set's 10 classes), 'synthetic-motion' (the motion set: those and 4 "
        "motion-only classes) or a list of 'path [num_frames] label' lines",
        "Run"},
       {"steps", true,
        "training steps (mlp, resnet18: instead of --epochs; gpt 300, video 1000 by default)",
        "Run"},
       {"epochs", true, "passes over the digits training set (mlp, resnet18)", "Run"},
       {"batch", true,
        "examples per step (mlp 32, gpt 8, preference pairs 8, video clips 2 by default)", "Run"},
       {"lr", true, "peak learning rate (cosine schedule)", "Run"},
       {"seed", true, "seed of initialisation, data order and dropout", "Run"},
       {"device", true, "cpu or cuda", "Run"},
       {"log", true,
        "FILE.jsonl: one JSON object per logged step and a final {\"final\": true, ...}", "Run"},
       {"log-every", true, "log every K-th step (default 10)", "Run"},
       {"trace", true,
        "FILE.json: trace steps (--trace-steps) in the Chrome trace format (Perfetto, "
        "chrome://tracing): kernels, ops, planner primitives, the optimizer, live bytes",
        "Run"},
       {"trace-steps", true, "A:B: the steps traced, A to B - 1 (default 1:3)", "Run"},
       {"profile", false,
        "when the traced steps (--trace-steps) end, print their ops by total time with calls, "
        "share of the step, GFLOP/s, GB/s and the fraction of the machine's roofline",
        "Run"},
       {"save", true, "write a training checkpoint (safetensors) at the end", "Run"},
       {"resume", true, "continue from a training checkpoint up to --steps", "Run"},
       {"pack", false,
        "pack whole documents per row (attention and targets never cross a document)",
        "GPT (gpt-tiny)"},
       {"eval-every", true, "validation loss every K steps", "GPT (gpt-tiny)"},
       {"checkpoint-policy", true,
        "train under a memory plan: none, every-K, sqrt, greedy, dp, ilp or dtr (the first batch "
        "of each shape is profiled and planned)",
        "Memory plan"},
       {"memory-budget", true,
        "the plan's budget: bytes, or a fraction such as 0.5 or 1/3 of the plain step's activation "
        "memory",
        "Memory plan"},
       {"sft", false,
        "gpt-tiny: supervised fine-tuning on prompt + chosen of --data PAIRS.jsonl (loss on the "
        "completion)",
        "Preferences (sft, dpo-gpt-tiny, reward-gpt-tiny, ppo-gpt-tiny)"},
       {"init", true,
        "W.safetensors: the starting weights of the policy (or trunk); ppo: also the reference",
        "Preferences (sft, dpo-gpt-tiny, reward-gpt-tiny, ppo-gpt-tiny)"},
       {"ref-weights", true,
        "dpo, ppo: the frozen reference's weights (default: a copy of the starting policy)",
        "Preferences (sft, dpo-gpt-tiny, reward-gpt-tiny, ppo-gpt-tiny)"},
       {"loss", true, "dpo: sigmoid, cdpo, ipo or hinge",
        "Preferences (sft, dpo-gpt-tiny, reward-gpt-tiny, ppo-gpt-tiny)"},
       {"beta", true, "dpo: the KL coefficient beta",
        "Preferences (sft, dpo-gpt-tiny, reward-gpt-tiny, ppo-gpt-tiny)"},
       {"label-smoothing", true, "dpo: the label smoothing epsilon (cdpo, sigmoid)",
        "Preferences (sft, dpo-gpt-tiny, reward-gpt-tiny, ppo-gpt-tiny)"},
       {"precompute-ref", false,
        "dpo: score every pair with the reference once and drop it from memory",
        "Preferences (sft, dpo-gpt-tiny, reward-gpt-tiny, ppo-gpt-tiny)"},
       {"reward", true,
        "ppo: R.safetensors, the reward model (spool train --model reward-gpt-tiny)",
        "Preferences (sft, dpo-gpt-tiny, reward-gpt-tiny, ppo-gpt-tiny)"},
       {"kl-coef", true, "ppo: the per-token KL penalty to the reference (default 0.05)",
        "Preferences (sft, dpo-gpt-tiny, reward-gpt-tiny, ppo-gpt-tiny)"},
       {"tokens", true, "ppo: bytes sampled after each prompt (default 64)",
        "Preferences (sft, dpo-gpt-tiny, reward-gpt-tiny, ppo-gpt-tiny)"},
       {"ppo-epochs", true, "ppo: passes over each rollout (default 4)",
        "Preferences (sft, dpo-gpt-tiny, reward-gpt-tiny, ppo-gpt-tiny)"},
       {"minibatches", true,
        "ppo: minibatches of --batch prompts in a rollout (default 4); a step is one minibatch",
        "Preferences (sft, dpo-gpt-tiny, reward-gpt-tiny, ppo-gpt-tiny)"},
       {"size", true, "frame side in pixels (default 112)", "Video models"},
       {"width", true, "the backbone's first stage width (default 64)", "Video models"},
       {"test-clips", true, "generated test clips (default 200)", "Video models"},
       {"time-limit", true, "stop after this many seconds (the cosine follows the time)", "Run"},
       {"test-list", true, "the test list (default val.txt beside --data's list)", "Video models"},
       {"flip", false, "random horizontal flips in training (labels of direction classes follow)",
        "Video models"},
       {"motion-only-from", true,
        "--data LIST: the first motion-only class; it and the classes above are scored apart "
        "(motion_only_acc; 10 for make-videos --motion)",
        "Video models"},
       {"init-2d", true, "W.safetensors: 2-D ResNet weights (inflated to 3-D for i3d)",
        "Video models"},
       {"regions", true,
        "gcn: the region graph's regions, boxes (each frame's object box and the fixed grid; the "
        "default on the generated sets) or grid (the fixed grid; the default on --data LIST)",
        "Video models"},
       {"modality", true,
        "rgb, rgbdiff (TSN's RGB differences) or flow (optical flow from spool extract-flow); "
        "the last two for the 2-D models",
        "Video models"},
       {"diff-frames", true, "rgbdiff: frames per segment, L (default 5)", "Video models"},
       {"flow-frames", true, "flow: flow fields per segment, L (default 5: 2 L channels)",
        "Video models"},
       {"scores", true, "S.safetensors: the test's class scores per clip, for spool fuse",
        "Video models"},
       {"crop", false,
        "read frames at S * 8/7: TSN's multi-scale crop in training, the centre at test",
        "Video models"},
       {"beta2", true, "AdamW's beta2", "GPT (gpt-tiny)"},
       {"recompute-gelu", false,
        "recompute the MLP's GELU in backward instead of keeping its output", "GPT (gpt-tiny)"},
       {"autocast", true, "bf16: matmuls in bf16 with f32 accumulation and f32 master weights",
        "GPT (gpt-tiny)"},
       {"split-blocks", false,
        "resnet18 under a plan: each residual block staged as two stages (a graph)", "Memory plan"},
       {"stem-groups", true,
        "resnet18 under a plan: the stem replayed in its backward in K channel groups, one at a "
        "time",
        "Memory plan"},
       {"allow-nonfinite", false,
        "use loaded weights holding NaN or Inf (warned) instead of refusing them", "Run"},
       {"zero", true,
        "0 (default) or 1: ZeRO stage 1, each process keeps AdamW's moments for its shard of "
        "the parameters only",
        "Data parallel (mpirun -np N spool train ...)"},
       {"bucket-mb", true, "gradients are reduced in buckets of at most this many MB (default 25)",
        "Data parallel (mpirun -np N spool train ...)"},
       {"dist-timeout", true,
        "seconds a collective waits for the other processes before the run stops with an error "
        "(default 300)",
        "Data parallel (mpirun -np N spool train ...)"}},
      "train");
  if (!a.has("model"))
    throw UsageError("train: --model is required (available: " + model_names() + ")");
  TrainConfig c;
  c.model = a.str("model", "");
  if (!known_model(c.model))
    throw UsageError("train: unknown model '" + c.model + "' (available: " + model_names() + ")");
  if (a.has("steps") && a.has("epochs"))
    throw UsageError("train: give --steps or --epochs, not both");
  c.device = parse_device(a.str("device", "cpu"));
  c.sft = a.has("sft");
  c.allow_nonfinite = a.has("allow-nonfinite");
  // Every output is checked before any data is read or any step is run.
  if (a.has("log")) c.log = a.str("log", "");
  if (a.has("save")) c.save = a.str("save", "");
  check_output(c.log, "--log");
  check_output(c.save, "--save");
  if (a.has("trace")) {
    c.trace = a.str("trace", "");
    check_output(c.trace, "--trace");
  }
  c.profile = a.has("profile");
  if (a.has("trace-steps")) {
    if (!c.trace && !c.profile)
      throw UsageError("train: --trace-steps needs --trace FILE or --profile");
    const std::string r = a.str("trace-steps", "");
    const auto colon = r.find(':');
    char* end = nullptr;
    const long long first = colon == std::string::npos ? -1 : std::strtoll(r.c_str(), &end, 10);
    const bool first_ok = colon != std::string::npos && end == r.c_str() + colon && colon > 0;
    const long long last = first_ok ? std::strtoll(r.c_str() + colon + 1, &end, 10) : -1;
    if (!first_ok || *end != 0 || colon + 1 == r.size() || first < 0 || last <= first)
      throw UsageError("train: --trace-steps '" + r +
                       "' is not A:B with 0 <= A < B (the steps A to B - 1)");
    c.trace_first = first;
    c.trace_last = last;
  }
  if (c.log && c.save) {
    // One regular file for both would hold whichever was written last; a device (/dev/null)
    // may take both.
    std::error_code ec;
    const auto kind = std::filesystem::status(*c.log, ec).type();
    const bool stream =
        kind == std::filesystem::file_type::character || kind == std::filesystem::file_type::fifo;
    // Compared after resolving ".", ".." and links in the folders: o/x and $PWD/o/x are one.
    const auto resolved = [](const std::string& p) {
      std::error_code e;
      const auto r = std::filesystem::weakly_canonical(p, e);
      return e ? std::filesystem::path(p).lexically_normal() : r;
    };
    if (!stream && resolved(*c.log) == resolved(*c.save))
      throw UsageError("train: --log and --save name the same file " + *c.log);
  }
  const Family family = find_model(c.model)->family;
  const bool video = family == Family::video;
  // Data parallel: the launcher's rank and world (one process: 0 of 1, MPI never started).
  dist::ProcessGroup& group = dist::world();
  c.rank = group.rank();
  c.world = group.world();
  if (a.has("dist-timeout")) c.dist_timeout = a.positive_double("dist-timeout", 300);
  group.set_timeout(c.dist_timeout);
  c.bucket_mb = a.has("bucket-mb") ? a.positive_double("bucket-mb", 25) : 25;
  if (a.has("zero")) {
    const std::string z = a.str("zero", "0");
    if (z != "0" && z != "1")
      throw UsageError("train: --zero '" + z + "' is not a ZeRO stage spool has (0 or 1)");
    c.zero = z == "1";
  }
  if (c.world > 1 || c.zero > 0) {
    if (family == Family::rlhf)
      throw UsageError("train: data parallel (" + std::to_string(c.world) + " processes" +
                       (c.zero ? ", --zero 1" : "") + ") does not train " + c.model +
                       " in this version: its rollouts are sampled in one process");
    if (c.device != Device::cpu())
      throw UsageError(
          "train: data parallel over MPI trains on the cpu; NCCL for --device cuda "
          "is not wired into training yet");
  }
  if (c.rank > 0 && !std::freopen("/dev/null", "w", stdout))  // rank 0 prints the run
    throw UsageError("train: rank " + std::to_string(c.rank) + " could not silence its output");
  const bool dpo = family == Family::preference, reward = family == Family::reward;
  const bool ppo = family == Family::rlhf;
  const bool preference = c.sft || dpo || reward || ppo;
  if (c.sft && family != Family::language)
    throw UsageError("train: --sft fine-tunes gpt-tiny; --model is '" + c.model + "'");
  for (const char* f :
       {"size", "width", "test-clips", "test-list", "flip", "init-2d", "modality", "diff-frames",
        "flow-frames", "scores", "crop", "motion-only-from", "regions"})
    if (a.has(f) && !video)
      throw UsageError(std::string("train: --") + f + " applies to the video models");
  const bool language_model = family == Family::language && !preference;
  if (a.has("time-limit") && !video && !language_model)
    throw UsageError("train: --time-limit applies to the video models and gpt-tiny");
  if (a.has("beta2") && !language_model)
    throw UsageError("train: --beta2 applies to gpt-tiny language-model training");
  if (a.has("recompute-gelu") && !language_model)
    throw UsageError("train: --recompute-gelu applies to gpt-tiny language-model training");
  if (a.has("autocast")) {
    if (!language_model)
      throw UsageError(
          "train: --autocast applies to gpt-tiny language-model training in this "
          "version");
    if (a.str("autocast", "") != "bf16")
      throw UsageError("train: --autocast '" + a.str("autocast", "") +
                       "' is not a precision autocast has; the one there is: bf16");
  }
  if (a.has("init") && !preference)
    throw UsageError(
        "train: --init applies to --sft, dpo-gpt-tiny, reward-gpt-tiny and ppo-gpt-tiny");
  if (a.has("ref-weights") && !dpo && !ppo)
    throw UsageError("train: --ref-weights applies to dpo-gpt-tiny and ppo-gpt-tiny");
  for (const char* f : {"loss", "beta", "label-smoothing", "precompute-ref"})
    if (a.has(f) && !dpo)
      throw UsageError(std::string("train: --") + f + " applies to --model dpo-gpt-tiny");
  for (const char* f : {"reward", "kl-coef", "tokens", "ppo-epochs", "minibatches"})
    if (a.has(f) && !ppo)
      throw UsageError(std::string("train: --") + f + " applies to --model ppo-gpt-tiny");
  if (preference)
    for (const char* f : {"resume", "pack", "checkpoint-policy", "memory-budget", "epochs"})
      if (a.has(f))
        throw UsageError(std::string("train: --") + f +
                         " does not apply to preference training in this version");
  c.checkpoint_policy = a.str("checkpoint-policy", "");
  c.memory_budget = a.str("memory-budget", "");
  if (!c.memory_budget.empty() && c.checkpoint_policy.empty())
    throw UsageError("train: --memory-budget needs --checkpoint-policy");
  if (!c.checkpoint_policy.empty() && c.memory_budget.empty()) c.memory_budget = "1";
  c.split_blocks = a.has("split-blocks");
  if (c.split_blocks && (c.model != "resnet18" || c.checkpoint_policy.empty()))
    throw UsageError(
        "train: --split-blocks stages resnet18's blocks as a graph for --checkpoint-policy; "
        "it needs --model resnet18 and --checkpoint-policy");
  if (a.has("stem-groups")) {
    if (c.model != "resnet18" || c.checkpoint_policy.empty())
      throw UsageError(
          "train: --stem-groups replays resnet18's stem in channel groups under "
          "--checkpoint-policy; it needs --model resnet18 and --checkpoint-policy");
    c.stem_groups = parse_stem_groups(a, "train");
  }
  if (c.split_blocks && known_policy(c.checkpoint_policy) &&
      !find_policy(c.checkpoint_policy)->plans_graphs())
    throw UsageError("train: --split-blocks makes a graph of stages, which " + c.checkpoint_policy +
                     " does not plan (it plans chains): use one that plans graphs (" +
                     policy_names(true) + ")");
  if (a.has("time-limit")) c.time_limit = a.positive_double("time-limit", 0);
  if (video) {
    for (const char* f : {"resume", "pack", "epochs", "eval-every"})
      if (a.has(f))
        throw UsageError(std::string("train: --") + f +
                         " does not apply to the video models in this version");
    c.data = a.str("data", "synthetic");
    const bool generated = c.data == "synthetic" || c.data == "synthetic-motion";
    if (!generated && !is_file(c.data))
      throw UsageError("train: --data '" + c.data +
                       "' is neither 'synthetic', 'synthetic-motion' nor an annotation list file");
    for (const char* f : {"test-list", "flip", "motion-only-from"})
      if (a.has(f) && generated)
        throw UsageError(std::string("train: --") + f + " goes with --data LIST");
    if (a.has("motion-only-from")) c.motion_only_from = a.positive_int("motion-only-from", 0);
    c.test_list = a.str("test-list", "");
    if (!c.test_list.empty() && !is_file(c.test_list))
      throw UsageError("train: --test-list: no such file: " + c.test_list);
    c.flip = a.has("flip");
    c.crop = a.has("crop");
    const std::string modality = a.str("modality", "rgb");
    if (modality != "rgb" && modality != "rgbdiff" && modality != "flow")
      throw UsageError("train: --modality '" + modality + "' is not rgb, rgbdiff or flow");
    if (a.has("diff-frames") && modality != "rgbdiff")
      throw UsageError("train: --diff-frames goes with --modality rgbdiff");
    if (a.has("flow-frames") && modality != "flow")
      throw UsageError("train: --flow-frames goes with --modality flow");
    if (modality != "rgb") {
      const models::VideoConfig vc = models::video_config(c.model);
      if (vc.three_d || vc.tdn)
        throw UsageError("train: --modality " + modality +
                         " is for the 2-D models (tsn, tsm, trn, tea, stm, eco); " + c.model +
                         (vc.three_d ? " takes RGB clips"
                                     : " takes RGB snippets and takes their differences itself"));
    }
    if (modality == "rgbdiff") {
      c.diff_frames = a.positive_int("diff-frames", 5);
      if (c.diff_frames < 2 || c.diff_frames > 16)
        throw UsageError(
            "train: --diff-frames must be 2 to 16 (frames a snippet; L - 1 "
            "differences)");
    }
    if (modality == "flow") {
      if (generated)
        throw UsageError(
            "train: --modality flow reads flow from disk: write the generated clips with spool "
            "make-videos, extract their flow with spool extract-flow, and pass --data "
            "FLOWDIR/train.txt");
      c.flow_frames = a.positive_int("flow-frames", 5);
      if (c.flow_frames > 16)
        throw UsageError("train: --flow-frames must be 1 to 16 (flow fields a segment)");
    }
    if (a.has("scores")) {
      c.scores = a.str("scores", "");
      check_output_path(*c.scores, "train --scores");
    }
    if (a.has("init-2d")) {
      c.init_2d = a.str("init-2d", "");
      if (!is_file(*c.init_2d)) throw UsageError("train: --init-2d: no such file: " + *c.init_2d);
    }
    const bool gcn = models::video_config(c.model).gcn;
    const std::string regions = a.str("regions", gcn && generated ? "boxes" : "grid");
    if (a.has("regions") && !gcn)
      throw UsageError("train: --regions is for the region graph of gcn-r18 and gcn-r50");
    if (regions != "boxes" && regions != "grid")
      throw UsageError("train: --regions '" + regions + "' is not boxes or grid");
    if (regions == "boxes" && !generated)
      throw UsageError(
          "train: --regions boxes needs the generated clips' object boxes (--data synthetic or "
          "synthetic-motion); an annotation list's videos have none, so they take the grid");
    c.object_regions = regions == "boxes";
    c.steps = a.positive_int("steps", 1000);
    c.batch = a.positive_int("batch", 2);
    c.lr = a.positive_double("lr", 0.005);
    c.seed = a.seed("seed", 0);
    c.log_every = a.positive_int("log-every", 10);
    c.video_size = a.positive_int("size", 112);
    c.video_width = a.positive_int("width", 64);
    const models::VideoConfig vc = models::video_config(c.model);
    if ((vc.tea || vc.stm || vc.tdn) && c.video_width < 16)
      throw UsageError("train: --width " + std::to_string(c.video_width) + ": " + c.model +
                       "'s motion module divides the channels by 16, so --width must be at "
                       "least 16");
    c.test_clips = a.positive_int("test-clips", 200);
    if (c.video_size < 32) throw UsageError("train: --size must be at least 32");
    // Lower bounds, before anything is built: a batch of 8-frame clips in f32, and the weights,
    // gradients and momentum of the ResNet's 3x3 convolutions, which grow as the width squared
    // (2,600 w^2 parameters for ResNet-18, 5,500 w^2 for ResNet-50: 10.6 M and 22.5 M at 64).
    check_memory(
        "train: --batch " + std::to_string(c.batch) + " --size " + std::to_string(c.video_size),
        double(c.batch) * 8 * 3 * double(c.video_size) * double(c.video_size) * 4,
        "one batch of 8-frame clips");
    const double w = double(c.video_width);
    check_memory("train: --width " + std::to_string(c.video_width),
                 (models::video_config(c.model).depth >= 50 ? 5500 : 2600) * w * w * 12,
                 "the model's weights, gradients and momentum");
    return run_training(*make_task(c), c);
  }
  if (preference) {
    if (!a.has("data"))
      throw UsageError(
          "train: preference training needs --data PAIRS.jsonl (see spool make-pairs)");
    c.data = a.str("data", "");
    for (const char* f : {"init", "ref-weights", "reward"})
      if (a.has(f) && !is_file(a.str(f, "")))
        throw UsageError(std::string("--") + f + ": no such file: " + a.str(f, ""));
    if (a.has("init")) c.init = a.str("init", "");
    if (a.has("ref-weights")) c.ref_weights = a.str("ref-weights", "");
    if (ppo) {
      if (!a.has("reward"))
        throw UsageError(
            "train: ppo-gpt-tiny needs --reward R.safetensors (spool train --model "
            "reward-gpt-tiny --save R.safetensors)");
      c.reward = a.str("reward", "");
      // 0 is allowed: PPO without the penalty, for comparison.
      c.ppo.kl_coef = a.nonnegative_double("kl-coef", c.ppo.kl_coef);
      c.completion_tokens = a.positive_int("tokens", 64);
      c.ppo_epochs = a.positive_int("ppo-epochs", 4);
      c.minibatches = a.positive_int("minibatches", 4);
    }
    try {
      c.dpo.loss = models::parse_dpo_loss(a.str("loss", "sigmoid"));
    } catch (const Error& e) {
      throw UsageError(std::string("train: --loss: ") + e.what());
    }
    c.dpo.beta = a.positive_double("beta", 0.1);
    if (a.has("label-smoothing") && c.dpo.loss != models::DpoLossType::cdpo)
      throw UsageError("train: --label-smoothing is cdpo's epsilon; add --loss cdpo");
    if (c.dpo.loss == models::DpoLossType::cdpo) {
      c.dpo.label_smoothing = a.positive_double("label-smoothing", 0.1);
      if (c.dpo.label_smoothing >= 0.5)
        throw UsageError("train: --label-smoothing must be below 0.5");
    }
    c.precompute_ref = a.has("precompute-ref");
    c.steps = a.positive_int("steps", 300);
    c.batch = a.positive_int("batch", 8);
    // The logits of one batch, 128 positions of 256 bytes in f32: a lower bound of its memory.
    check_memory("train: --batch " + std::to_string(c.batch), double(c.batch) * 128 * 256 * 4,
                 "the logits of one batch");
    if (ppo)  // a rollout's rows are scored at once: the policy's and the reference's logits
      check_memory("train: --batch " + std::to_string(c.batch) + " --minibatches " +
                       std::to_string(c.minibatches),
                   double(c.batch) * double(c.minibatches) * 128 * 256 * 4 * 2,
                   "the logits of one rollout");
    c.eval_every = a.positive_int("eval-every", 50);
    c.lr = a.positive_double("lr", dpo || reward ? 1e-4 : ppo ? 1e-5 : 1e-3);
    c.seed = a.seed("seed", 0);
    c.log_every = a.positive_int("log-every", 10);
    return run_training(*make_task(c), c);
  }
  const bool gpt = family == Family::language, resnet = c.model == "resnet18";
  c.data = a.str("data", gpt ? "" : "digits");
  c.pack = a.has("pack");
  if (c.pack && !gpt) throw UsageError("train: --pack applies to gpt models only");
  c.steps = a.positive_int("steps", 0);
  c.epochs = a.positive_int("epochs", resnet ? 2 : 30);
  if (gpt && a.has("epochs")) throw UsageError("train: gpt models take --steps, not --epochs");
  if (gpt && !a.has("steps")) c.steps = a.has("time-limit") ? 1000000000 : 1000;
  c.batch = a.positive_int("batch", gpt ? 8 : 32);
  // gpt: the logits of one batch of windows (gpt-tiny's 256 positions of 256 bytes, f32), a lower
  // bound for every GPT; mlp and resnet18: one batch of 28 x 28 images in f32.
  check_memory("train: --batch " + std::to_string(c.batch),
               double(c.batch) * (gpt ? 256.0 * 256 * 4 : 28.0 * 28 * 4),
               gpt ? "the logits of one batch" : "one batch of images");
  c.eval_every = a.positive_int("eval-every", 100);
  c.lr = a.positive_double("lr", 1e-3);
  c.beta2 = a.has("beta2") ? a.positive_double("beta2", 0.999) : 0.999;
  c.recompute_gelu = a.has("recompute-gelu");
  c.autocast = a.has("autocast");
  if (c.beta2 >= 1) throw UsageError("train: --beta2 must be below 1");
  c.seed = a.seed("seed", 0);
  c.log_every = a.positive_int("log-every", 10);
  if (a.has("resume")) {
    c.resume = a.str("resume", "");
    if (!is_file(*c.resume)) throw UsageError("--resume: no such file: " + *c.resume);
  }
  return run_training(*make_task(c), c);
}

}  // namespace spool::cli
