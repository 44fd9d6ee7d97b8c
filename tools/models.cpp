#include "tools/models.h"

#include "models/dpo.h"
#include "models/gpt.h"
#include "models/mlp.h"
#include "models/resnet.h"
#include "models/video.h"
#include "nn/layers.h"
#include "ops/shape.h"
#include "tools/cli.h"
#include "tools/train.h"

namespace spool::cli {

const std::vector<ModelInfo>& model_table() {
  static const std::vector<ModelInfo> table = [] {
    std::vector<ModelInfo> t = {
        {"mlp", Family::digits,
         [](Generator* g) {
           return std::make_shared<models::Mlp>(64, std::vector<int64_t>{128, 64}, 10, g);
         }},
        {"resnet18", Family::digits,
         [](Generator* g) { return std::make_shared<models::ResNet>(models::ResNetConfig{}, g); }},
        {"gpt-tiny", Family::language,
         [](Generator* g) { return std::make_shared<models::Gpt>(models::gpt_tiny(), g); }},
        {"dpo-gpt-tiny", Family::preference,
         [](Generator* g) { return std::make_shared<models::Gpt>(models::dpo_gpt_tiny(), g); }},
        {"reward-gpt-tiny", Family::reward,
         [](Generator* g) {
           return std::make_shared<models::RewardModel>(models::dpo_gpt_tiny(), g);
         }},
    };
    // The video models, as models/video.cpp names them.
    const std::string names = models::kVideoModelNames;
    for (size_t at = 0; at < names.size();) {
      size_t end = names.find(", ", at);
      if (end == std::string::npos) end = names.size();
      const std::string name = names.substr(at, end - at);
      t.push_back({name, Family::video,
                   [name](Generator* g) { return models::make_video_model(name, 64, g); }});
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
