#include "engine/profile.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>

namespace spool {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Sixteen independent FMA chains a thread cover the FMA latency on two pipes. Returns the FLOPs.
__attribute__((target("avx2,fma"))) double fma_avx2(int64_t iters) {
  __m256 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm256_set1_ps(float(i) * 1e-3f);
  const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-4f);
  for (int64_t k = 0; k < iters; ++k)
    for (int i = 0; i < 16; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  for (int i = 1; i < 16; ++i) acc[0] = _mm256_add_ps(acc[0], acc[i]);
  float lanes[8];
  _mm256_storeu_ps(lanes, acc[0]);
  volatile float keep = lanes[0];
  (void)keep;
  return double(iters) * 16 * 8 * 2;
}

__attribute__((target("avx512f"))) double fma_avx512(int64_t iters) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(float(i) * 1e-3f);
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-4f);
  for (int64_t k = 0; k < iters; ++k)
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  for (int i = 1; i < 16; ++i) acc[0] = _mm512_add_ps(acc[0], acc[i]);
  float lanes[16];
  _mm512_storeu_ps(lanes, acc[0]);
  volatile float keep = lanes[0];
  (void)keep;
  return double(iters) * 16 * 16 * 2;
}

}  // namespace

const char* fma_isa() { return __builtin_cpu_supports("avx512f") ? "avx512f" : "avx2"; }

double fma_flops(int64_t iters) {
  const bool wide = __builtin_cpu_supports("avx512f");
  double flops = 0;
#pragma omp parallel reduction(+ : flops)
  flops += wide ? fma_avx512(iters) : fma_avx2(iters);
  return flops;
}

MachinePeaks measure_peaks() {
  MachinePeaks m;
  m.threads = omp_get_max_threads();
  m.isa = fma_isa();
  // The best of 3 runs of about 20-40 ms each (16 x 2^23 FMAs a thread), every thread at once.
  for (int r = 0; r < 3; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const double flops = fma_flops(int64_t(1) << 23);
    m.gflops = std::max(m.gflops, flops / seconds_since(t0) / 1e9);
  }
  // memcpy of 64 MB a thread (far past the caches; 512 MB in all at most, 8 MB a thread at
  // least), read and written: the best of 3.
  const int n = m.threads;
  const size_t per = std::max(size_t(8) << 20, std::min(size_t(64) << 20, (size_t(512) << 20) / n));
  std::unique_ptr<char[]> src(new char[per * n]), dst(new char[per * n]);
  std::memset(src.get(), 1, per * n);
  std::memset(dst.get(), 0, per * n);
  for (int r = 0; r < 3; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel for schedule(static)
    for (int t = 0; t < n; ++t) std::memcpy(dst.get() + per * t, src.get() + per * t, per);
    m.gbytes = std::max(m.gbytes, 2.0 * double(per) * n / seconds_since(t0) / 1e9);
  }
  return m;
}

