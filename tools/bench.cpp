// spool bench --model gpt-tiny: times full training steps (zero_grad, forward, backward, AdamW
// step) on the standard configuration and prints one JSON line: the median step time, tokens
// per second (targets that count in the loss) and the allocator's peak bytes during the timed
// steps.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <optional>

#include "data/preference.h"
#include "data/text.h"
#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/factory.h"
#include "engine/flops.h"
#include "engine/profile.h"
#include "engine/trace.h"
#include "models/dpo.h"
#include "models/gpt.h"
#include "models/video.h"
#include "nn/optim.h"
#include "ops/ops.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/models.h"
#include "tools/train.h"

namespace spool::cli {

namespace {

// The one timing loop of every benchmark: `warmup` untimed steps, then `steps` timed ones. Each
// step's `prepare(s)` (its batch, moved to the device) runs untimed; `step()` (zero_grad,
// forward, backward, optimizer step) is timed between two synchronizations of the device. The
// allocator's peak is of the timed steps.
// With a trace (--trace FILE), `trace_steps` more steps run after the timed ones with the trace
// on (engine/trace.h), each in a "step" span with its batch's preparation in a "data" span; their
// median is traced_median, against `median` of the same run untraced. The traced steps' peak and
// the live bytes at the trace's end are the allocator's figures its counter track must show.
struct StepTimes {
  double median = 0, total = 0;  // ms
  int64_t peak_bytes = 0;
  double traced_median = 0;  // ms; 0 without a trace
  int64_t traced_peak_bytes = 0, traced_end_live_bytes = 0;
  std::optional<Profile> profile;
};
struct TraceRequest {
  std::optional<std::string> path;  // --trace
  bool profile = false;             // --profile: the op table of the traced steps
  int64_t steps = 1;
  bool on() const { return path || profile; }
};
StepTimes time_steps(Device device, int64_t warmup, int64_t steps,
                     const std::function<void(int64_t)>& prepare, const std::function<void()>& step,
                     const TraceRequest& tr = {}) {
  std::vector<double> ms, traced;
  int64_t timed_peak = -1;
  const int64_t last = warmup + steps + (tr.on() ? tr.steps : 0);
  for (int64_t s = 0; s < last; ++s) {
    const bool tracing = s >= warmup + steps;
    if (tracing && s == warmup + steps) {
      timed_peak = memory_stats(device).peak_bytes;
      reset_peak(device);
      trace::start();
    }
    if (prepare) {
      trace::Span data("data", "batch");
      prepare(s);
    }
    backend(device).synchronize();
    if (s == warmup) reset_peak(device);
    std::optional<trace::Span> whole;
    if (tracing) whole.emplace("step", "step " + std::to_string(s - warmup - steps));
    const double t0 = now_seconds();
    step();
    backend(device).synchronize();
    const double t = (now_seconds() - t0) * 1e3;
    whole.reset();
    if (tracing)
      traced.push_back(t);
    else if (s >= warmup)
      ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  StepTimes t{ms[ms.size() / 2], 0, timed_peak >= 0 ? timed_peak : memory_stats(device).peak_bytes};
  for (double v : ms) t.total += v;
  if (tr.on()) {
    const MemoryStats m = memory_stats(device);
    trace::stop();
    t.traced_peak_bytes = m.peak_bytes;
    t.traced_end_live_bytes = m.live_bytes;
    if (tr.path) trace::write(*tr.path);
    if (tr.profile) t.profile = profile_of(trace::spans());
    std::sort(traced.begin(), traced.end());
    t.traced_median = traced[traced.size() / 2];
  }
  return t;
}

// The JSON line with the trace's fields added: the traced steps' median, the file and its size.
Json& with_trace(Json& j, const StepTimes& t, const TraceRequest& tr) {
  if (!tr.on()) return j;
  j.add("traced_steps", tr.steps).add("traced_median_step_ms", t.traced_median);
  j.add("traced_peak_bytes", t.traced_peak_bytes)
      .add("traced_end_live_bytes", t.traced_end_live_bytes);
  if (tr.path) j.add("trace", *tr.path);
  return j.add("trace_events", trace::events()).add("trace_dropped_events", trace::dropped());
}

// --profile: the op table after the JSON line, against the peaks measured at the start.
std::optional<MachinePeaks> g_peaks;
void print_profile_of(const StepTimes& t) {
  if (t.profile && g_peaks) print_profile(*t.profile, *g_peaks, stdout);
}

// The optimizer's phase of a step, as a span of a trace (backward() opens its own "backward"
// phase; the benchmarks open "forward").
void traced_step(nn::Optimizer& opt) {
  trace::Span span("phase", "optimizer");
  opt.step();
}

// dpo-gpt-tiny (CONFIGS.md): 8 pairs of 128 tokens, the first 32 the prompt, chosen and rejected
// through the policy as one [16, 128] batch; the reference's log-probabilities are computed in
// the step (under NoGrad) unless --precompute-ref, when they are fixed numbers and the reference
// model is not in memory.
int bench_dpo(const Args& a, const ModelInfo& info, int64_t steps, int64_t warmup,
              const TraceRequest& tr) {
  const bool precompute = a.has("precompute-ref");
  const models::GptConfig config = *info.gpt;
  const int64_t pairs = 8, t = config.context, prompt = 32;
  Generator gen(0);
  models::Gpt policy(config, &gen);
  std::unique_ptr<models::Gpt> ref;
  if (!precompute) {
    ref = std::make_unique<models::Gpt>(config);
    ref->load_state_dict(policy.state_dict());
    ref->eval();
  }
  nn::AdamW opt(nn::decay_matrices_only(policy, 0.0), {.lr = 1e-4});
  const data::PairBatch batch = data::random_pair_batch(pairs, t, prompt, &gen);
  const Tensor &tokens = batch.tokens, &mask = batch.mask;
  const Tensor fixed = full({pairs}, -400.0);  // precomputed reference log-probabilities
  const StepTimes times = time_steps(
      Device::cpu(), warmup, steps, nullptr,
      [&] {
        opt.zero_grad();
        Tensor rc = fixed, rr = fixed;
        if (ref) {
          trace::Span span("phase", "reference");
          NoGrad no_grad;
          std::tie(rc, rr) = models::pair_logps(*ref, tokens, mask);
        }
        Tensor loss;
        {
          trace::Span span("phase", "forward");
          auto [pc, pr] = models::pair_logps(policy, tokens, mask);
          loss = models::dpo_loss(pc, pr, rc, rr, {}).loss;
        }
        backward(loss);
        traced_step(opt);
      },
      tr);
  std::printf("%s\n",
              with_trace(Json()
                             .add("model", info.name)
                             .add("device", "cpu")
                             .add("reference", precompute ? "precomputed" : "live")
                             .add("steps", steps)
                             .add("median_step_ms", times.median)
                             .add("pairs_per_s", double(pairs * steps) / (times.total / 1e3))
                             .add("peak_bytes", times.peak_bytes),
                         times, tr)
                  .str()
                  .c_str());
  print_profile_of(times);
  return 0;
}

// The video models (CONFIGS.md; the -r50 models the same on ResNet-50): 2 clips of 8 frames at
// 112 x 112 (TDN: 8 snippets of 5), 10 classes, AdamW as CONFIGS.md says (lr 1e-3, weight decay
// 0.01 on matrices only); random frames and labels. forward_gflop_per_clip is one training-mode
// forward's recorded cost (engine/flops.h) over the 2 clips.
int bench_video(const std::string& name, int64_t steps, int64_t warmup, const TraceRequest& tr) {
  Generator gen(0);
  auto model = models::make_video_model(name, 64, &gen);
  nn::AdamW opt(nn::decay_matrices_only(*model, 0.01), {.lr = 1e-3});
  const Tensor x = randn(models::video_input_shape(name, 2, 8, 112), DType::f32, &gen);
  const Tensor labels = from_vector(std::vector<int64_t>{3, 7});
  model->train();
  const double flops = forward_flops([&] { return model->forward(x); });
  const StepTimes times = time_steps(
      Device::cpu(), warmup, steps, nullptr,
      [&] {
        opt.zero_grad();
        Tensor loss;
        {
          trace::Span span("phase", "forward");
          loss = cross_entropy(model->forward(x), labels);
        }
        backward(loss);
        traced_step(opt);
      },
      tr);
  std::printf("%s\n", with_trace(Json()
                                     .add("model", name)
                                     .add("device", "cpu")
                                     .add("steps", steps)
                                     .add("median_step_ms", times.median)
                                     .add("clips_per_s", double(2 * steps) / (times.total / 1e3))
                                     .add("peak_bytes", times.peak_bytes)
                                     .add("parameters", model->num_parameters())
                                     .add("forward_gflop_per_clip", flops / 2 / 1e9),
                                 times, tr)
                          .str()
                          .c_str());
  print_profile_of(times);
  return 0;
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  Args a(
      argc, argv, 2,
      {{"model", true, "gpt-tiny, dpo-gpt-tiny or a video model"},
       {"steps", true, "timed steps"},
       {"warmup", true, "untimed steps first"},
       {"batching", true, "gpt-tiny: random windows, packed documents or padded documents"},
       {"data", true,
        "gpt-tiny packed or padded: a text file or folder (default Debian's fortunes)"},
       {"attention", true, "gpt-tiny: flash or naive"},
       {"checkpoint-blocks", false,
        "gpt-tiny: keep only each block's input and replay blocks in backward"},
       {"recompute-gelu", false, "gpt-tiny: recompute the MLP's GELU in backward"},
       {"autocast", true, "gpt-tiny: bf16 matmuls with f32 accumulation"},
       {"device", true, "cpu or cuda"},
       {"precompute-ref", false,
        "dpo-gpt-tiny: the reference's scores computed once, the reference dropped"},
       {"trace", true,
        "FILE.json: after the timed steps, trace more (--trace-steps) into FILE in the Chrome "
        "trace format (Perfetto, chrome://tracing): kernels, ops, phases, live bytes"},
       {"trace-steps", true, "steps traced after the timed ones (default 1; 3 with --profile)"},
       {"profile", false,
        "after the JSON line, the traced steps' ops by total time with calls, share of the step, "
        "GFLOP/s, GB/s and the fraction of the machine's roofline (peaks measured at start)"}},
      "bench");
  TraceRequest tr;
  if (a.has("profile")) {
    tr.profile = true;
    tr.steps = 3;
    g_peaks = measure_peaks();
  }
  if (a.has("trace")) {
    tr.path = a.str("trace", "");
    check_output(tr.path, "bench: --trace");
  }
  if (a.has("trace-steps")) {
    if (!tr.on()) throw UsageError("bench: --trace-steps needs --trace FILE or --profile");
    tr.steps = a.positive_int("trace-steps", 1);
  }
  const std::string model_name = a.str("model", "gpt-tiny");
  const ModelInfo* info = find_model(model_name);
  const auto timed = [](const ModelInfo& m) {  // bench times the gpt, dpo and video steps
    return m.family == Family::language || m.family == Family::preference ||
           m.family == Family::video;
  };
  if (!info || !timed(*info)) {
    std::string names;
    for (const ModelInfo& m : model_table())
      if (timed(m)) names += (names.empty() ? "" : ", ") + m.name;
    throw UsageError("bench: " +
                     (info ? "'" + model_name + "' is not one of bench's models"
                           : "unknown model '" + model_name + "'") +
                     " (available: " + names + ")");
  }
  if (info->family != Family::preference && a.has("precompute-ref"))
    throw UsageError("bench: --precompute-ref applies to --model dpo-gpt-tiny");
  if (info->family == Family::video) {
    for (const char* f : {"batching", "data", "attention", "checkpoint-blocks", "recompute-gelu",
                          "autocast", "device"})
      if (a.has(f)) throw UsageError(std::string("bench: --") + f + " is for the gpt models");
    return bench_video(model_name, a.positive_int("steps", 5), a.positive_int("warmup", 1), tr);
  }
  if (info->family == Family::preference) {
    for (const char* f :
         {"batching", "data", "attention", "checkpoint-blocks", "recompute-gelu", "autocast"})
      if (a.has(f)) throw UsageError(std::string("bench: --") + f + " is for the gpt models");
    if (a.has("device") && parse_device(a.str("device", "cpu")) != Device::cpu())
      throw UsageError("bench: " + model_name + " runs on the cpu in this version");
    return bench_dpo(a, *info, a.positive_int("steps", 10), a.positive_int("warmup", 2), tr);
  }
  const Device device = parse_device(a.str("device", "cpu"));
  const std::string batching = a.str("batching", "random");
  if (batching != "random" && batching != "packed" && batching != "padded")
    throw UsageError("bench: --batching '" + batching + "' is not random, packed or padded");
  // Random batches are the standard configuration's timing input, uniform random bytes: a corpus
  // would not change them, so --data with them is a mistake, not a request.
  if (batching == "random" && a.has("data"))
    throw UsageError(
        "bench: --data is read only with --batching packed or padded (random batches, the "
        "default, are uniform random bytes)");
  const std::string attention = a.str("attention", "flash");
  if (attention != "flash" && attention != "naive")
    throw UsageError("bench: --attention '" + attention + "' is not flash or naive");
  const int64_t steps = a.positive_int("steps", 10), warmup = a.positive_int("warmup", 2);
  const bool autocast = a.has("autocast");
  if (autocast && a.str("autocast", "") != "bf16")
    throw UsageError("bench: --autocast '" + a.str("autocast", "") +
                     "' is not a precision autocast has; the one there is: bf16");

  models::GptConfig config = *info->gpt;
  config.flash = attention == "flash";
  config.checkpoint_blocks = a.has("checkpoint-blocks");
  config.recompute_gelu = a.has("recompute-gelu");
  const int64_t batch = 8, t = config.context;
  Generator gen(0);
  models::Gpt model(config, &gen);
  model.to(device);
  nn::AdamW opt(nn::decay_matrices_only(model, 0.01), {.lr = 1e-3});
  data::TextCorpus corpus;
  if (batching != "random")
    corpus = data::load_text(a.has("data") ? a.str("data", "") : data::default_corpus_path());
  size_t cursor = 0;
  auto next_batch = [&](int64_t step) {
    if (batching == "packed") return data::packed_batch(corpus.train, batch, t, cursor);
    if (batching == "padded") return data::padded_batch(corpus.train, batch, t, cursor);
    data::LmBatch b;  // uniform random bytes: the standard configuration's timing input
    Tensor r = rand({batch, t + 1}, DType::f32, &gen, 0, double(config.vocab));
    Tensor ids = to(r, DType::i64);
    b.idx = narrow(ids, 1, 0, t);
    b.targets = contiguous(narrow(ids, 1, 1, t));
    b.idx = contiguous(b.idx);
    b.real_targets = batch * t;
    (void)step;
    return b;
  };
  data::LmBatch b;
  int64_t tokens = 0;
  const auto prepare = [&](int64_t s) {
    b = next_batch(s);
    b.idx = to(b.idx, device);
    b.targets = to(b.targets, device);
    if (b.positions.defined()) b.positions = to(b.positions, device);
    if (b.segments.defined()) b.segments = to(b.segments, device);
    if (s >= warmup) tokens += b.real_targets;
  };
  const StepTimes times = time_steps(
      device, warmup, steps, prepare,
      [&] {
        opt.zero_grad();
        {
          std::optional<Autocast> scope;
          if (autocast) scope.emplace();
          Tensor loss;
          {
            trace::Span span("phase", "forward");
            Tensor logits = model.forward(b.idx, b.positions, b.segments);
            loss = cross_entropy(reshape(logits, {-1, logits.size(-1)}), reshape(b.targets, {-1}));
          }
          backward(loss);
        }
        traced_step(opt);
      },
      tr);
  std::printf("%s\n", with_trace(Json()
                                     .add("model", model_name)
                                     .add("device", device.str())
                                     .add("batching", batching)
                                     .add("attention", attention)
                                     .add("checkpoint_blocks", config.checkpoint_blocks)
                                     .add("recompute_gelu", config.recompute_gelu)
                                     .add("autocast", autocast ? "bf16" : "none")
                                     .add("steps", steps)
                                     .add("median_step_ms", times.median)
                                     .add("tokens_per_s", double(tokens) / (times.total / 1e3))
                                     .add("peak_bytes", times.peak_bytes),
                                 times, tr)
                          .str()
                          .c_str());
  print_profile_of(times);
  return 0;
}

}  // namespace spool::cli
