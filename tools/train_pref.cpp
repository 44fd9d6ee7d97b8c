// spool train on preference pairs (JSON Lines of prompt / chosen / rejected):
//   --model gpt-tiny --sft          supervised fine-tuning on prompt + chosen, loss on the
//                                   completion tokens only
//   --model dpo-gpt-tiny            DPO (or cdpo, ipo, hinge) against a frozen reference
//   --model reward-gpt-tiny         a Bradley-Terry reward model on the same pairs
//   --model ppo-gpt-tiny            PPO on the pairs' prompts, rewarded by a reward model
// Every logged step carries the metrics under the names the Python preference tools use; the
// held-out pairs (every 10th) are evaluated every --eval-every steps and at the end, as eval_*.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>

#include "data/preference.h"
#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/factory.h"
#include "engine/safetensors.h"
#include "engine/trace.h"
#include "models/dpo.h"
#include "models/ppo.h"
#include "nn/optim.h"
#include "ops/ops.h"
#include "tools/cli.h"
#include "tools/gpt_weights.h"
#include "tools/models.h"
#include "tools/task.h"
#include "tools/train.h"

namespace spool::cli {

namespace {

// `make()`, a batch, in a trace's "data" span.
template <class Make>
auto loaded(Make make) {
  trace::Span span("data", "batch");
  return make();
}

// A GPT from a weights file for preference training: a longer-context GPT (a gpt-tiny pretrained
// at context 256) keeps its first 128 position embeddings, as dpo-gpt-tiny has; the pair rows
// never reach further.
std::shared_ptr<models::Gpt> load_cut(const std::string& path, const std::string& flag,
                                      Generator* gen, bool allow_nonfinite) {
  const int64_t context = models::dpo_gpt_tiny().context;
  const TensorFile file = load_safetensors(path);
  check_finite(file, flag, allow_nonfinite);
  auto loaded = load_gpt(file, gen);
  if (loaded->config().context <= context) return loaded;
  models::GptConfig cut = loaded->config();
  cut.context = context;
  auto model = std::make_shared<models::Gpt>(cut, gen);
  nn::NamedTensors state = loaded->state_dict();
  for (auto& [n, t] : state)
    if (n == "wpe.weight") t = contiguous(narrow(t, 0, 0, cut.context));
  model->load_state_dict(state);
  std::printf("%s: %s has context %lld; its first %lld positions are kept\n", flag.c_str(),
              path.c_str(), (long long)loaded->config().context, (long long)cut.context);
  return model;
}

// The transformer of --model (the model table's configuration; a language model fine-tuned on
// pairs keeps dpo-gpt-tiny's pair context at most), from --init when given.
models::GptConfig policy_config(const TrainConfig& c) {
  models::GptConfig config = *find_model(c.model)->gpt;
  config.context = std::min(config.context, models::dpo_gpt_tiny().context);
  return config;
}
std::shared_ptr<models::Gpt> make_policy(const TrainConfig& c, Generator* gen) {
  if (!c.init) return std::make_shared<models::Gpt>(policy_config(c), gen);
  return load_cut(*c.init, "--init", gen, c.allow_nonfinite);
}

// The frozen reference of DPO and PPO: --ref-weights (checked against the policy) or a copy of
// the starting policy.
std::shared_ptr<models::Gpt> make_reference(const TrainConfig& c, models::Gpt& policy) {
  if (!c.ref_weights) {
    auto ref = std::make_shared<models::Gpt>(policy.config());
    ref->load_state_dict(policy.state_dict());
    return ref;
  }
  auto ref = load_cut(*c.ref_weights, "--ref-weights", nullptr, c.allow_nonfinite);
  if (ref->config().context != policy.config().context ||
      ref->config().vocab != policy.config().vocab)
    throw UsageError("--ref-weights: the reference (vocab " + std::to_string(ref->config().vocab) +
                     ", context " + std::to_string(ref->config().context) +
                     ") does not match the policy");
  return ref;
}

// Running sums of per-batch metrics weighted by the pairs in the batch.
struct Average {
  Metrics sum;
  double n = 0;
  void add(const Metrics& m, double weight) {
    for (const auto& [k, v] : m) sum[k] += v * weight;
    n += weight;
  }
  Metrics mean() const {
    Metrics out;
    for (const auto& [k, v] : sum) out[k] = v / n;
    return out;
  }
};

void add_metrics(Json& j, const Metrics& m, const std::string& prefix = "") {
  for (const auto& [k, v] : m) j.add(prefix + k, v);
}

// The batches of one pass over `count` items, in order.
std::vector<std::vector<size_t>> in_order(size_t count, int64_t batch) {
  std::vector<std::vector<size_t>> out;
  for (size_t at = 0; at < count; at += size_t(batch)) {
    out.emplace_back();
    for (size_t i = at; i < std::min(count, at + size_t(batch)); ++i) out.back().push_back(i);
  }
  return out;
}

// What every preference task shares: the pairs, the schedule (warm-up and cosine), clipping at
// 1, the held-out metrics at step 0 and every --eval-every steps, logged as eval_*, and lines
// that name the steps done.
class PreferenceTask : public Task {
 public:
  PreferenceTask(const TrainConfig& c, std::string what) : Task(c), what_(std::move(what)) {
    total = c.steps;
    schedule = nn::CosineSchedule{c.lr, std::min<int64_t>(100, std::max<int64_t>(1, total / 10)),
                                  total, c.lr * 0.1};
    clip_norm = 1.0;
  }

