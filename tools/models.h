// The models the command line knows, built by name.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "nn/module.h"

namespace spool::cli {

// What a model trains on: it picks the training loop, the data and the flags that apply.
enum class Family {
  digits,      // mlp, resnet18: the 8x8 digits, 10 classes
  language,    // gpt-tiny: bytes of text (also its sft on preference pairs)
  preference,  // dpo-gpt-tiny: DPO on preference pairs against a frozen reference
  reward,      // reward-gpt-tiny: a Bradley-Terry reward model on preference pairs
  video,       // tsn, tsm, trn, i3d on ResNet-18 or -50: clips
};

// The one table of the models the command line knows, in the order messages list them:
// adding a model is its models/ file and an entry here.
struct ModelInfo {
  std::string name;
  Family family;
  std::function<std::shared_ptr<nn::Module>(Generator*)> make;
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
