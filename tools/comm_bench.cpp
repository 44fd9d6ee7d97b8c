// spool comm-bench: times the process group's all-reduce over message sizes (run it under
// mpirun), fits the alpha-beta model of a ring all-reduce to the times, and predicts the
// gradient all-reduce and the step time of a data-parallel run at other scales and links
// (docs/distributed.md).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "dist/dist.h"
#include "engine/clock.h"
#include "engine/factory.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace spool::cli {

namespace {

// The ring all-reduce of n bytes over p ranks (Thakur, Rabenseifner and Gropp 2005): a
// reduce-scatter and an all-gather of p - 1 steps each, every step one message of n / p bytes.
double ring_seconds(double p, double n, double alpha, double beta) {
  return 2 * (p - 1) * alpha + 2 * (p - 1) / p * n * beta;
}

}  // namespace

int cmd_comm_bench(int argc, char** argv) {
  Args a(argc, argv, 2,
         {{"max-mb", true,
           "the largest message in MB (default 64, to 10 % over); sizes go up by 4 from 4 KB"},
          {"reps", true, "timed all-reduces a size, after one warm-up (default 10); the median"},
          {"csv", true, "FILE.csv: bytes, seconds, bus GB/s per size (rank 0 writes it)"},
          {"params", true,
           "parameters whose f32 gradient the prediction all-reduces (default gpt2-124m's "
           "124,439,808)"},
          {"compute-ms", true,
           "a step's forward and backward on one rank, for the step-time prediction (default: "
           "none, only the all-reduce is predicted)"},
          {"overlap", true,
           "the share of backward (2/3 of --compute-ms) the all-reduce can run under, 0 to 1, "
           "for the prediction (default 1)"},
          {"alpha-us", true,
           "the network's latency per message for the prediction, in microseconds (default 5)"}},
         "comm-bench");
  dist::ProcessGroup& g = dist::world();
  const double max_bytes = a.positive_double("max-mb", 64) * 1e6;
  const int64_t reps = a.positive_int("reps", 10);
  const double params = a.has("params") ? a.positive_double("params", 0) : 124439808.0;
  const double compute = a.has("compute-ms") ? a.positive_double("compute-ms", 0) / 1e3 : 0;
  double overlap = 1;
  if (a.has("overlap")) {
    const std::string v = a.str("overlap", "1");
    char* end = nullptr;
    overlap = std::strtod(v.c_str(), &end);
    if (v.empty() || *end || !(overlap >= 0 && overlap <= 1))
      throw UsageError("comm-bench: --overlap '" + v + "' is not a share from 0 to 1");
  }
  const double alpha_net = (a.has("alpha-us") ? a.positive_double("alpha-us", 5) : 5) / 1e6;
  std::optional<std::string> csv;
  if (a.has("csv")) csv = a.str("csv", "");
  check_output(csv, "--csv");
  if (g.rank() > 0 && !std::freopen("/dev/null", "w", stdout))
    throw UsageError("comm-bench: rank " + std::to_string(g.rank()) +
                     " could not silence its output");
  const double p = g.world();
  std::printf("all-reduce over %d process(es), f32, median of %lld\n", g.world(), (long long)reps);
  std::printf("%12s %12s %10s\n", "bytes", "seconds", "bus GB/s");
  LineLog out(g.rank() == 0 ? csv : std::nullopt, "--csv");
  out.write("bytes,seconds,bus_gb_per_s");
  std::vector<double> xs, ys;
  for (double bytes = 4096; bytes <= max_bytes * 1.1; bytes *= 4) {
    Tensor t = ones({int64_t(bytes / 4)});
    g.all_reduce_sum(t);  // warm-up
    std::vector<double> times;
    for (int64_t r = 0; r < reps; ++r) {
      g.barrier();
      const double t0 = now_ms();
      g.all_reduce_sum(t);
      times.push_back((now_ms() - t0) / 1e3);
    }
    std::sort(times.begin(), times.end());
    const double s = times[times.size() / 2];
    // Bus bandwidth: the bytes each rank sends and receives in a ring, over the time.
    const double bus = p > 1 ? 2 * (p - 1) / p * bytes / s / 1e9 : 0;
    std::printf("%12.0f %12.6f %10.2f\n", bytes, s, bus);
    char line[128];
    std::snprintf(line, sizeof line, "%.0f,%.9f,%.4f", bytes, s, bus);
    out.write(line);
    xs.push_back(bytes);
    ys.push_back(s);
  }
  out.commit();
  if (g.world() < 2) {
    std::printf("one process: nothing to fit (run under mpirun -np 2 or more)\n");
    return 0;
  }
  // Least squares of t = 2 (p - 1) alpha + 2 (p - 1) / p n beta over the sizes, each weighted by
  // 1 / t^2 (relative errors: the sizes span four orders of magnitude).
  double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double x = 2 * (p - 1) / p * xs[i], w = 1 / (ys[i] * ys[i]);
    sw += w;
    sx += w * x;
    sy += w * ys[i];
    sxx += w * x * x;
    sxy += w * x * ys[i];
  }
  const double beta = (sw * sxy - sx * sy) / (sw * sxx - sx * sx);
  const double alpha = (sy - beta * sx) / sw / (2 * (p - 1));
  double worst = 0;
  for (size_t i = 0; i < xs.size(); ++i)
    worst = std::max(worst, std::abs(ring_seconds(p, xs[i], alpha, beta) - ys[i]) / ys[i]);
  std::printf(
      "fit: alpha %.2f us a message, beta %.4f ns a byte (%.2f GB/s); the worst size is %.0f %% "
      "off the fit\n",
      alpha * 1e6, beta * 1e9, 1 / beta / 1e9, worst * 100);
  // The prediction: the gradient's all-reduce over the link (beta = 1 / its bandwidth). The step
  // is the compute plus what of the all-reduce backward does not hide: backward is 2/3 of the
  // compute (twice the forward's FLOPs), and at best the buckets' all-reduces run under all of
  // it; at worst (one bucket, or no overlap) none.
  const double bytes = params * 4;
  std::printf(
      "prediction for %.0f parameters (%.1f MB of f32 gradient), ring all-reduce, alpha %.1f us",
      params, bytes / 1e6, alpha_net * 1e6);
  if (compute > 0)
    std::printf(", compute %.1f ms a step, %.0f %% of backward usable for the all-reduce",
                compute * 1e3, overlap * 100);
  std::printf(":\n%8s %10s %14s %16s %16s\n", "ranks", "link Gb/s", "all-reduce ms",
              "step ms, serial", "step ms, overlap");
  for (double ranks : {8.0, 64.0, 512.0})
    for (double gbps : {100.0, 400.0}) {
      const double comm = ring_seconds(ranks, bytes, alpha_net, 8 / (gbps * 1e9));
      if (compute <= 0) {
        std::printf("%8.0f %10.0f %14.1f %16s %16s\n", ranks, gbps, comm * 1e3, "-", "-");
        continue;
      }
      const double serial = compute + comm;
      const double hidden = compute + std::max(0.0, comm - overlap * compute * 2 / 3);
      std::printf("%8.0f %10.0f %14.1f %9.1f (%2.0f%%) %9.1f (%2.0f%%)\n", ranks, gbps, comm * 1e3,
                  serial * 1e3, 100 * compute / serial, hidden * 1e3, 100 * compute / hidden);
    }
  std::printf("(in parentheses: the scaling efficiency, compute / step)\n");
  return 0;
}

}  // namespace spool::cli
