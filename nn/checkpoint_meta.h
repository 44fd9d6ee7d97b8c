// The metadata of a spool training checkpoint (safetensors "__metadata__", format
// "spool-checkpoint-1"): which model, at which step, trained with which seed and batch, and the
// generator's state. Every field is parsed and range-checked here, so a crafted or damaged file
// gives an error naming the field, never an exception from the standard library or a negative
// step.
#pragma once
#include <cstdint>
#include <string>

#include "engine/safetensors.h"

namespace spool::nn {

struct CheckpointMeta {
  std::string model;
  int64_t step = 0;        // >= 0
  uint64_t seed = 0;
  int64_t batch = 0;       // > 0
  uint64_t rng_seed = 0, rng_offset = 0;
};

// Throws spool::Error naming the file and the field for a missing field, an unknown format, a
// value that is not a decimal integer or is out of range.
CheckpointMeta read_checkpoint_meta(const TensorFile& file);

// The metadata value `key` as a decimal integer in [lo, hi]; throws naming the file, the field
// and the value otherwise (also when the field is missing).
int64_t metadata_int(const TensorFile& file, const std::string& key, int64_t lo, int64_t hi);
uint64_t metadata_u64(const TensorFile& file, const std::string& key);

}  // namespace spool::nn
