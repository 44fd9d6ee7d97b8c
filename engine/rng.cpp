#include "engine/rng.h"

#include <cmath>

#include "engine/philox.h"

namespace spool {

Generator& default_generator() {
  static Generator g(0);
  return g;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

namespace {
thread_local BatchWindow t_window;
}

void set_batch_window(BatchWindow w) { t_window = w; }
BatchWindow batch_window() { return t_window; }

RngSnapshot::RngSnapshot(const std::vector<Generator*>& extra) {
  gens.push_back(&default_generator());
  for (Generator* g : extra)
    if (g) gens.push_back(g);
  for (Generator* g : gens) states.push_back(g->state());
}

void RngSnapshot::restore() const {
  for (size_t i = 0; i < gens.size(); ++i) gens[i]->set_state(states[i]);
}

std::array<uint32_t, 4> philox4x32(uint64_t counter, uint64_t seed) {
  const philox::Words w = philox::draw(counter, seed);
  return {w.w[0], w.w[1], w.w[2], w.w[3]};
}

double uniform_at(RngState s, int64_t i) { return philox::uniform_at(s.seed, s.offset, i); }

std::array<double, 4> uniform_block(RngState s, int64_t b) {
  const philox::Words w = philox::draw(s.offset + uint64_t(b), s.seed);
  std::array<double, 4> out;
  for (int k = 0; k < 4; ++k) out[size_t(k)] = philox::unit(w.w[k]);
  return out;
}

std::array<double, 4> normal_block(RngState s, int64_t b) {
  auto w = philox4x32(s.offset + uint64_t(b), s.seed);
  std::array<double, 4> out;
  for (int pair = 0; pair < 2; ++pair) {
    double u1 = philox::open_unit(w[size_t(2 * pair)]),
           u2 = philox::open_unit(w[size_t(2 * pair + 1)]);
    double r = std::sqrt(-2.0 * std::log(u1)), theta = 2.0 * M_PI * u2;
    out[size_t(2 * pair)] = r * std::cos(theta);
    out[size_t(2 * pair + 1)] = r * std::sin(theta);
  }
  return out;
}

}  // namespace spool
