// Builds a GPT shaped like a weights file: Hugging Face GPT-2 names (also accepted with the
// "model." prefix of a spool training checkpoint); vocab, context, width and depth come from the
// shapes, the head count from the metadata key "n_head" (else d / 64). A file holding a reward
// model ("transformer." names) gives its trunk.
#pragma once
#include <memory>

#include "engine/safetensors.h"
#include "models/dpo.h"

namespace spool::cli {

// `gen` (which must outlive the model) drives dropout; null uses the default generator. The
// random initialisation it would make is overwritten by the file's weights.
std::shared_ptr<models::Gpt> load_gpt(const TensorFile& file, Generator* gen = nullptr);

// A Bradley-Terry reward model (spool train --model reward-gpt-tiny, its checkpoint or its bare
// weights): the trunk as load_gpt reads it and the head `score.weight` [1, d]. `flag` names the
// option in messages.
std::shared_ptr<models::RewardModel> load_reward_model(const TensorFile& file,
                                                       const std::string& flag);

}  // namespace spool::cli
