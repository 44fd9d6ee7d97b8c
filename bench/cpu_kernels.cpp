// CPU kernel throughput: elementwise, reduction, matmul, softmax, layer_norm.
// Bandwidth-bound kernels report bytes/s (read + written), GEMM reports FLOP/s.
//   build/bench_cpu_kernels [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/factory.h"
#include "ops/ops.h"

using namespace spool;

namespace {

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