  // Called by the constructors once the model is built and the pairs read.
  void ready() {
    if (!set_.val.empty()) eval_every = c_.eval_every;
    std::printf("%s: %lld parameters; %s: %zu training pairs, %zu held out\n", what_.c_str(),
                (long long)model_->num_parameters(), set_.path.c_str(), set_.train.size(),
                set_.val.size());
  }

  Metrics start(LineLog& log) override {
    if (set_.val.empty()) return {};
    Metrics eval = evaluate();
    Json j;
    j.add("step", int64_t(0));
    add_metrics(j, eval, "eval_");
    log.write(j.str());
    return eval;
  }

  Json log_line(int64_t step, const Metrics& m, const Metrics& eval) const override {
    Json j;
    j.add("step", step + 1).add("lr", opt_->lr());
    add_metrics(j, m);
    add_metrics(j, eval, "eval_");
    return j;
  }

  void finish(LineLog& log, int64_t steps, const Metrics& last, const Metrics& eval, double,
              double t0) override {
    const double secs = now_seconds() - t0;
    Json fin = final_line(steps);
    add_metrics(fin, last);
    add_metrics(fin, eval, "eval_");
    fin.add("seconds", secs);
    log.write(fin.str());
    std::printf("%s: %lld steps in %.1f s; %s\n", what_.c_str(), (long long)steps, secs,
                fin.str().c_str());
  }

 protected:
  // This rank's pairs of training step `step` (all of them for one process; data parallel: its
  // rows of the global batch, Task::my_rows).
  std::vector<size_t> my_pairs(int64_t step) {
    const std::vector<size_t> all = step_pairs(step);
    const auto [first, end] = my_rows(int64_t(all.size()));
    return std::vector<size_t>(all.begin() + first, all.begin() + end);
  }
  // The pairs of training step `step`: epochs of a seeded shuffle, so runs repeat exactly.
  std::vector<size_t> step_pairs(int64_t step) const {
    const size_t n = set_.train.size();
    const int64_t per_epoch = std::max<int64_t>(1, int64_t(n) / c_.batch);
    const auto order = epoch_order(c_.seed, step / per_epoch, int64_t(n));
    std::vector<size_t> out;
    const int64_t at = (step % per_epoch) * c_.batch;
    for (int64_t i = at; i < std::min<int64_t>(int64_t(n), at + c_.batch); ++i)
      out.push_back(size_t(order[size_t(i)]));
    return out;
  }

