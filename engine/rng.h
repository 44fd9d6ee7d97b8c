// Counter-based random numbers (Philox-4x32-10). A Generator is a seed and an offset; every random
// op takes a range of counters from it, so a result depends only on (seed, offset, element index),
// never on thread count or device. Restoring (seed, offset) replays the same numbers, which is what
// checkpointing needs to recompute dropout exactly.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

namespace spool {

struct RngState {
  uint64_t seed = 0;
  uint64_t offset = 0;
  bool operator==(const RngState& o) const { return seed == o.seed && offset == o.offset; }
  bool operator!=(const RngState& o) const { return !(*this == o); }
};

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : state_{seed, 0} {}
  void manual_seed(uint64_t seed) { state_ = {seed, 0}; }
  RngState state() const { return state_; }
  void set_state(RngState s) { state_ = s; }
  // Reserves counters for n random values; returns the state to generate them from.
  RngState take(int64_t n) {
    RngState s = state_;
    state_.offset += uint64_t((n + 3) / 4);
    return s;
  }

 private:
  RngState state_;
};

// The process-wide generator used when an op is given none.
Generator& default_generator();
void manual_seed(uint64_t seed);

// Data parallel: this process holds samples [first, first + count) of a global batch of `total`
// (dist/, docs/distributed.md). While a window is set on a thread, dropout there draws the
// numbers one process with the whole batch draws for these samples, so a run of N processes
// drops what one process does: a tensor whose dim 0 is m * count (m rows a sample, as a video
// model's [N * K, C] frames) takes rows [first * m, (first + count) * m) of the global draw, and
// the generator advances by the global tensor's count. count = 0: no window (the default).
struct BatchWindow {
  int64_t first = 0, count = 0, total = 0;
};
void set_batch_window(BatchWindow w);
BatchWindow batch_window();

// The states of the default generator and of `extra` (null entries skipped), to put back later:
// checkpoint and memory-plan replays draw what the first forward drew.
struct RngSnapshot {
  std::vector<Generator*> gens;
  std::vector<RngState> states;
  explicit RngSnapshot(const std::vector<Generator*>& extra);
  void restore() const;
};

// Four 32-bit random words for counter `c` under key `seed`.
std::array<uint32_t, 4> philox4x32(uint64_t counter, uint64_t seed);
// Elements 4b .. 4b+3 of a stream started at state s (one Philox call): uniform in [0, 1), and
// standard normal (Box-Muller on lane pairs).
std::array<double, 4> uniform_block(RngState s, int64_t b);
std::array<double, 4> normal_block(RngState s, int64_t b);
// Element i alone: uniform_block(s, i / 4)[i % 4].
double uniform_at(RngState s, int64_t i);

}  // namespace spool
