// CPU kernel throughput: elementwise, reduction, matmul, softmax, layer_norm, and the GEMM and
// convolution shapes of the standard models on each path (OpenBLAS and oneDNN's sgemm; im2col and
// oneDNN convolutions). Bandwidth-bound kernels report bytes/s (read + written); GEMM and
// convolution report FLOP/s and `peak`, their fraction of the FMA peak that BM_fma_peak measures on
// this machine with all its threads (AVX-512 where the CPU has it, else AVX2; detected at run
// time).
//   build/bench_cpu_kernels [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <chrono>

#ifdef SPOOL_HAVE_ONEDNN
#include <dnnl.h>
#endif

#include "ops/conv.h"
#include "ops/cpu/paths.h"

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/factory.h"
#include "engine/profile.h"
#include "ops/ops.h"

using namespace spool;

namespace {

// ---- the FMA peak ---------------------------------------------------------------------------

// The machine's measured f32 FMA peak (FLOP/s, all threads): the best of five timed runs.
double fma_peak() {
  static const double peak = [] {
    double best = 0;
    for (int r = 0; r < 5; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      const double flops = fma_flops(int64_t(1) << 22);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::max(best, flops / s);
    }
    return best;
  }();
  return peak;
}

void BM_fma_peak(benchmark::State& st) {
  double flops = 0;
  for (auto _ : st) flops = fma_flops(int64_t(1) << 22);
  st.counters["FLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
  st.SetLabel(fma_isa());
}
BENCHMARK(BM_fma_peak)->UseRealTime()->Iterations(5);

// Sets FLOP/s and the fraction of the FMA peak from `flops` per iteration.
void set_flops(benchmark::State& st, double flops) {
  st.counters["FLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["peak"] =
      benchmark::Counter(flops / fma_peak(), benchmark::Counter::kIsIterationInvariantRate);
}

// ---- GEMM at the models' shapes ---------------------------------------------------------------

// gpt-tiny's linear layers, [M, K] @ [K, N] with M = 8 x 256 tokens: the fused QKV projection,
// the attention output projection, the MLP's two layers and the tied output head; and the same
// products as the weight gradient takes them (A^T B, K = tokens).
struct GemmShape {
  int64_t m, k, n;
  bool ta;
};
const GemmShape kGemmShapes[] = {
    {2048, 256, 768, false},  {2048, 256, 256, false}, {2048, 256, 1024, false},
    {2048, 1024, 256, false}, {256, 2048, 1024, true}, {1024, 2048, 256, true},
};

void BM_gemm_openblas(benchmark::State& st) {
  const GemmShape g = kGemmShapes[st.range(0)];
  Tensor a = g.ta ? randn({g.k, g.m}) : randn({g.m, g.k}), b = randn({g.k, g.n});
  if (g.ta) a = transpose(a, 0, 1);
  NoGrad ng;
  for (auto _ : st) benchmark::DoNotOptimize(matmul(a, b));
  set_flops(st, 2.0 * double(g.m * g.k * g.n));
  st.SetLabel(std::to_string(g.m) + "x" + std::to_string(g.k) + "x" + std::to_string(g.n) +
              (g.ta ? " A^T" : ""));
}
BENCHMARK(BM_gemm_openblas)->DenseRange(0, 5)->UseRealTime();

#ifdef SPOOL_HAVE_ONEDNN
void BM_gemm_onednn(benchmark::State& st) {
  const GemmShape g = kGemmShapes[st.range(0)];
  Tensor a = g.ta ? randn({g.k, g.m}) : randn({g.m, g.k}), b = randn({g.k, g.n}),
         c = empty({g.m, g.n});
  const float* pa = static_cast<const float*>(a.raw());
  const float* pb = static_cast<const float*>(b.raw());
  float* pc = static_cast<float*>(c.raw());
  for (auto _ : st)
    dnnl_sgemm(g.ta ? 'T' : 'N', 'N', g.m, g.n, g.k, 1.f, pa, g.ta ? g.m : g.k, pb, g.n, 0.f, pc,
               g.n);
  set_flops(st, 2.0 * double(g.m * g.k * g.n));
  st.SetLabel(std::to_string(g.m) + "x" + std::to_string(g.k) + "x" + std::to_string(g.n) +
              (g.ta ? " A^T" : ""));
}
BENCHMARK(BM_gemm_onednn)->DenseRange(0, 5)->UseRealTime();
#endif

// ---- convolution at the models' shapes --------------------------------------------------------

// ResNet-18 on 16 frames of 112 x 112 (tsn-r18's batch): the stem, a 3x3 of each stage, a
// strided 3x3 and a 1x1 shortcut; and i3d-r18's 3x3x3 and 1x3x3. Entry 0 forward, 1 input
// gradient, 2 weight gradient (range(1)); path (range(2)) 0 im2col, 1 oneDNN.
struct ConvShape {
  const char* name;
  Shape x, w;
  std::vector<int64_t> stride, padding;
};
const ConvShape kConvShapes[] = {
    {"stem 7x7/2 3->64 @112", {16, 3, 112, 112}, {64, 3, 7, 7}, {2}, {3}},
    {"3x3 64->64 @28", {16, 64, 28, 28}, {64, 64, 3, 3}, {1}, {1}},
    {"3x3/2 64->128 @28", {16, 64, 28, 28}, {128, 64, 3, 3}, {2}, {1}},
    {"1x1/2 64->128 @28", {16, 64, 28, 28}, {128, 64, 1, 1}, {2}, {0}},
    {"3x3 256->256 @7", {16, 256, 7, 7}, {256, 256, 3, 3}, {1}, {1}},
    {"3d 3x3x3 64->64 @8x28", {2, 64, 8, 28, 28}, {64, 64, 3, 3, 3}, {1}, {1}},
    {"3d 1x3x3 128->128 @8x14", {2, 128, 8, 14, 14}, {128, 128, 1, 3, 3}, {1}, {0, 1, 1}},
};

void BM_conv(benchmark::State& st) {
  const ConvShape& c = kConvShapes[st.range(0)];
  const int entry = int(st.range(1));
  const cpu::Conv path = st.range(2) ? cpu::Conv::onednn : cpu::Conv::im2col;
  std::string why;
  if (path == cpu::Conv::onednn && !cpu::onednn_available(&why)) {
    st.SkipWithError(why.c_str());
    return;
  }
  const cpu::Conv saved = cpu::conv_path();
  cpu::set_conv(path);
  ConvOptions o;
  o.stride = c.stride;
  o.padding = c.padding;
  Tensor x = randn(c.x), w = randn(c.w), y;
  {
    NoGrad ng;
    y = conv(x, w, {}, o);
  }
  Tensor gy = randn(y.shape()), gx = empty(x.shape()), gw = empty(w.shape());
  WindowParams p;
  const size_t spatial = c.x.size() - 2;
  for (size_t d = 0; d < spatial; ++d) {
    p.kernel.push_back(c.w[d + 2]);
    p.stride.push_back(c.stride.size() == 1 ? c.stride[0] : c.stride[d]);
    p.padding.push_back(c.padding.size() == 1 ? c.padding[0] : c.padding[d]);
    p.dilation.push_back(1);
  }
  Backend& be = backend(Device::cpu());
  for (auto _ : st) {
    if (entry == 0) be.conv(x, w, p, y);
    if (entry == 1) be.conv_backward_input(gy, w, p, gx);
    if (entry == 2) be.conv_backward_weight(gy, x, p, gw);
  }
  cpu::set_conv(saved);
  set_flops(st, 2.0 * double(y.numel()) * double(w.numel() / w.size(0)));
  static const char* entries[] = {"forward", "input grad", "weight grad"};
  st.SetLabel(std::string(c.name) + ", " + entries[entry] +
              (path == cpu::Conv::onednn ? ", onednn" : ", im2col"));
}
BENCHMARK(BM_conv)->ArgsProduct({{0, 1, 2, 3, 4, 5, 6}, {0, 1, 2}, {0, 1}})->UseRealTime();

void BM_add(benchmark::State& st) {
  const int64_t n = st.range(0);
  Tensor a = randn({n}), b = randn({n}), y = empty({n});
  for (auto _ : st) backend(Device::cpu()).binary(BinaryOp::add, a, b, y);
  st.SetBytesProcessed(st.iterations() * 3 * n * 4);
}
BENCHMARK(BM_add)->Arg(1 << 16)->Arg(1 << 20)->Arg(1 << 24)->UseRealTime();

void BM_gelu(benchmark::State& st) {
  const int64_t n = st.range(0);
  Tensor a = randn({n}), y = empty({n});
  for (auto _ : st) backend(Device::cpu()).unary(UnaryOp::gelu_tanh, a, y);
  st.SetBytesProcessed(st.iterations() * 2 * n * 4);
}
BENCHMARK(BM_gelu)->Arg(1 << 20)->UseRealTime();

void BM_sum_all(benchmark::State& st) {
  const int64_t n = st.range(0);
  Tensor a = randn({n});
  NoGrad ng;
  for (auto _ : st) benchmark::DoNotOptimize(sum(a));
  st.SetBytesProcessed(st.iterations() * n * 4);
}
BENCHMARK(BM_sum_all)->Arg(1 << 20)->Arg(1 << 24)->UseRealTime();

void BM_sum_rows(benchmark::State& st) {  // [rows, 1024] -> [rows]
  const int64_t rows = st.range(0), cols = 1024;
  Tensor a = randn({rows, cols});
  NoGrad ng;
  for (auto _ : st) benchmark::DoNotOptimize(sum(a, {1}));
  st.SetBytesProcessed(st.iterations() * rows * cols * 4);
}
BENCHMARK(BM_sum_rows)->Arg(4096)->UseRealTime();

void BM_sum_cols(benchmark::State& st) {  // [rows, 1024] -> [1024], the bias-gradient shape
  const int64_t rows = st.range(0), cols = 1024;
  Tensor a = randn({rows, cols});
  NoGrad ng;
  for (auto _ : st) benchmark::DoNotOptimize(sum(a, {0}));
  st.SetBytesProcessed(st.iterations() * rows * cols * 4);
}
BENCHMARK(BM_sum_cols)->Arg(4096)->UseRealTime();

void BM_matmul(benchmark::State& st) {
  const int64_t n = st.range(0);
  Tensor a = randn({n, n}), b = randn({n, n});
  NoGrad ng;
  for (auto _ : st) benchmark::DoNotOptimize(matmul(a, b));
  st.counters["FLOP/s"] =
      benchmark::Counter(2.0 * double(n * n * n), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_matmul)->Arg(256)->Arg(512)->Arg(1024)->UseRealTime();

void BM_matmul_batched(benchmark::State& st) {  // attention-shaped: [B*H, T, d] @ [B*H, d, T]
  const int64_t bh = 32, t = st.range(0), d = 64;
  Tensor a = randn({bh, t, d}), b = randn({bh, d, t});
  NoGrad ng;
  for (auto _ : st) benchmark::DoNotOptimize(matmul(a, b));
  st.counters["FLOP/s"] = benchmark::Counter(2.0 * double(bh * t * t * d),
                                             benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_matmul_batched)->Arg(256)->UseRealTime();

void BM_softmax(benchmark::State& st) {  // [rows, 1024] along the last dim
  const int64_t rows = st.range(0), cols = 1024;
  Tensor x = randn({rows, cols}), y = empty({rows, cols});
  for (auto _ : st) backend(Device::cpu()).softmax(x, 1, false, y);
  st.SetBytesProcessed(st.iterations() * 2 * rows * cols * 4);
}
BENCHMARK(BM_softmax)->Arg(4096)->UseRealTime();

void BM_layer_norm(benchmark::State& st) {  // [rows, 768]
  const int64_t rows = st.range(0), d = 768;
  Tensor x = randn({rows, d}), w = ones({d}), b = zeros({d}), y = empty({rows, d}),
         mu = empty({rows}), rs = empty({rows});
  for (auto _ : st) backend(Device::cpu()).layer_norm(x, w, b, 1e-5, y, mu, rs);
  st.SetBytesProcessed(st.iterations() * 2 * rows * d * 4);
}
BENCHMARK(BM_layer_norm)->Arg(8192)->UseRealTime();

void BM_layer_norm_backward(benchmark::State& st) {
  const int64_t rows = st.range(0), d = 768;
  Tensor x = randn({rows, d}), w = ones({d}), b = zeros({d}), y = empty({rows, d}),
         mu = empty({rows}), rs = empty({rows}), gy = randn({rows, d}), gx = empty({rows, d}),
         gw = empty({d}), gb = empty({d});
  backend(Device::cpu()).layer_norm(x, w, b, 1e-5, y, mu, rs);
  for (auto _ : st) backend(Device::cpu()).layer_norm_backward(x, w, mu, rs, gy, gx, gw, gb);
  st.SetBytesProcessed(st.iterations() * 3 * rows * d * 4);
}
BENCHMARK(BM_layer_norm_backward)->Arg(8192)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
