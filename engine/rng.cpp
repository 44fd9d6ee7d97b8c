#include "engine/rng.h"

#include <cmath>

namespace spool {

Generator& default_generator() {
  static Generator g(0);
  return g;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

std::array<uint32_t, 4> philox4x32(uint64_t counter, uint64_t seed) {
  uint32_t c0 = uint32_t(counter), c1 = uint32_t(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = uint64_t(0xD2511F53u) * c0, p1 = uint64_t(0xCD9E8D57u) * c2;
    uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0, n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
    c1 = uint32_t(p1);
    c3 = uint32_t(p0);
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {c0, c1, c2, c3};
}

namespace {
// 32 random bits to a double in [0, 1) (never 1, and never exactly 0 for the log in Box-Muller
// below, which adds half a step).
double to_unit(uint32_t x) { return (double(x) + 0.5) * (1.0 / 4294967296.0); }
}  // namespace

double uniform_at(RngState s, int64_t i) { return uniform_block(s, i / 4)[size_t(i % 4)]; }

std::array<double, 4> uniform_block(RngState s, int64_t b) {
  auto w = philox4x32(s.offset + uint64_t(b), s.seed);
  std::array<double, 4> out;
  for (int k = 0; k < 4; ++k) out[size_t(k)] = to_unit(w[size_t(k)]) - 0.5 / 4294967296.0;
  return out;
}

std::array<double, 4> normal_block(RngState s, int64_t b) {
  auto w = philox4x32(s.offset + uint64_t(b), s.seed);
  std::array<double, 4> out;
  for (int pair = 0; pair < 2; ++pair) {
    double u1 = to_unit(w[size_t(2 * pair)]), u2 = to_unit(w[size_t(2 * pair + 1)]);
    double r = std::sqrt(-2.0 * std::log(u1)), theta = 2.0 * M_PI * u2;
    out[size_t(2 * pair)] = r * std::cos(theta);
    out[size_t(2 * pair + 1)] = r * std::sin(theta);
  }
  return out;
}

}  // namespace spool
