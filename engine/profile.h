// The op profile of traced steps (spool bench --profile, or any code between trace::start() and
// trace::stop() with its steps in "step" spans; docs/profiling.md): the ops by total
// time, forward and backward apart, with calls, share of the step, achieved GFLOP/s and GB/s and
// the fraction of the machine's roofline, like torch.profiler's key averages.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/trace.h"

namespace spool {

// The machine's peaks, measured by short loops at start: fused multiply-adds on every thread
// (AVX-512 where the CPU has it, AVX2 otherwise), and memcpy of buffers far larger than the
// caches (bytes read plus bytes written).
struct MachinePeaks {
  double gflops = 0;  // f32
  std::string isa;    // "avx512f" or "avx2"
  double gbytes = 0;  // GB/s
  int threads = 1;
};
MachinePeaks measure_peaks();
// The FMA loop itself: `iters` rounds of 16 independent f32 FMA chains on every OpenMP thread at
// once (the widest vectors the CPU has); returns the FLOPs done. fma_isa() names the vectors.
double fma_flops(int64_t iters);
const char* fma_isa();

struct ProfileRow {
  std::string pass;  // the phase span it ran in (forward, backward, optimizer, ...), data,
                     // replay (a plan's recompute), or step
  std::string name;  // the op (or a kernel no op recorded)
  int64_t calls = 0;
  double ms = 0;                // total over the traced steps
  double flops = 0, bytes = 0;  // of its kernels
};
struct Profile {
  int steps = 0;
  double step_ms = 0;            // a traced step's mean
  double rows_ms = 0;            // the rows' times per step: what the table accounts for
  std::vector<ProfileRow> rows;  // by total time, largest first
};
// From the spans of steps traced in "step" spans (bench's): the outermost op, backward and
// kernel spans of each step are its rows, each with its kernels' work.
Profile profile_of(const std::vector<trace::SpanRecord>& spans);
void print_profile(const Profile& p, const MachinePeaks& m, std::FILE* out);

}  // namespace spool