  std::string what_;
  data::PreferenceSet set_;
};

// gpt-tiny --sft: next-byte loss on the completions of prompt + chosen.
class SftTask : public PreferenceTask {
 public:
  explicit SftTask(const TrainConfig& c) : PreferenceTask(c, "sft " + c.model) {
    auto model = make_policy(c, &gen_);
    model->to(c.device);
    gpt_ = model.get();
    model_ = model;
    context_ = gpt_->config().context;
    set_ = data::load_preferences(c.data, context_);
    opt_ = std::make_unique<nn::AdamW>(nn::decay_matrices_only(*model_, 0.01),
                                       nn::AdamWOptions{.lr = c.lr});
    ready();
  }
  Metrics step(int64_t step, PlannedSteps*, const std::function<void()>&) override {
    const std::vector<size_t> which = my_pairs(step);
    const data::LmBatch b = loaded([&] { return data::sft_batch(set_.train, which, context_); });
    if (c_.world > 1) {  // the loss is a mean over completion bytes: share them, not pairs
      const int64_t all = data::sft_batch(set_.train, step_pairs(step), context_).real_targets;
      share = all > 0 ? double(b.real_targets) / double(all) : share;
    }
    Tensor loss = loss_of(on_device(b, c_.device));
    backward(loss);
    return {{"loss", loss.item()}};
  }
  Metrics evaluate() override {
    NoGrad no_grad;
    model_->eval();
    Average avg;
    for (const auto& which : in_order(set_.val.size(), c_.batch)) {
      const data::LmBatch b = on_device(data::sft_batch(set_.val, which, context_), c_.device);
      avg.add({{"loss", loss_of(b).item()}}, double(b.real_targets));
    }
    return avg.mean();
  }

 private:
  Tensor loss_of(const data::LmBatch& b) {
    Tensor logits = gpt_->forward(b.idx);
    return cross_entropy(reshape(logits, {-1, logits.size(-1)}), reshape(b.targets, {-1}));
  }
  models::Gpt* gpt_ = nullptr;
  int64_t context_ = 0;
};

// dpo-gpt-tiny: DPO (or cdpo, ipo, hinge) against a frozen reference, from a file or a copy of
// the starting policy; with --precompute-ref the reference scores every pair once and is dropped.
class DpoTask : public PreferenceTask {
 public:
  explicit DpoTask(const TrainConfig& c) : PreferenceTask(c, describe_run(c)) {
    auto policy = make_policy(c, &gen_);
    policy_ = policy.get();
    model_ = policy;
    context_ = policy_->config().context;
    set_ = data::load_preferences(c.data, context_);
    ref_ = make_reference(c, *policy_);
    policy_->to(c.device);
    ref_->to(c.device);
    ref_->eval();
    for (auto& p : ref_->parameters()) p.requires_grad_(false);
    if (c.precompute_ref) {
      const double t0 = now_seconds();
      for (int s = 0; s < 2; ++s) {
        const auto& pairs = s == 0 ? set_.train : set_.val;
        for (const auto& which : in_order(pairs.size(), 32)) {
          auto [rc, rr] = ref_logps(on_device(data::pair_batch(pairs, which, context_), c.device));
          for (float v : to(rc, Device::cpu()).to_vector<float>()) pre_c_[s].push_back(v);
          for (float v : to(rr, Device::cpu()).to_vector<float>()) pre_r_[s].push_back(v);
        }
      }
      ref_.reset();
      std::printf("dpo: reference log-probabilities of %zu pairs precomputed in %.1f s\n",
                  set_.train.size() + set_.val.size(), now_seconds() - t0);
    }
    opt_ = std::make_unique<nn::AdamW>(nn::decay_matrices_only(*model_, 0.0),
                                       nn::AdamWOptions{.lr = c.lr});
    ready();
  }
  Metrics step(int64_t step, PlannedSteps*, const std::function<void()>&) override {
    const std::vector<size_t> which = my_pairs(step);
    const data::PairBatch b =
        loaded([&] { return on_device(data::pair_batch(set_.train, which, context_), c_.device); });
    auto [rc, rr] = reference(0, which, b);
    auto [pc, pr] = models::pair_logps(*policy_, b.tokens, b.mask);  // chosen + rejected at once
    const models::DpoResult r = models::dpo_loss(pc, pr, rc, rr, c_.dpo);
    backward(r.loss);
    return models::dpo_metrics(r);
  }
  Metrics evaluate() override {
    NoGrad no_grad;
    policy_->eval();
    Average avg;
    for (const auto& which : in_order(set_.val.size(), c_.batch)) {
      const data::PairBatch b = on_device(data::pair_batch(set_.val, which, context_), c_.device);
      auto [rc, rr] = reference(1, which, b);
      auto [pc, pr] = models::pair_logps(*policy_, b.tokens, b.mask);
      avg.add(models::dpo_metrics(models::dpo_loss(pc, pr, rc, rr, c_.dpo)), double(which.size()));
    }
    return avg.mean();
  }

