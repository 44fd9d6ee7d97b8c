// The random draws of the RL algorithms: a counter-based stream (engine/rng.h's Philox), so a
// run is a function of its seed alone.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/rng.h"

namespace spool::rl {

class Sampler {
 public:
  explicit Sampler(uint64_t seed) : state_{seed, 0} {}
  double uniform() { return uniform_at(state_, next_++); }  // [0, 1)
  int64_t below(int64_t n) {                                // 0 .. n - 1
    const int64_t k = int64_t(uniform() * double(n));
    return k < n ? k : n - 1;
  }
  double normal() {
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
  }
  // An index drawn with the given probabilities (summing to 1).
  int pick(const double* p, int n) {
    double u = uniform(), acc = 0;
    for (int i = 0; i < n - 1; ++i)
      if (u < (acc += p[i])) return i;
    return n - 1;
  }

 private:
  RngState state_;
  int64_t next_ = 0;
};

}  // namespace spool::rl
