// spool train on preference pairs (JSON Lines of prompt / chosen / rejected):
//   --model gpt-tiny --sft          supervised fine-tuning on prompt + chosen, loss on the
//                                   completion tokens only
//   --model dpo-gpt-tiny            DPO (or cdpo, ipo, hinge) against a frozen reference
//   --model reward-gpt-tiny         a Bradley-Terry reward model on the same pairs
// Every logged step carries the metrics under the names the Python preference tools use; the
// held-out pairs (every 10th) are evaluated every --eval-every steps and at the end, as eval_*.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include "data/preference.h"
#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/factory.h"
#include "engine/safetensors.h"
#include "models/dpo.h"
#include "nn/optim.h"
#include "ops/ops.h"
#include "tools/cli.h"
#include "tools/gpt_weights.h"
#include "tools/train.h"

namespace spool::cli {

namespace {

using Metrics = std::map<std::string, double>;

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

// dpo-gpt-tiny, from --init when given.
std::shared_ptr<models::Gpt> make_policy(const TrainConfig& c, Generator* gen) {
  if (!c.init) return std::make_shared<models::Gpt>(models::dpo_gpt_tiny(), gen);
  return load_cut(*c.init, "--init", gen, c.allow_nonfinite);
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

// The pairs of training step `step`: epochs of a seeded shuffle, so runs repeat exactly.
std::vector<size_t> step_pairs(const TrainConfig& c, int64_t step, size_t n) {
  const int64_t per_epoch = std::max<int64_t>(1, int64_t(n) / c.batch);
  const auto order = epoch_order(c.seed, step / per_epoch, int64_t(n));
  std::vector<size_t> out;
  const int64_t at = (step % per_epoch) * c.batch;
  for (int64_t i = at; i < std::min<int64_t>(int64_t(n), at + c.batch); ++i)
    out.push_back(size_t(order[size_t(i)]));
  return out;
}

// The loop every preference trainer shares: schedule, clipping, logging, evaluation, saving.
// `step_fn` runs forward and backward on a step's pairs and returns its metrics; `eval_fn`
// returns the held-out metrics.
int run_loop(const TrainConfig& c, const data::PreferenceSet& set, nn::Module& model,
             nn::Optimizer& opt, Generator& gen, const std::string& what,
             const std::function<Metrics(const std::vector<size_t>&)>& step_fn,
             const std::function<Metrics()>& eval_fn) {
  const int64_t total = c.steps;
  const nn::CosineSchedule schedule{c.lr, std::min<int64_t>(100, std::max<int64_t>(1, total / 10)),
                                    total, c.lr * 0.1};
  std::printf("%s: %lld parameters; %s: %zu training pairs, %zu held out\n", what.c_str(),
              (long long)model.num_parameters(), set.path.c_str(), set.train.size(),
              set.val.size());
  LineLog log(c.log);
  Progress progress(total);
  Metrics last, eval;
  const double t0 = now_seconds();
  const bool has_val = !set.val.empty();
  if (has_val) {
    eval = eval_fn();
    Json j;
    j.add("step", int64_t(0));
    add_metrics(j, eval, "eval_");
    log.write(j.str());
  }
  for (int64_t step = 0; step < total; ++step) {
    opt.set_lr(schedule.at(step));
    opt.zero_grad();
    model.train();
    last = step_fn(step_pairs(c, step, set.train.size()));
    check_diverged(log, step, last["loss"]);
    nn::clip_grad_norm(model.parameters(), 1.0);
    opt.step();
    const bool do_eval = has_val && ((step + 1) % c.eval_every == 0 || step + 1 == total);
    if (do_eval) eval = eval_fn();
    if (step % c.log_every == 0 || do_eval) {
      Json j;
      j.add("step", step + 1).add("lr", opt.lr());
      add_metrics(j, last);
      if (do_eval) add_metrics(j, eval, "eval_");
      log.write(j.str());
    }
    char status[96];
    std::snprintf(status, sizeof status, "loss %.4f", last["loss"]);
    progress.update(step + 1, status);
  }
  progress.finish();
  if (c.save) save_checkpoint(*c.save, c, model, opt, total, gen);
  const double secs = now_seconds() - t0;
  Json fin;
  fin.add("final", true).add("model", c.model).add("steps", total);
  add_metrics(fin, last);
  add_metrics(fin, eval, "eval_");
  fin.add("seconds", secs);
  log.write(fin.str());
  log.commit();
  std::printf("%s: %lld steps in %.1f s; %s\n", what.c_str(), (long long)total, secs,
              fin.str().c_str());
  return 0;
}

}  // namespace

int train_sft(const TrainConfig& c) {
  Generator gen(c.seed);
  auto model = make_policy(c, &gen);
  model->to(c.device);
  const int64_t context = model->config().context;
  const data::PreferenceSet set = data::load_preferences(c.data, context);
  nn::AdamW opt(nn::decay_matrices_only(*model, 0.01), {.lr = c.lr});
  auto loss_of = [&](const data::LmBatch& b) {
    Tensor logits = model->forward(b.idx);
    return cross_entropy(reshape(logits, {-1, logits.size(-1)}), reshape(b.targets, {-1}));
  };
  auto step_fn = [&](const std::vector<size_t>& which) {
    Tensor loss = loss_of(on_device(data::sft_batch(set.train, which, context), c.device));
    backward(loss);
    return Metrics{{"loss", loss.item()}};
  };
  auto eval_fn = [&] {
    NoGrad no_grad;
    model->eval();
    Average avg;
    for (const auto& which : in_order(set.val.size(), c.batch)) {
      const data::LmBatch b = on_device(data::sft_batch(set.val, which, context), c.device);
      avg.add({{"loss", loss_of(b).item()}}, double(b.real_targets));
    }
    return avg.mean();
  };
  return run_loop(c, set, *model, opt, gen, "sft " + c.model, step_fn, eval_fn);
}

int train_dpo(const TrainConfig& c) {
  Generator gen(c.seed);
  auto policy = make_policy(c, &gen);
  const int64_t context = policy->config().context;
  const data::PreferenceSet set = data::load_preferences(c.data, context);
  // The reference: a file, or a copy of the policy as it starts.
  std::shared_ptr<models::Gpt> ref;
  if (c.ref_weights) {
    ref = load_cut(*c.ref_weights, "--ref-weights", nullptr, c.allow_nonfinite);
    if (ref->config().context != context || ref->config().vocab != policy->config().vocab)
      throw UsageError("--ref-weights: the reference (vocab " +
                       std::to_string(ref->config().vocab) + ", context " +
                       std::to_string(ref->config().context) + ") does not match the policy");
  } else {
    ref = std::make_shared<models::Gpt>(policy->config());
    ref->load_state_dict(policy->state_dict());
  }
  policy->to(c.device);
  ref->to(c.device);
  ref->eval();
  for (auto& p : ref->parameters()) p.requires_grad_(false);
  const models::DpoOptions o = c.dpo;
  auto ref_logps = [&](const data::PairBatch& b) {
    NoGrad no_grad;
    return models::pair_logps(*ref, b.tokens, b.mask);
  };
  // --precompute-ref: the reference's log-probabilities of every pair, once; then the reference
  // model is dropped and training holds only the policy.
  std::vector<float> pre_c[2], pre_r[2];  // [0] train, [1] held out
  if (c.precompute_ref) {
    const double t0 = now_seconds();
    for (int s = 0; s < 2; ++s) {
      const auto& pairs = s == 0 ? set.train : set.val;
      for (const auto& which : in_order(pairs.size(), 32)) {
        auto [rc, rr] = ref_logps(on_device(data::pair_batch(pairs, which, context), c.device));
        for (float v : to(rc, Device::cpu()).to_vector<float>()) pre_c[s].push_back(v);
        for (float v : to(rr, Device::cpu()).to_vector<float>()) pre_r[s].push_back(v);
      }
    }
    ref.reset();
    std::printf("dpo: reference log-probabilities of %zu pairs precomputed in %.1f s\n",
                set.train.size() + set.val.size(), now_seconds() - t0);
  }
  auto reference = [&](int s, const std::vector<size_t>& which, const data::PairBatch& b) {
    if (!c.precompute_ref) return ref_logps(b);
    std::vector<float> rc, rr;
    for (size_t i : which) {
      rc.push_back(pre_c[s][i]);
      rr.push_back(pre_r[s][i]);
    }
    return std::pair<Tensor, Tensor>{to(from_vector(rc), c.device), to(from_vector(rr), c.device)};
  };
  nn::AdamW opt(nn::decay_matrices_only(*policy, 0.0), {.lr = c.lr});
  auto step_fn = [&](const std::vector<size_t>& which) {
    const data::PairBatch b = on_device(data::pair_batch(set.train, which, context), c.device);
    auto [rc, rr] = reference(0, which, b);
    auto [pc, pr] = models::pair_logps(*policy, b.tokens, b.mask);  // chosen + rejected at once
    const models::DpoResult r = models::dpo_loss(pc, pr, rc, rr, o);
    backward(r.loss);
    return models::dpo_metrics(r);
  };
  auto eval_fn = [&] {
    NoGrad no_grad;
    policy->eval();
    Average avg;
    for (const auto& which : in_order(set.val.size(), c.batch)) {
      const data::PairBatch b = on_device(data::pair_batch(set.val, which, context), c.device);
      auto [rc, rr] = reference(1, which, b);
      auto [pc, pr] = models::pair_logps(*policy, b.tokens, b.mask);
      avg.add(models::dpo_metrics(models::dpo_loss(pc, pr, rc, rr, o)), double(which.size()));
    }
    return avg.mean();
  };
  char what[96];
  std::snprintf(what, sizeof what, "dpo (%s, beta %g%s)", models::dpo_loss_name(o.loss), o.beta,
                c.precompute_ref ? ", reference precomputed" : "");
  return run_loop(c, set, *policy, opt, gen, what, step_fn, eval_fn);
}

int train_reward(const TrainConfig& c) {
  Generator gen(c.seed);
  std::shared_ptr<models::RewardModel> model;
  if (c.init) {
    auto trunk = make_policy(c, &gen);
    model = std::make_shared<models::RewardModel>(trunk->config(), &gen);
    model->transformer->load_state_dict(trunk->state_dict());
  } else {
    model = std::make_shared<models::RewardModel>(models::dpo_gpt_tiny(), &gen);
  }
  model->to(c.device);
  const int64_t context = model->transformer->config().context;
  const data::PreferenceSet set = data::load_preferences(c.data, context);
  nn::AdamW opt(nn::decay_matrices_only(*model, 0.0), {.lr = c.lr});
  // Bradley-Terry: -log sigmoid(r_chosen - r_rejected); accuracy counts r_chosen > r_rejected.
  auto evaluate = [&](const std::vector<data::PreferencePair>& pairs,
                      const std::vector<size_t>& which, Tensor* loss_out) {
    const data::PairBatch b = on_device(data::pair_batch(pairs, which, context), c.device);
    const Tensor r = model->rewards(b.tokens, b.mask);
    const Tensor rc = narrow(r, 0, 0, b.pairs), rr = narrow(r, 0, b.pairs, b.pairs);
    const Tensor loss = mean(-log_sigmoid(rc - rr));
    if (loss_out) *loss_out = loss;
    NoGrad no_grad;
    return Metrics{{"loss", loss.item()},
                   {"accuracy", mean(to(gt(rc, rr), DType::f32)).item()},
                   {"margin", mean(rc - rr).item()},
                   {"rewards/chosen", mean(rc).item()},
                   {"rewards/rejected", mean(rr).item()}};
  };
  auto step_fn = [&](const std::vector<size_t>& which) {
    Tensor loss;
    Metrics m = evaluate(set.train, which, &loss);
    backward(loss);
    return m;
  };
  auto eval_fn = [&] {
    NoGrad no_grad;
    model->eval();
    Average avg;
    for (const auto& which : in_order(set.val.size(), c.batch))
      avg.add(evaluate(set.val, which, nullptr), double(which.size()));
    return avg.mean();
  };
  return run_loop(c, set, *model, opt, gen, "reward model", step_fn, eval_fn);
}

}  // namespace spool::cli
