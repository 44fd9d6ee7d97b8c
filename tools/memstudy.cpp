// spool memstudy: the memory-versus-recompute study. For every model, policy and budget it
// plans, runs real training steps (zero_grad, forward, backward, AdamW) under the plan, checks
// the gradients against the plain step bit for bit, and reports predicted and measured peaks of
// the whole step (the update included), recomputation and step time; DIR gets memstudy.csv
// and memstudy.png.
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "data/preference.h"
#include "dist/ddp.h"
#include "dist/dist.h"
#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/factory.h"
#include "engine/planner/planner.h"
#include "engine/profile.h"
#include "engine/trace.h"
#include "models/dpo.h"
#include "models/gpt.h"
#include "models/mlp.h"
#include "models/resnet.h"
#include "models/video.h"
#include "nn/optim.h"
#include "ops/ops.h"
#include "tools/cli.h"
#include "tools/models.h"
#include "tools/planned.h"

namespace spool::cli {

namespace {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

// A model with one fixed batch and the optimizer of the standard configurations.
struct Subject {
  std::shared_ptr<nn::Module> model;
  Generator gen{0};
  Chain chain;
  // A staging whose own plain step already recomputes (resnet18-stem-groups) is measured
  // against the model's standard chain: budget fractions of its plain activations, the paired
  // plain steps and the reference gradients come from `reference`. Undefined stages: none.
  Chain reference;
  std::unique_ptr<nn::Optimizer> opt;
};

// resnet18-stem-groups: the stem replayed in this many channel groups.
constexpr int64_t kStemGroups = 4;

// The studied variants of resnet18: "-graph" stages each basic block as two stages (a graph:
// the second reads the block input again for the shortcut); "-stem-groups" is that graph with
// the stem replayed in kStemGroups channel groups in its backward (ResNet::chain's
// stem_groups), measured against resnet18's plain step.
bool resnet18_variant(const std::string& name) {
  return name == "resnet18-graph" || name == "resnet18-stem-groups";
}
// The table's entry a studied name builds from (null: not studied).
const ModelInfo* study_entry(const std::string& name) {
  const ModelInfo* m = find_model(resnet18_variant(name) ? "resnet18" : name);
  return m && m->study ? m : nullptr;
}
// gpt_only: the GPT models alone.
std::string studied_names(bool gpt_only = false) {
  std::string out;
  for (const ModelInfo& m : model_table()) {
    if (!m.study || (gpt_only && !m.gpt)) continue;
    out += (out.empty() ? "" : ", ") + m.name;
    if (m.name == "resnet18") out += ", resnet18-graph, resnet18-stem-groups";
  }
  return out;
}

// The model and its step (ModelInfo::study), on the device before the chain is made: its
// stages hold them. split_blocks and stem_groups (> 1) restage a 2-D ResNet's chain; with
// stem_groups the standard chain becomes the reference.
void build(Subject& s, const std::string& name, int64_t batch, bool recompute_gelu,
           bool split_blocks, int64_t stem_groups, Device device) {
  const ModelInfo& info = *study_entry(name);
  if (recompute_gelu && info.gpt) {
    models::GptConfig c = *info.gpt;
    c.recompute_gelu = true;
    s.model = std::make_shared<models::Gpt>(c, &s.gen);
  } else {
    s.model = info.make(&s.gen);
  }
  s.model->to(device);
  StudyStaging staging{batch, split_blocks || resnet18_variant(name), stem_groups, device};
  if (name == "resnet18-stem-groups") staging.stem_groups = std::max(stem_groups, kStemGroups);
  Generator data(1);
  StudyStep step = info.study(*s.model, staging, &data);
  s.chain = std::move(step.chain);
  s.reference = std::move(step.reference);
  s.opt = std::move(step.opt);
}

// Runs tools/SCRIPT with python3 and its two arguments passed as they are (no shell: a folder
// name is never read as a command); says on stderr when it fails.
void plot(const char* script, const std::string& in, const std::string& out) {
  const std::string path = std::string(SPOOL_SOURCE_DIR) + "/tools/" + script;
  char* argv[] = {const_cast<char*>("/usr/bin/python3"), const_cast<char*>(path.c_str()),
                  const_cast<char*>(in.c_str()), const_cast<char*>(out.c_str()), nullptr};
  pid_t pid = 0;
  int status = 0;
  const bool ran = posix_spawn(&pid, argv[0], nullptr, nullptr, argv, environ) == 0 &&
                   waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!ran)
    std::fprintf(stderr,
                 "memstudy: plotting failed (/usr/bin/python3 %s %s %s); the CSVs are complete\n",
                 path.c_str(), in.c_str(), out.c_str());
}

std::vector<std::vector<float>> grads_of(nn::Module& m) {
  std::vector<std::vector<float>> g;
  for (const auto& p : m.parameters()) g.push_back(to(p.grad(), Device::cpu()).to_vector<float>());
  return g;
}

}  // namespace

