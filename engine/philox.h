// Philox-4x32-10 and the conversions to uniform doubles, as inline functions that compile for the
// host and, under nvcc, for the device too: the CPU and CUDA backends draw the same numbers from
// the same (seed, offset, element) because they run this same code.
#pragma once
#include <cstdint>

#include "engine/host_device.h"

namespace spool::philox {

struct Words {
  uint32_t w[4];
};

SPOOL_HD Words draw(uint64_t counter, uint64_t seed) {
  uint32_t c0 = uint32_t(counter), c1 = uint32_t(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t(0xD2511F53u) * c0, p1 = uint64_t(0xCD9E8D57u) * c2;
    const uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0, n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
    c1 = uint32_t(p1);
    c3 = uint32_t(p0);
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {{c0, c1, c2, c3}};
}

// 32 random bits to a double in (0, 1), half a step off either end (safe for log in Box-Muller).
SPOOL_HD double open_unit(uint32_t x) { return (double(x) + 0.5) * (1.0 / 4294967296.0); }
// 32 random bits to a double in [0, 1).
SPOOL_HD double unit(uint32_t x) { return double(x) * (1.0 / 4294967296.0); }

// Element i of the uniform stream that starts at (seed, offset): counter offset + i / 4, lane i
// % 4.
SPOOL_HD double uniform_at(uint64_t seed, uint64_t offset, int64_t i) {
  return unit(draw(offset + uint64_t(i / 4), seed).w[i % 4]);
}

}  // namespace spool::philox
