#include "tests/support/synthetic_profile.h"

#include <algorithm>
#include <random>
#include <string>

namespace spool::detail {

ChainProfile synthetic_profile(uint64_t seed, int n, int skips) {
  std::mt19937_64 r(seed);
  auto u = [&](int64_t m) { return int64_t(r() % uint64_t(m)); };
  ChainProfile p;
  p.base_bytes = 1000000;
  p.seed_bytes = 4;
  for (int i = 0; i < n; ++i) {
    StageCost s;
    s.out_bytes = i == n - 1 ? 4 : 1000 + u(50000);
    s.internal_bytes = u(200000);
    s.keep_peak = s.out_bytes + s.internal_bytes + u(30000);
    s.nograd_peak = s.out_bytes + u(30000);
    s.forward_ms = 0.1 + double(u(1000)) / 100;
    s.flops = double(u(1 << 20));
    p.stages.push_back(s);
  }
  // Skip inputs: stage i also reads up to `skips` earlier boundaries.
  for (int i = 1; i < n && skips > 0; ++i) {
    std::vector<int> in{i};
    for (int k = 0; k < skips; ++k)
      if (u(2)) in.push_back(int(u(i)));
    std::sort(in.begin(), in.end());
    in.erase(std::unique(in.begin(), in.end()), in.end());
    if (in.size() > 1) p.stages[size_t(i)].inputs = in;
  }
  // The backward of a boundary's last reader makes its gradient; the others add into it.
  std::vector<int> last_reader(size_t(n) + 1, -1);
  for (int i = 0; i < n; ++i)
    for (int j : p.inputs(i)) last_reader[size_t(j)] = i;
  for (int i = 0; i < n; ++i) {
    StageCost& s = p.stages[size_t(i)];
    s.grad_bytes = i == 0 ? 0 : p.stages[size_t(i) - 1].out_bytes;
  }
  for (int i = 0; i < n; ++i) {
    StageCost& s = p.stages[size_t(i)];
    int64_t made = 0;
    for (int j : p.inputs(i))
      if (j > 0 && last_reader[size_t(j)] == i) made += p.stages[size_t(j)].grad_bytes;
    const int64_t params = u(20000), residual = u(2) ? 0 : u(s.internal_bytes + 1);
    // The backward frees the internals but a residual before its peak, the residual after it.
    const int64_t before_release = made + params - (s.internal_bytes - residual);
    s.backward_delta = before_release - residual;
    s.backward_peak = std::max<int64_t>(0, before_release) + u(40000);
  }
  return p;
}

}  // namespace spool::detail