int cmd_memstudy(int argc, char** argv) {
  Args a(
      argc, argv, 2,
      {{"model", true,
        "comma-separated models (mlp, resnet18, resnet18-graph, resnet18-stem-groups, gpt-tiny, "
        "dpo-gpt-tiny, the video models)"},
       {"batch", true, "batch size (default: each model's standard one)"},
       {"policies", true, "comma-separated policies (default none,sqrt,greedy,dp,ilp,dtr)"},
       {"budgets", true,
        "comma-separated budgets: bytes, or fractions such as 0.5 or 1/3 of the plain step's "
        "activation memory (default 1,0.5,1/3)"},
       {"out", true, "DIR for memstudy.csv and memstudy.png"},
       {"steps", true, "measured steps per row (default 5)"},
       {"time-limit", true, "ilp's time limit in seconds (default 10)"},
       {"recompute-gelu", false, "the GPT models: recompute the MLP's GELU in backward"},
       {"split-blocks", false,
        "resnet18 and the 2-D video models: each block staged as two stages (a graph)"},
       {"stem-groups", true,
        "resnet18 and the 2-D video models: the stem replayed in K channel groups"},
       {"device", true, "cpu or cuda (every byte on the CUDA caching allocator)"},
       {"zero", true,
        "0 or 1: study each process of a data-parallel run (mpirun -np N spool memstudy), "
        "with ZeRO stage 1 at 1 (each process keeps its shard of the optimizer state)"},
       {"bucket-mb", true, "data parallel: gradient buckets of at most this many MB (default 25)"},
       {"no-plot", false, "skip memstudy.png"},
       {"trace", true,
        "FILE.json: the first measured step of every row, traced (Chrome trace format: "
        "Perfetto, chrome://tracing), with the allocator's and the plan's live bytes"},
       {"profile", false,
        "after the table, each row's first measured step as an op table: where its time goes, "
        "its replays (the recompute) a pass of their own, against the machine's roofline"}},
      "memstudy");
  // Every byte is counted by this device's allocator: the planner's profile, its plans and the
  // measured peaks (the CUDA caching allocator counts what tensors ask for, as the cpu's does).
  const Device device = parse_device(a.str("device", "cpu"));
  const auto model_names =
      split_list(a.str("model", "mlp,resnet18,resnet18-stem-groups,gpt-tiny,dpo-gpt-tiny"));
  for (const auto& m : model_names)
    if (!study_entry(m))
      throw UsageError("memstudy: unknown model '" + m + "' (available: " + studied_names() + ")");
  const bool recompute_gelu = a.has("recompute-gelu");
  if (recompute_gelu)
    for (const auto& m : model_names)
      if (!study_entry(m)->gpt)
        throw UsageError("memstudy: --recompute-gelu applies to the GPT models (" +
                         studied_names(true) + "), not '" + m + "'");
  const bool split_blocks = a.has("split-blocks");
  const int64_t stem_groups = parse_stem_groups(a, "memstudy");
  if (split_blocks || stem_groups > 1)
    for (const auto& m : model_names)
      if (!study_entry(m)->restages) {
        std::string restaged;
        for (const ModelInfo& e : model_table())
          if (e.restages) restaged += (restaged.empty() ? "" : ", ") + e.name;
        throw UsageError(std::string("memstudy: --") +
                         (split_blocks ? "split-blocks" : "stem-groups") +
                         " restages the 2-D ResNets (" + restaged + "), not '" + m + "'");
      }
  const auto policies = split_list(a.str("policies", "none,sqrt,greedy,dp,ilp,dtr"));
  for (const auto& p : policies)
    if (!known_policy(p))
      throw UsageError("memstudy: unknown checkpoint policy '" + p + "' (known: " + policy_names() +
                       ")");
  std::vector<BudgetSpec> budgets;
  for (const auto& b : split_list(a.str("budgets", "1,0.5,1/3")))
    budgets.push_back(parse_budget(b, "memstudy"));
  const int64_t batch = a.has("batch") ? a.positive_int("batch", 0) : 0;
  const int64_t steps = a.positive_int("steps", 5);
  const std::string out = a.str("out", "memstudy");
  PlanOptions options;
  options.time_limit_s = a.positive_double("time-limit", 10);
  // Data parallel (docs/distributed.md): every process studies its own step, each with the
  // batch above (the global batch is N of them), its gradients reduced with the others' and,
  // with --zero 1, its shard of the optimizer state. Rank 0 writes the table; each row also
  // gives every rank's predicted and measured peaks.
  dist::ProcessGroup& group = dist::world();
  int zero = 0;
  if (a.has("zero")) {
    const std::string z = a.str("zero", "0");
    if (z != "0" && z != "1")
      throw UsageError("memstudy: --zero '" + z + "' is not a ZeRO stage spool has (0 or 1)");
    zero = z == "1";
  }
  const double bucket_mb = a.has("bucket-mb") ? a.positive_double("bucket-mb", 25) : 25;
  const bool data_parallel = group.world() > 1 || zero > 0;
  if (data_parallel && device != Device::cpu())
    throw UsageError("memstudy: data parallel (" + std::to_string(group.world()) +
                     " processes) studies the cpu; NCCL for --device cuda is not wired in yet");
  const bool writer = group.rank() == 0;
  std::optional<std::string> trace_path;
  if (a.has("trace")) {
    trace_path = a.str("trace", "");
    if (writer) check_output(trace_path, "memstudy: --trace");
  }
  // --profile: each row's traced step as an op table (engine/profile.h), printed after the study.
  const bool profiling = a.has("profile") && writer;
  std::optional<MachinePeaks> peaks;
  if (profiling) peaks = measure_peaks();
  std::vector<std::pair<std::string, Profile>> profiles;
  const bool tracing = (trace_path || profiling) && writer;
  if (tracing) {
    trace::start();
    trace::stop();  // recording resumes for each row's traced step
  }
  if (!writer && !std::freopen("/dev/null", "w", stdout))
    throw UsageError("memstudy: rank " + std::to_string(group.rank()) +
                     " could not silence its output");
  // The output folder: made if missing (its parent must exist); a link or a file there is
  // refused, and so is an unwritable folder, before any model is built. Rank 0's alone.
  if (writer) {
    struct stat st;
    if (lstat(out.c_str(), &st) != 0) {
      if (::mkdir(out.c_str(), 0755) != 0)
        throw UsageError("memstudy: --out: cannot make folder " + out + ": " +
                         std::strerror(errno));
    } else if (!S_ISDIR(st.st_mode)) {
      throw UsageError("memstudy: --out: " + out + " exists and is not a folder" +
                       (S_ISLNK(st.st_mode) ? " (a symbolic link)" : ""));
    }
    check_output(out + "/memstudy.csv", "memstudy: --out");
    check_output(out + "/timeline.csv", "memstudy: --out");
    if (!a.has("no-plot")) check_output(out + "/memstudy.png", "memstudy: --out");
  }

  const std::string csv_path = out + "/memstudy.csv";
  // Rows as they come; renamed into place at the end.
  LineLog csv(writer ? std::optional(csv_path) : std::nullopt, "memstudy");
  csv.write(
      "model,policy,budget_bytes,predicted_peak_bytes,measured_peak_bytes,recompute_flops,"
      "step_ms,plan_ms,grads_equal,paired_plain_ms,step_ratio,peak_at");
  // The memory timelines: every primitive of one step per policy (below).
  const std::string timeline_path = out + "/timeline.csv";
  LineLog timeline_csv(writer ? std::optional(timeline_path) : std::nullopt, "memstudy");
  timeline_csv.write(
      "model,policy,budget_bytes,index,primitive,recompute,predicted_peak_bytes,"
      "measured_peak_bytes,predicted_live_bytes,measured_live_bytes");
  std::printf("%-12s %-8s %-6s %14s %14s %14s %9s %9s %8s %7s %8s %6s  %s\n", "model", "policy",
              "budget", "budget B", "predicted B", "measured B", "GFLOP re", "step ms", "plain ms",
              "x plain", "plan ms", "grads", "plan");
  for (const auto& name : model_names) {
    Subject s;
    build(s, name, batch, recompute_gelu, split_blocks, stem_groups, device);
    auto params = s.model->parameters();
    s.opt->zero_grad();
    Tensors start;
    for (const auto& p : params) start.push_back(clone(p));
    const RngState gen0 = s.gen.state();
    auto restore = [&] {
      NoGrad ng;
      for (size_t i = 0; i < params.size(); ++i) copy_(params[i], start[i]);
      s.gen.set_state(gen0);
      s.opt->zero_grad();
    };
    // The update: the optimizer's step, or data parallel's reduction and step (every rank's
    // share of the global batch is 1 / N). begin() before a step's backward lets data parallel
    // reduce buckets while it runs.
    std::optional<dist::DataParallel> ddp;
    const double share = 1.0 / group.world();
    if (data_parallel) {
      ddp.emplace(group, *s.model, *s.opt, dist::DataParallelOptions{bucket_mb, zero});
      ddp->broadcast_state();
    }
    auto begin = [&] {
      if (ddp) ddp->begin_step([&] { return share; });
    };
    auto update = [&] {
      trace::Span span("phase", "optimizer");
      if (!ddp) return s.opt->step();
      ddp->reduce_gradients(share);
      ddp->step();
    };
    // A first step creates the optimizer state; the profile is taken after it, so every
    // measured step starts alike. Then the plain step gives the reference gradients.
    ChainProfile prof = profile_chain(s.chain);
    update();
    restore();
    prof = profile_chain(s.chain);
    restore();
    const bool has_reference = !s.reference.stages.empty();
    Chain& plain_chain = has_reference ? s.reference : s.chain;
    ChainProfile plain_prof = prof;
    if (has_reference) {
      plain_prof = profile_chain(s.reference);
      restore();
    }
    const Plan none = make_plan(plain_prof, "none", kUnlimited, options);
    run_step(plain_chain, plain_prof, none);
    auto ref = grads_of(*s.model);
    if (has_reference) {
      // The rows' gradients are checked against this staging's own plain step (a plan must
      // change no bit); that step is set against the standard one here, once.
      restore();
      run_step(s.chain, prof, make_plan(prof, "none", kUnlimited, options));
      const auto own = grads_of(*s.model);
      double worst = 0;
      size_t differing = 0;
      for (size_t k = 0; k < own.size(); ++k) {
        float scale = 0;
        for (float v : ref[k]) scale = std::max(scale, std::abs(v));
        for (size_t e = 0; e < own[k].size(); ++e)
          worst =
              std::max(worst, double(std::abs(own[k][e] - ref[k][e])) / std::max(scale, 1e-30f));
        differing += own[k] != ref[k];
      }
      if (differing == 0)
        std::printf("%-12s its plain step's gradients are the standard chain's bit for bit\n",
                    name.c_str());
      else
        std::printf(
            "%-12s its plain step's gradients differ from the standard chain's in %zu of %zu "
            "tensors, "
            "by at most %.2g of each tensor's largest entry (BLAS's rounding)\n",
            name.c_str(), differing, own.size(), worst);
      ref = own;
    }
    const int64_t fixed = prof.base_bytes + prof.param_grad_bytes;
    const int64_t activation = none.predicted_peak - fixed;
    if (has_reference)
      SPOOL_CHECK(plain_prof.base_bytes + plain_prof.param_grad_bytes == fixed, "memstudy: ", name,
                  ": the reference chain's fixed bytes differ");
    // The optimizer update after the backward: what it allocates above the live parameters,
    // state and gradients (measured once here; the rows check it). A whole step's peak is the
    // larger of the forward/backward peak and fixed + this.
    int64_t update_extra = 0;
    {
      const int64_t live = memory_stats(device).live_bytes;
      reset_peak(device);
      update();
      update_extra = memory_stats(device).peak_bytes - live;
      restore();
    }
    std::map<std::string, std::set<std::string>> planned;  // budget -> the policies that planned it
    for (const auto& policy : policies) {
      for (const auto& b : budgets) {
        const int64_t budget = b.resolve(plain_prof);
        Plan plan;
        std::string failed;
        try {
          plan = make_plan(prof, policy, budget, options);
        } catch (const Error& e) {
          failed = e.what();
        }
        // Every rank runs the row or none does (its collectives must match).
        if (data_parallel) {
          Tensor t = full({1}, failed.empty() ? 0.0 : 1.0, DType::f64);
          group.all_reduce_sum(t);
          if (failed.empty() && t.item() > 0) failed = "another rank could not plan this row";
        }
        if (!failed.empty()) {
          std::printf("%-12s %-8s %-6s %14lld  %s\n", name.c_str(), policy.c_str(), b.text.c_str(),
                      (long long)budget, failed.c_str());
          continue;
        }
        planned[b.text].insert(policy);
        restore();
        std::vector<double> ms, plain_ms;
        int64_t measured = 0;
        bool equal = false;
        // Predicted and measured peaks cover the whole step: forward, backward and the update.
        const int64_t predicted = std::max(plan.predicted_peak, fixed + update_extra);
        // Each planned step is paired with a plain one (the order alternating), so the row's
        // time is read against a reference taken in the same stretch of this noisy machine. A
        // first, untimed pair (k = -1) warms both up after the restore; its gradients are the
        // ones checked. Peaks are measured on every planned step.
        auto plain_step = [&](bool timed) {
          s.opt->zero_grad();
          const double t0 = now_seconds();
          begin();
          run_step(plain_chain, plain_prof, none);
          update();
          if (timed) plain_ms.push_back((now_seconds() - t0) * 1e3);
        };
        for (int64_t k = -1; k < steps; ++k) {
          const bool plain_first = k >= 0 && k % 2 == 1;
          if (plain_first) plain_step(true);
          s.opt->zero_grad();
          // --trace: this row's first measured step, in a "step" span named after the row.
          const bool traced = tracing && k == 0;
          const double traced_from = trace::now_us();
          if (traced) trace::resume();
          std::optional<trace::Span> step_span;
          if (traced) step_span.emplace("step", name + " " + policy + " " + b.text);
          const double t0 = now_seconds();
          begin();
          const StepResult r = run_step(s.chain, prof, plan);
          if (k == -1) equal = grads_of(*s.model) == ref;  // this rank's, before the reduction
          const int64_t before_update = memory_stats(device).live_bytes;
          reset_peak(device);
          update();
          const int64_t update_peak = memory_stats(device).peak_bytes;
          if (k >= 0) ms.push_back((now_seconds() - t0) * 1e3);
          if (traced) {
            step_span.reset();
            trace::stop();
            if (profiling) {  // this step's spans alone
              std::vector<trace::SpanRecord> mine;
              for (trace::SpanRecord& sp : trace::spans())
                if (sp.ts >= traced_from) mine.push_back(std::move(sp));
              profiles.push_back({name + " " + policy + " " + b.text, profile_of(mine)});
            }
          }
          measured = std::max({measured, r.measured_peak, update_peak});
          if (before_update != fixed)
            std::fprintf(stderr, "memstudy: %s %s: %lld B live before the update, not %lld\n",
                         name.c_str(), policy.c_str(), (long long)before_update, (long long)fixed);
          if (!r.mismatch.empty())
            std::fprintf(stderr, "memstudy: %s %s: account differs: %s\n", name.c_str(),
                         policy.c_str(), r.mismatch.c_str());
          if (!plain_first) plain_step(k >= 0);
        }
        std::sort(ms.begin(), ms.end());
        std::sort(plain_ms.begin(), plain_ms.end());
        const double step_ms = ms[ms.size() / 2], plain_step_ms = plain_ms[plain_ms.size() / 2];
        const double ratio = step_ms / plain_step_ms;
        std::printf(
            "%-12s %-8s %-6s %14lld %14lld %14lld %9.3f %9.1f %8.1f %7.3f %8.2f %6s  %s%s%s\n",
            name.c_str(), policy.c_str(), b.text.c_str(), (long long)budget, (long long)predicted,
            (long long)measured, plan.recompute_flops / 1e9, step_ms, plain_step_ms, ratio,
            plan.plan_ms, equal ? "equal" : "DIFFER", plan.describe().c_str(),
            plan.note.empty() ? "" : "  ", plan.note.c_str());
        if (data_parallel) {
          // Every rank's predicted and measured peaks (each rank plans its own step).
          Tensor mine = full({2}, 0.0, DType::f64), all = empty({2 * group.world()}, DType::f64);
          mine.data<double>()[0] = double(predicted);
          mine.data<double>()[1] = double(measured);
          group.all_gather(mine, all);
          std::string ranks;
          for (int r = 0; r < group.world(); ++r) {
            const auto p = (long long)all.data<double>()[2 * r],
                       m = (long long)all.data<double>()[2 * r + 1];
            ranks += "  rank " + std::to_string(r) + ": " + std::to_string(p) +
                     (p == m ? " = " : " != ") + std::to_string(m);
          }
          std::printf("%-12s predicted vs measured per rank:%s\n", "", ranks.c_str());
        }
        std::fflush(stdout);
        char line[512];
        // peak_at: where the forward/backward peak is (the update's, when that is larger).
        const std::string peak_at =
            plan.predicted_peak >= fixed + update_extra ? plan.peak_at : "the optimizer update";
        std::snprintf(line, sizeof line, "%s,%s,%lld,%lld,%lld,%.0f,%.3f,%.3f,%s,%.3f,%.4f,%s",
                      name.c_str(), policy.c_str(), (long long)budget, (long long)predicted,
                      (long long)measured, plan.recompute_flops, step_ms, plan.plan_ms,
                      equal ? "true" : "false", plain_step_ms, ratio, peak_at.c_str());
        csv.write(line);
      }
    }
    std::printf(
        "%-12s fixed (parameters, optimizer state, batch, gradients): %lld B; plain-step "
        "activations: %lld B; the optimizer update allocates %lld B more\n",
        name.c_str(), (long long)fixed, (long long)activation, (long long)update_extra);
    // The timelines: the plain step, and every other policy at the smallest budget that all of
    // them planned, one step each with every primitive's predicted and measured bytes.
    const BudgetSpec* common = nullptr;
    int64_t common_bytes = 0;
    for (const auto& b : budgets) {
      bool all = true;
      for (const auto& policy : policies)
        if (policy != "none" && !planned[b.text].count(policy)) all = false;
      const int64_t bytes = b.resolve(plain_prof);
      if (all && (!common || bytes < common_bytes)) {
        common = &b;
        common_bytes = bytes;
      }
    }
    std::vector<std::string> drawn{"none"};
    if (common)
      for (const auto& policy : policies)
        if (policy != "none") drawn.push_back(policy);
    size_t equal_points = 0, points = 0;
    for (const auto& policy : drawn) {
      const bool plain = policy == "none";
      const Plan plan = make_plan(prof, policy, plain ? kUnlimited : common_bytes, options);
      restore();
      begin();
      std::vector<TimelinePoint> tl;
      run_step(s.chain, prof, plan, &tl);
      update();
      for (size_t k = 0; k < tl.size(); ++k) {
        const TimelinePoint& t = tl[k];
        std::string label = t.primitive;
        std::replace(label.begin(), label.end(), ',', ';');
        char line[512];
        std::snprintf(line, sizeof line, "%s,%s,%lld,%zu,%s,%d,%lld,%lld,%lld,%lld", name.c_str(),
                      policy.c_str(), (long long)(plain ? 0 : common_bytes), k, label.c_str(),
                      int(t.recompute), (long long)t.predicted_peak, (long long)t.measured_peak,
                      (long long)t.predicted_live, (long long)t.measured_live);
        timeline_csv.write(line);
        equal_points += t.predicted_peak == t.measured_peak && t.predicted_live == t.measured_live;
        ++points;
      }
    }
    std::printf(
        "%-12s timeline: the plain step%s, %zu primitives; predicted = measured (live after "
        "and peak within) at %zu of them\n",
        name.c_str(),
        common ? (" and " + std::to_string(drawn.size() - 1) + " policies at budget " +
                  common->text + " (" + std::to_string(common_bytes) + " B)")
                     .c_str()
               : " (no budget every policy planned)",
        points, equal_points);
  }
  csv.commit();
  timeline_csv.commit();
  std::printf("wrote %s and %s\n", csv_path.c_str(), timeline_path.c_str());
  for (const auto& [row, profile] : profiles) {
    // The recompute a plan pays: its replays' rows, against the step.
    double replay_ms = 0;
    for (const ProfileRow& r : profile.rows)
      if (r.pass == "replay") replay_ms += r.ms / std::max(1, profile.steps);
    std::printf("\n%s: replays %.2f ms of a %.2f ms step (%.1f %%)\n", row.c_str(), replay_ms,
                profile.step_ms, profile.step_ms > 0 ? 100 * replay_ms / profile.step_ms : 0.0);
    print_profile(profile, *peaks, stdout);
  }
  if (trace_path && writer) {
    trace::write(*trace_path);
    std::printf("wrote %s (%lld trace events)\n", trace_path->c_str(), (long long)trace::events());
  }
  if (writer && !a.has("no-plot")) {
    // memstudy.png, then the timelines (timeline_<model>.png); the CSVs are complete either way.
    std::fflush(stdout);  // the table first, then the plotters' lines
    plot("plot_memstudy.py", csv_path, out + "/memstudy.png");
    plot("plot_timeline.py", timeline_path, out);
  }
  return 0;
}

}  // namespace spool::cli
