// The models the command line knows, built by name.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/planner/chain.h"
#include "engine/rng.h"
#include "models/gpt.h"
#include "nn/module.h"
#include "nn/optim.h"

namespace spool::cli {

// What a model trains on: it picks the training loop, the data and the flags that apply.
enum class Family {
  digits,      // mlp, resnet18: the 8x8 digits, 10 classes
  language,    // gpt-tiny, gpt2-124m: bytes of text (also their sft on preference pairs)
  preference,  // dpo-gpt-tiny: DPO on preference pairs against a frozen reference
  reward,      // reward-gpt-tiny: a Bradley-Terry reward model on preference pairs
  rlhf,        // ppo-gpt-tiny: PPO on the pairs' prompts against a reward model
  video,       // tsn, tsm, trn, i3d on ResNet-18 or -50: clips
};

// A model's standard step for the memory planner (spool memstudy; CONFIGS.md's batches): its
// chain of stages on one random batch (drawn from `data`, on `device`), the optimizer of its
// standard configuration and, when the staging asked for changes what its plain step
// recomputes (stem groups), its standard chain as the reference.
struct StudyStaging {
  int64_t batch = 0;          // 0: the standard configuration's
  bool split_blocks = false;  // 2-D ResNets: each residual block as two stages (a graph)
  int64_t stem_groups = 1;    // 2-D ResNets: the stem replayed in channel groups
  Device device = Device::cpu();
};
struct StudyStep {
  Chain chain, reference;
  std::unique_ptr<nn::Optimizer> opt;
};
// The chain of an image or clip classifier's step on (x, labels): Mlp, ResNet (restaged by
// `staging`, and then its standard chain in `reference` when the stem is grouped), SegmentNet
// (likewise), I3d, EcoNet or TdnNet. spool::Error for other models.
Chain classifier_chain(nn::Module& model, const Tensor& x, const Tensor& labels,
                       const StudyStaging& staging, Chain* reference);
using StudyBuilder =
    std::function<StudyStep(nn::Module& model, const StudyStaging& staging, Generator* data)>;

// The one table of the models the command line knows, in the order messages list them:
// adding a model is its models/ file and an entry here.
struct ModelInfo {
  std::string name;
  Family family;
  std::function<std::shared_ptr<nn::Module>(Generator*)> make;
  StudyBuilder study;     // null: memstudy does not study it
  bool restages = false;  // a 2-D ResNet: --split-blocks and --stem-groups apply
  // The GPT families (language, preference, reward): the transformer's configuration, which
  // `make` builds; train, bench and memstudy's --recompute-gelu start from it.
  std::optional<models::GptConfig> gpt;
};
const std::vector<ModelInfo>& model_table();
const ModelInfo* find_model(const std::string& name);  // null when unknown
std::string model_names();                             // "mlp, resnet18, ...", for messages
bool known_model(const std::string& name);
bool is_video_model(const std::string& name);  // tsn-, tsm-, trn-, i3d- + r18 or r50

// Builds a model by name from the table. Throws UsageError on unknown names.
std::shared_ptr<nn::Module> make_model(const std::string& name, Generator* gen);
// Digits images [N, 64] in the layout the model takes: as they are for mlp, upscaled to
// [N, 3, 32, 32] (nearest neighbour, gray repeated over RGB) for resnet18.
Tensor prepare_images(const std::string& model, const Tensor& digits);
// Sets every Dropout's probability to 0.
void disable_dropout(nn::Module& m);

}  // namespace spool::cli
