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

const char* const kModelNames =
    "mlp, resnet18, gpt-tiny, dpo-gpt-tiny, reward-gpt-tiny, tsn-r18, tsm-r18, trn-r18, i3d-r18, "
    "tsn-r50, tsm-r50, trn-r50, i3d-r50";

bool known_model(const std::string& name) {
  return name == "mlp" || name == "resnet18" || name == "gpt-tiny" || name == "dpo-gpt-tiny" ||
         name == "reward-gpt-tiny" || is_video_model(name);
}

bool is_video_model(const std::string& name) { return models::is_video_model_name(name); }

std::shared_ptr<nn::Module> make_model(const std::string& name, Generator* gen) {
  if (name == "mlp")
    return std::make_shared<models::Mlp>(64, std::vector<int64_t>{128, 64}, 10, gen);
  if (name == "resnet18") return std::make_shared<models::ResNet>(models::ResNetConfig{}, gen);
  if (name == "gpt-tiny") return std::make_shared<models::Gpt>(models::gpt_tiny(), gen);
  if (name == "dpo-gpt-tiny") return std::make_shared<models::Gpt>(models::dpo_gpt_tiny(), gen);
  if (is_video_model(name)) return make_video_model(name, 64, gen);
  if (name == "reward-gpt-tiny")
    return std::make_shared<models::RewardModel>(models::dpo_gpt_tiny(), gen);
  throw UsageError("unknown model '" + name + "' (available: " + kModelNames + ")");
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