 private:
  static std::string describe_run(const TrainConfig& c) {
    char what[96];
    std::snprintf(what, sizeof what, "dpo (%s, beta %g%s)", models::dpo_loss_name(c.dpo.loss),
                  c.dpo.beta, c.precompute_ref ? ", reference precomputed" : "");
    return what;
  }
  std::pair<Tensor, Tensor> ref_logps(const data::PairBatch& b) {
    NoGrad no_grad;
    return models::pair_logps(*ref_, b.tokens, b.mask);
  }
  // The reference's log-probabilities of a batch of split s (0 train, 1 held out).
  std::pair<Tensor, Tensor> reference(int s, const std::vector<size_t>& which,
                                      const data::PairBatch& b) {
    if (!c_.precompute_ref) return ref_logps(b);
    std::vector<float> rc, rr;
    for (size_t i : which) {
      rc.push_back(pre_c_[s][i]);
      rr.push_back(pre_r_[s][i]);
    }
    return {to(from_vector(rc), c_.device), to(from_vector(rr), c_.device)};
  }
  models::Gpt* policy_ = nullptr;
  std::shared_ptr<models::Gpt> ref_;
  int64_t context_ = 0;
  std::vector<float> pre_c_[2], pre_r_[2];  // [0] train, [1] held out
};

// reward-gpt-tiny: Bradley-Terry, -log sigmoid(r_chosen - r_rejected); accuracy counts
// r_chosen > r_rejected.
class RewardTask : public PreferenceTask {
 public:
  explicit RewardTask(const TrainConfig& c) : PreferenceTask(c, "reward model") {
    std::shared_ptr<models::RewardModel> model;
    if (c.init) {
      auto trunk = make_policy(c, &gen_);
      model = std::make_shared<models::RewardModel>(trunk->config(), &gen_);
      model->transformer->load_state_dict(trunk->state_dict());
    } else {
      model = std::make_shared<models::RewardModel>(policy_config(c), &gen_);
    }
    model->to(c.device);
    rm_ = model.get();
    model_ = model;
    context_ = rm_->transformer->config().context;
    set_ = data::load_preferences(c.data, context_);
    opt_ = std::make_unique<nn::AdamW>(nn::decay_matrices_only(*model_, 0.0),
                                       nn::AdamWOptions{.lr = c.lr});
    ready();
  }
  Metrics step(int64_t step, PlannedSteps*, const std::function<void()>&) override {
    Tensor loss;
    Metrics m = score(set_.train, my_pairs(step), &loss);
    backward(loss);
    return m;
  }
  Metrics evaluate() override {
    NoGrad no_grad;
    model_->eval();
    Average avg;
    for (const auto& which : in_order(set_.val.size(), c_.batch))
      avg.add(score(set_.val, which, nullptr), double(which.size()));
    return avg.mean();
  }

