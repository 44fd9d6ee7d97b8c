// The models the command line knows, built by name.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "nn/module.h"

namespace spool::cli {

extern const char* const kModelNames;  // "mlp, resnet18, gpt-tiny, ...", for messages
bool known_model(const std::string& name);
bool is_video_model(const std::string& name);  // tsn-, tsm-, trn-, i3d- + r18 or r50

// Builds a model by name (classifiers for the digits task, 10 classes; gpt-tiny for bytes).
// Throws UsageError on unknown names.
std::shared_ptr<nn::Module> make_model(const std::string& name, Generator* gen);
// Digits images [N, 64] in the layout the model takes: as they are for mlp, upscaled to
// [N, 3, 32, 32] (nearest neighbour, gray repeated over RGB) for resnet18.
Tensor prepare_images(const std::string& model, const Tensor& digits);
// Sets every Dropout's probability to 0.
void disable_dropout(nn::Module& m);

}  // namespace spool::cli
