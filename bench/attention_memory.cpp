// Memory of flash against naive attention, measured by the allocator: for T = 256, 1024, 4096
// (B = 1, H = 4, head dim 64, causal, f32) the bytes each keeps for backward beyond q, k, v, and
// the peak of forward + backward above the inputs.   build/bench_attention_memory
#include <cstdio>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/factory.h"
#include "ops/ops.h"

using namespace spool;

int main() {
  std::printf("| T | attention | kept for backward (MiB) | peak forward+backward (MiB) |\n");
  std::printf("|---|---|---|---|\n");
  for (int64_t t : {256, 1024, 4096}) {
    for (bool flash : {true, false}) {
      Generator g(0);
      Tensor q = randn({1, 4, t, 64}, DType::f32, &g).requires_grad_();
      Tensor k = randn({1, 4, t, 64}, DType::f32, &g).requires_grad_();
      Tensor v = randn({1, 4, t, 64}, DType::f32, &g).requires_grad_();
      const int64_t base = memory_stats().live_bytes;
      reset_peak();
      int64_t kept = 0;
      {
        Tensor out = flash ? flash_attention(q, k, v) : naive_attention(q, k, v);
        // What the graph holds once forward is done: everything alive but the inputs.
        kept = memory_stats().live_bytes - base;
        backward(sum(out));
      }
      const int64_t peak = memory_stats().peak_bytes - base;
      std::printf("| %lld | %s | %.2f | %.2f |\n", (long long)t, flash ? "flash" : "naive",
                  double(kept) / (1 << 20), double(peak) / (1 << 20));
    }
  }
  return 0;
}