 private:
  Metrics score(const std::vector<data::PreferencePair>& pairs, const std::vector<size_t>& which,
                Tensor* loss_out) {
    const data::PairBatch b =
        loaded([&] { return on_device(data::pair_batch(pairs, which, context_), c_.device); });
    const Tensor r = rm_->rewards(b.tokens, b.mask);
    const Tensor rc = narrow(r, 0, 0, b.pairs), rr = narrow(r, 0, b.pairs, b.pairs);
    const Tensor loss = mean(-log_sigmoid(rc - rr));
    if (loss_out) *loss_out = loss;
    NoGrad no_grad;
    return Metrics{{"loss", loss.item()},
                   {"accuracy", mean(to(gt(rc, rr), DType::f32)).item()},
                   {"margin", mean(rc - rr).item()},
                   {"rewards/chosen", mean(rc).item()},
                   {"rewards/rejected", mean(rr).item()}};
  }
  models::RewardModel* rm_ = nullptr;
  int64_t context_ = 0;
};

// ppo-gpt-tiny: PPO from --init (the SFT model, also the reference unless --ref-weights), rewarded
// by --reward's model. A rollout samples --tokens bytes after each of --batch x --minibatches
// training prompts (seeded order, temperature 1, every byte); each step is one minibatch of
// --batch of its rows, --ppo-epochs passes in a fresh seeded order each, so a rollout lasts
// --ppo-epochs x --minibatches steps. The held-out evaluation samples the first 64 held-out
// prompts with a fixed seed and reports the reward model's mean score and the sampled KL to the
// reference.
class PpoTask : public PreferenceTask {
 public:
  explicit PpoTask(const TrainConfig& c) : PreferenceTask(c, describe_run(c)) {
    auto start = make_policy(c, &gen_);
    auto policy = std::make_shared<models::PolicyWithValue>(start->config(), &gen_);
    policy->transformer->load_state_dict(start->state_dict());
    policy_ = policy.get();
    model_ = policy;
    context_ = start->config().context;
    ref_ = make_reference(c, *start);
    const TensorFile rm_file = load_safetensors(*c.reward);
    check_finite(rm_file, "--reward", c.allow_nonfinite);
    rm_ = load_reward_model(rm_file, "--reward");
    if (rm_->transformer->config().vocab != start->config().vocab)
      throw UsageError("--reward: the reward model's vocabulary (" +
                       std::to_string(rm_->transformer->config().vocab) +
                       ") is not the policy's (" + std::to_string(start->config().vocab) + ")");
    set_ = data::load_preferences(c.data, context_);
    if (set_.train.empty()) throw UsageError("train: --data " + c.data + " holds no training pair");
    prompt_length_ = int64_t(set_.train[0].prompt.size());
    for (const auto* pairs : {&set_.train, &set_.val})
      for (const auto& p : *pairs)
        if (int64_t(p.prompt.size()) != prompt_length_)
          throw UsageError(
              "train: ppo-gpt-tiny samples a rollout's prompts as one batch, which "
              "needs one prompt length; " +
              c.data + " has prompts of " + std::to_string(prompt_length_) + " and " +
              std::to_string(p.prompt.size()) + " bytes");
    const int64_t row = prompt_length_ + c.completion_tokens;
    const int64_t limit = std::min(context_, rm_->transformer->config().context);
    if (row > limit)
      throw UsageError("train: prompts of " + std::to_string(prompt_length_) +
                       " bytes + --tokens " + std::to_string(c.completion_tokens) +
                       " exceed the context of " + std::to_string(limit) +
                       " (the policy's and the reward model's)");
    for (auto* m : {static_cast<nn::Module*>(ref_.get()), static_cast<nn::Module*>(rm_.get())}) {
      m->to(c.device);
      m->eval();
      for (auto& p : m->parameters()) p.requires_grad_(false);
    }
    policy_->to(c.device);
    opt_ = std::make_unique<nn::AdamW>(nn::decay_matrices_only(*model_, 0.0),
                                       nn::AdamWOptions{.lr = c.lr});
    ready();
  }