Profile profile_of(const std::vector<trace::SpanRecord>& spans) {
  Profile p;
  // The steps' thread: the one with the "step" spans.
  std::vector<const trace::SpanRecord*> mine;
  int tid = -1;
  for (const auto& s : spans)
    if (std::strcmp(s.cat, "step") == 0) tid = s.tid;
  if (tid < 0) return p;
  for (const auto& s : spans)
    if (s.tid == tid) mine.push_back(&s);
  // Outer spans before the spans they hold: by start, then the longer first.
  std::sort(mine.begin(), mine.end(), [](const auto* a, const auto* b) {
    return a->ts != b->ts ? a->ts < b->ts : a->dur > b->dur;
  });
  struct Open {
    const trace::SpanRecord* s;
    ProfileRow* row;  // the row it counts in (its outermost op, backward or kernel span)
  };
  std::vector<Open> stack;
  std::map<std::pair<std::string, std::string>, ProfileRow> rows;
  double step_us = 0;
  for (const trace::SpanRecord* s : mine) {
    while (!stack.empty() && s->ts >= stack.back().s->ts + stack.back().s->dur) stack.pop_back();
    ProfileRow* row = stack.empty() ? nullptr : stack.back().row;
    const bool in_step = std::any_of(stack.begin(), stack.end(), [](const Open& o) {
      return std::strcmp(o.s->cat, "step") == 0;
    });
    const std::string cat = s->cat;
    if (cat == "step") {
      ++p.steps;
      step_us += s->dur;
    } else if (in_step && !row && (cat == "op" || cat == "backward" || cat == "kernel")) {
      // An outermost op, backward node or stray kernel: a row, in the phase it ran in (the
      // innermost "phase" span, or "data" in a batch's span). An op outside every phase is the
      // forward's (spool train opens no forward phase: its tasks run forward and backward in
      // one call); a kernel outside every phase and op is the step's own.
      std::string pass = cat == "op" ? "forward" : "step";
      for (const Open& o : stack) {
        if (std::strcmp(o.s->cat, "phase") == 0) pass = o.s->name;
        if (std::strcmp(o.s->cat, "data") == 0) pass = "data";
        // A plan's recompute: the forward of a dropped stage run again before its backward.
        if (std::strcmp(o.s->cat, "planner") == 0 && o.s->name.rfind("replay", 0) == 0)
          pass = "replay";
      }
      if (cat == "backward") pass = "backward";
      ProfileRow& r = rows[{pass, s->name}];
      r.pass = pass;
      r.name = s->name;
      ++r.calls;
      r.ms += s->dur / 1e3;
      row = &r;
    }
    if (row && cat == "kernel") {
      if (s->work.flops > 0) row->flops += s->work.flops;
      if (s->work.bytes > 0) row->bytes += s->work.bytes;
    }
    stack.push_back({s, row});
  }
  if (p.steps == 0) return p;
  p.step_ms = step_us / 1e3 / p.steps;
  for (auto& [key, r] : rows) {
    p.rows_ms += r.ms / p.steps;
    p.rows.push_back(r);
  }
  std::sort(p.rows.begin(), p.rows.end(),
            [](const ProfileRow& a, const ProfileRow& b) { return a.ms > b.ms; });
  return p;
}

void print_profile(const Profile& p, const MachinePeaks& m, std::FILE* out) {
  if (p.steps == 0) {
    std::fprintf(out, "op profile: no traced step\n");
    return;
  }
  std::fprintf(out,
               "op profile of %d traced step(s): %.2f ms a step; the rows add up to %.2f ms "
               "(%.1f %%)\n",
               p.steps, p.step_ms, p.rows_ms, 100 * p.rows_ms / p.step_ms);
  std::fprintf(out,
               "machine peaks (measured at start): %.1f GFLOP/s f32 FMA (%s, %d threads), "
               "%.1f GB/s memcpy (read + write)\n",
               m.gflops, m.isa.c_str(), m.threads, m.gbytes);
  std::fprintf(out, "%-9s %-24s %7s %10s %7s %9s %8s %9s\n", "pass", "op", "calls", "ms/step",
               "% step", "GFLOP/s", "GB/s", "% roof");
  for (const ProfileRow& r : p.rows) {
    const double s = r.ms / 1e3;  // seconds, all steps
    const double gf = r.flops / s / 1e9, gb = r.bytes / s / 1e9;
    // The roofline's time for this work: the larger of its flops at the FMA peak and its bytes
    // at the copy bandwidth; the row's share of it.
    const double roof = std::max(r.flops / (m.gflops * 1e9), r.bytes / (m.gbytes * 1e9));
    std::fprintf(out, "%-9s %-24s %7lld %10.3f %7.2f %9.2f %8.2f %9.1f\n", r.pass.c_str(),
                 r.name.c_str(), (long long)(r.calls / p.steps), r.ms / p.steps,
                 100 * r.ms / p.steps / p.step_ms, gf, gb, s > 0 ? 100 * roof / s : 0.0);
  }
}

}  // namespace spool
