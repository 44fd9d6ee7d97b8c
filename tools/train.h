// Shared by the training paths of `spool train` (the tasks and their loop: tools/task.h).
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/preference.h"
#include "data/text.h"
#include "engine/rng.h"
#include "models/ppo.h"
#include "nn/module.h"
#include "nn/optim.h"

namespace spool::cli {

struct TrainConfig {
  std::string model, data;
  Device device = Device::cpu();
  int64_t steps = 0, epochs = 0, batch = 0, log_every = 10, eval_every = 100;
  double lr = 0;
  uint64_t seed = 0;
  bool pack = false;
  // Preference training (tools/train_pref.cpp).
  bool sft = false, precompute_ref = false;
  models::DpoOptions dpo;
  std::optional<std::string> init, ref_weights;
  // PPO (ppo-gpt-tiny): --reward's model scores completions of --tokens bytes; a rollout is
  // --batch x --minibatches prompts, trained --ppo-epochs times in minibatches of --batch.
  models::PpoOptions ppo;
  std::optional<std::string> reward;
  int64_t ppo_epochs = 4, minibatches = 4, completion_tokens = 64;
  // Video models (tools/train_video.cpp).
  int64_t video_size = 112, video_width = 64, test_clips = 200;
  double time_limit = 0;               // seconds; 0: none
  std::string test_list;               // --data LIST: the test list (default: val.txt beside it)
  bool flip = false;                   // --data LIST: label-preserving flips
  int64_t motion_only_from = -1;       // --data LIST: the first motion-only class; -1: none
  int64_t diff_frames = 1;             // TSN's RGB difference of L frames a snippet; 1 for RGB
  int64_t flow_frames = 0;             // the flow modality's fields a segment; 0: not flow
  std::optional<std::string> scores;   // the test's class scores per clip (spool fuse)
  bool crop = false;                   // multi-scale crop in training, centre crop at test
  std::optional<std::string> init_2d;  // 2-D backbone weights (inflated for I3D)
  bool object_regions = false;         // gcn-: the generated clips' object boxes and the grid
  std::string checkpoint_policy, memory_budget;  // empty: plain steps
  double beta2 = 0.999;                          // AdamW's second-moment decay (gpt-tiny)
  bool recompute_gelu = false;                   // gpt-tiny: GptConfig::recompute_gelu
  bool autocast = false;                         // gpt-tiny: --autocast bf16 (ops/autocast.h)
  bool split_blocks = false;  // resnet18 under a plan: blocks staged as a graph of two stages
  int64_t stem_groups = 1;    // resnet18 under a plan: the stem replayed in channel groups
  std::optional<std::string> log, save, resume;
  // --trace FILE (engine/trace.h): steps [trace_first, trace_last) traced (rank 0's); --profile
  // prints those steps' op table (engine/profile.h) when they end.
  std::optional<std::string> trace;
  bool profile = false;
  int64_t trace_first = 1, trace_last = 3;
  // Data parallel (dist/, docs/distributed.md): this process's rank in a world of `world`; the
  // global --batch is split over the ranks. zero = 1 shards AdamW's moments (ZeRO stage 1).
  int rank = 0, world = 1, zero = 0;
  double bucket_mb = 25, dist_timeout = 300;
  bool allow_nonfinite = false;  // --allow-nonfinite: warn about NaN/Inf in loaded files, go on
};

void save_checkpoint(const std::string& path, const TrainConfig& c, const nn::Module& model,
                     const nn::Optimizer& opt, int64_t step, const Generator& gen);
// Restores model, optimizer and generator; returns the step to continue from, refusing a
// checkpoint already past `total` steps.
int64_t load_checkpoint(const std::string& path, const TrainConfig& c, nn::Module& model,
                        nn::Optimizer& opt, Generator& gen, int64_t total);

// The order of epoch e's samples: a function of (seed, e) only, so a resumed run sees the same
// batches as an uninterrupted one.
std::vector<int64_t> epoch_order(uint64_t seed, int64_t epoch, int64_t n);

// A batch, made on the cpu, on the model's device (the same batch when that is the cpu).
data::LmBatch on_device(data::LmBatch b, Device d);
data::PairBatch on_device(data::PairBatch b, Device d);

}  // namespace spool::cli
