#include "tools/models.h"

#include "data/preference.h"
#include "engine/autograd.h"
#include "engine/factory.h"
#include "models/dpo.h"
#include "models/gpt.h"
#include "models/mlp.h"
#include "models/ppo.h"
#include "models/resnet.h"
#include "models/video.h"
#include "nn/layers.h"
#include "ops/ops.h"
#include "tools/cli.h"
#include "tools/train.h"

namespace spool::cli {

namespace {

Tensor random_labels(int64_t n, Generator* data, Device device) {
  return to(to(rand({n}, DType::f32, data, 0, 10), DType::i64), device);
}

std::unique_ptr<nn::Optimizer> adamw(nn::Module& m) {
  return std::make_unique<nn::AdamW>(nn::decay_matrices_only(m, 0.01),
                                     nn::AdamWOptions{.lr = 1e-3});
}

}  // namespace

Chain classifier_chain(nn::Module& model, const Tensor& x, const Tensor& labels,
                       const StudyStaging& st, Chain* reference) {
  if (auto* mlp = dynamic_cast<models::Mlp*>(&model)) return mlp->chain(x, labels);
  if (auto* i3d = dynamic_cast<models::I3d*>(&model)) return i3d->chain(x, labels);
  if (auto* eco = dynamic_cast<models::EcoNet*>(&model)) return eco->chain(x, labels);
  if (auto* tdn = dynamic_cast<models::TdnNet*>(&model)) return tdn->chain(x, labels);
  if (auto* gcn = dynamic_cast<models::GcnNet*>(&model)) return gcn->chain(x, labels);
  if (auto* net = dynamic_cast<models::ResNet*>(&model)) {
    Chain chain = net->chain(x, labels, st.split_blocks, st.stem_groups);
    if (st.stem_groups > 1 && reference) *reference = net->chain(x, labels);
    return chain;
  }
  if (auto* net = dynamic_cast<models::SegmentNet*>(&model)) {
    Chain chain = net->chain(x, labels, st.split_blocks, st.stem_groups);
    if (st.stem_groups > 1 && reference) *reference = net->chain(x, labels);
    return chain;
  }
  throw Error("classifier_chain: a " + model.type_name() + " is not a classifier with a chain");
}

namespace {

// mlp: 256 digits-sized rows.
StudyStep study_mlp(nn::Module& model, const StudyStaging& st, Generator* data) {
  const int64_t b = st.batch > 0 ? st.batch : 256;
  Tensor x = to(randn({b, 64}, DType::f32, data), st.device);
  Tensor labels = random_labels(b, data, st.device);
  StudyStep s;
  s.chain = classifier_chain(model, x, labels, st, &s.reference);
  s.opt = adamw(model);
  return s;
}

// resnet18: 4 images of 112 x 112.
StudyStep study_resnet(nn::Module& model, const StudyStaging& st, Generator* data) {
  const int64_t b = st.batch > 0 ? st.batch : 4;
  Tensor images = to(randn({b, 3, 112, 112}, DType::f32, data), st.device);
  Tensor labels = random_labels(b, data, st.device);
  StudyStep s;
  s.chain = classifier_chain(model, images, labels, st, &s.reference);
  s.opt = adamw(model);
  return s;
}

// gpt-tiny: 8 windows of its context, uniform random bytes.
StudyStep study_gpt(nn::Module& model, const StudyStaging& st, Generator* data) {
  auto& gpt = static_cast<models::Gpt&>(model);
  const int64_t b = st.batch > 0 ? st.batch : 8, t = gpt.config().context;
  Tensor ids = to(to(rand({b, t + 1}, DType::f32, data, 0, 256), DType::i64), st.device);
  StudyStep s;
  s.chain = gpt.chain(contiguous(narrow(ids, 1, 0, t)), contiguous(narrow(ids, 1, 1, t)));
  s.opt = adamw(model);
  return s;
}

// dpo-gpt-tiny: 8 pairs of 128 tokens (32 prompt), chosen and rejected as one [16, 128] batch;
// the reference log-probabilities are precomputed (from the policy as it starts), so the chain
// is the policy's step alone.
StudyStep study_dpo(nn::Module& model, const StudyStaging& st, Generator* data) {
  auto& policy = static_cast<models::Gpt&>(model);
  const int64_t pairs = st.batch > 0 ? st.batch : 8, t = policy.config().context;
  const data::PairBatch b = data::random_pair_batch(pairs, t, 32, data);
  const Tensor tokens = to(b.tokens, st.device), mask = to(b.mask, st.device);
  Tensor rc, rr;
  {
    NoGrad no_grad;
    std::tie(rc, rr) = models::pair_logps(policy, tokens, mask);
  }
  StudyStep s;
  s.chain = policy.chain(tokens, [tokens, mask, rc, rr, pairs](const Tensor& logits) {
    const Tensor lp = models::sequence_logps(logits, tokens, mask);
    return models::dpo_loss(narrow(lp, 0, 0, pairs), narrow(lp, 0, pairs, pairs), rc, rr, {}).loss;
  });
  s.opt = adamw(model);
  return s;
}

// The video models: 2 clips of 8 frames at 112 x 112 (TDN: 8 snippets of 5 frames), 10 classes;
// SGD with momentum, the video schedule's optimizer.
StudyStep study_video(const std::string& name, nn::Module& model, const StudyStaging& st,
                      Generator* data) {
  const int64_t n = st.batch > 0 ? st.batch : 2;
  Tensor labels = random_labels(n, data, st.device);
  const Tensor x =
      to(randn(models::video_input_shape(name, n, 8, 112), DType::f32, data), st.device);
  StudyStep s;
  s.chain = classifier_chain(model, x, labels, st, &s.reference);
  s.opt = std::make_unique<nn::SGD>(nn::decay_matrices_only(model, 1e-4),
                                    nn::SGDOptions{.lr = 0.005, .momentum = 0.9});
  return s;
}

// A GPT family's entry: `make` builds `config` (the reward model puts a scalar head on it).
ModelInfo gpt_entry(const std::string& name, Family family, const models::GptConfig& config,
                    StudyBuilder study) {
  ModelInfo m{name, family, nullptr, std::move(study)};
  if (family == Family::reward)
    m.make = [config](Generator* g) { return std::make_shared<models::RewardModel>(config, g); };
  else if (family == Family::rlhf)
    m.make = [config](Generator* g) {
      return std::make_shared<models::PolicyWithValue>(config, g);
    };
  else
    m.make = [config](Generator* g) { return std::make_shared<models::Gpt>(config, g); };
  m.gpt = config;
  return m;
}

}  // namespace

const std::vector<ModelInfo>& model_table() {
  static const std::vector<ModelInfo> table = [] {
    std::vector<ModelInfo> t = {
        {"mlp", Family::digits,
         [](Generator* g) {
           return std::make_shared<models::Mlp>(64, std::vector<int64_t>{128, 64}, 10, g);
         },
         study_mlp},
        {"resnet18", Family::digits,
         [](Generator* g) { return std::make_shared<models::ResNet>(models::ResNetConfig{}, g); },
         study_resnet, true},
        gpt_entry("gpt-tiny", Family::language, models::gpt_tiny(), study_gpt),
        gpt_entry("gpt2-124m", Family::language, models::gpt2_124m(), study_gpt),
        gpt_entry("dpo-gpt-tiny", Family::preference, models::dpo_gpt_tiny(), study_dpo),
        gpt_entry("reward-gpt-tiny", Family::reward, models::dpo_gpt_tiny(), nullptr),
        gpt_entry("ppo-gpt-tiny", Family::rlhf, models::dpo_gpt_tiny(), nullptr),
    };
    // The video models, as models/video.cpp names them.
    const std::string names = models::kVideoModelNames;
    for (size_t at = 0; at < names.size();) {
      size_t end = names.find(", ", at);
      if (end == std::string::npos) end = names.size();
      const std::string name = names.substr(at, end - at);
      t.push_back({name, Family::video,
                   [name](Generator* g) { return models::make_video_model(name, 64, g); },
                   [name](nn::Module& m, const StudyStaging& st, Generator* g) {
                     return study_video(name, m, st, g);
                   },
                   !models::video_config(name).three_d && !models::video_config(name).eco &&
                       !models::video_config(name).tdn});
      at = end + 2;
    }
    return t;
  }();
  return table;
}

const ModelInfo* find_model(const std::string& name) {
  for (const ModelInfo& m : model_table())
    if (m.name == name) return &m;
  return nullptr;
}

std::string model_names() {
  std::string out;
  for (const ModelInfo& m : model_table()) {
    if (!out.empty()) out += ", ";
    out += m.name;
  }
  return out;
}

bool known_model(const std::string& name) { return find_model(name) != nullptr; }

bool is_video_model(const std::string& name) {
  const ModelInfo* m = find_model(name);
  return m && m->family == Family::video;
}

std::shared_ptr<nn::Module> make_model(const std::string& name, Generator* gen) {
  const ModelInfo* m = find_model(name);
  if (!m) throw UsageError("unknown model '" + name + "' (available: " + model_names() + ")");
  return m->make(gen);
}

Tensor prepare_images(const std::string& model, const Tensor& digits) {
  if (model != "resnet18") return digits;
  const int64_t n = digits.size(0);
  Tensor x = reshape(digits, {n, 1, 8, 1, 8, 1});
  x = expand(x, {n, 3, 8, 4, 8, 4});
  return contiguous(reshape(contiguous(x), {n, 3, 32, 32}));
}

void disable_dropout(nn::Module& m) {
  if (auto* d = dynamic_cast<nn::Dropout*>(&m)) d->p = 0;
  for (auto& [n, c] : m.named_children()) disable_dropout(*c);
}

}  // namespace spool::cli