  Metrics step(int64_t step, PlannedSteps*, const std::function<void()>&) override {
    const int64_t per_rollout = c_.ppo_epochs * c_.minibatches;
    if (step % per_rollout == 0 || !rollout_.advantages.defined())
      rollout_metrics_ = new_rollout(step / per_rollout);
    policy_->train();
    const int64_t k = step % per_rollout, epoch = k / c_.minibatches, mb = k % c_.minibatches;
    const auto order =
        epoch_order(c_.seed + 1 + uint64_t(step / per_rollout), epoch, rollout_.tokens.size(0));
    const std::vector<int64_t> rows(order.begin() + mb * c_.batch,
                                    order.begin() + (mb + 1) * c_.batch);
    const models::PpoLoss l = models::ppo_loss(*policy_, rollout_, rows, c_.ppo);
    backward(l.loss);
    Metrics m = rollout_metrics_;
    m["loss"] = l.loss.item();
    m["policy/loss"] = l.policy_loss.item();
    m["value/loss"] = l.value_loss.item();
    m["policy/approx_kl"] = l.approx_kl;
    m["policy/clip_fraction"] = l.clip_fraction;
    m["value/clip_fraction"] = l.value_clip_fraction;
    return m;
  }

  Metrics evaluate() override {
    if (set_.val.empty()) return {};
    std::vector<std::vector<int64_t>> prompts;
    for (size_t i = 0; i < std::min<size_t>(64, set_.val.size()); ++i)
      prompts.push_back(data::byte_tokens(set_.val[i].prompt));
    Generator gen(c_.seed + 0x5eed);  // the same draws at every evaluation
    return objective(sample(prompts, gen), "");
  }

 private:
  static std::string describe_run(const TrainConfig& c) {
    char what[128];
    std::snprintf(what, sizeof what, "ppo (kl %g, %lld prompts a rollout, %lld epochs)",
                  c.ppo.kl_coef, (long long)(c.batch * c.minibatches), (long long)c.ppo_epochs);
    return what;
  }
  // Completions of the prompts, scored by the policy, the reference and the reward model.
  models::Rollout sample(const std::vector<std::vector<int64_t>>& prompts, Generator& gen) {
    NoGrad no_grad;
    policy_->eval();
    models::Rollout r = models::make_rollout(
        prompts, models::sample_continuations(*policy_->transformer, prompts, c_.completion_tokens,
                                              256, 1.0, gen));
    r.tokens = to(r.tokens, c_.device);
    r.mask = to(r.mask, c_.device);
    models::score_tokens(r, *policy_, *ref_);
    r.scores = rm_->rewards(r.tokens, r.mask);
    return r;
  }
  // Rollout `index`: the next --batch x --minibatches training prompts in a seeded order.
  Metrics new_rollout(int64_t index) {
    const int64_t n = c_.batch * c_.minibatches, total = int64_t(set_.train.size());
    std::vector<std::vector<int64_t>> prompts;
    for (int64_t i = index * n; i < (index + 1) * n; ++i) {
      const auto order = epoch_order(c_.seed, i / total, total);
      prompts.push_back(data::byte_tokens(set_.train[size_t(order[size_t(i % total)])].prompt));
    }
    rollout_ = sample(prompts, gen_);
    models::ppo_advantages(rollout_, c_.ppo);
    return objective(rollout_, "objective/");
  }
  // The samples' mean score, their KL to the reference and the penalised reward.
  Metrics objective(const models::Rollout& r, const std::string& prefix) const {
    const double score = mean(to(r.scores, DType::f64)).item(),
                 kl = mean(to(models::sample_kl(r), DType::f64)).item();
    return {{prefix + "score", score},
            {prefix + "kl", kl},
            {prefix + "rlhf_reward", score - c_.ppo.kl_coef * kl}};
  }

  models::PolicyWithValue* policy_ = nullptr;
  std::shared_ptr<models::Gpt> ref_;
  std::shared_ptr<models::RewardModel> rm_;
  models::Rollout rollout_;
  Metrics rollout_metrics_;
  int64_t context_ = 0, prompt_length_ = 0;
};

}  // namespace

std::unique_ptr<Task> make_sft_task(const TrainConfig& c) { return std::make_unique<SftTask>(c); }
std::unique_ptr<Task> make_dpo_task(const TrainConfig& c) { return std::make_unique<DpoTask>(c); }
std::unique_ptr<Task> make_reward_task(const TrainConfig& c) {
  return std::make_unique<RewardTask>(c);
}
std::unique_ptr<Task> make_ppo_task(const TrainConfig& c) { return std::make_unique<PpoTask>(c); }

}  // namespace spool::cli
