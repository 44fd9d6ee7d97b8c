// CUDA kernel throughput against measured ceilings (Google Benchmark, manual time from CUDA
// events): bandwidth-bound kernels report GB/s (bytes read + written once) and their fraction of
// the device-to-device copy ceiling measured at start; GEMMs report TFLOP/s, the tiled SGEMM also
// as a fraction of cuBLAS's at the same size; the 3x3 convolution reports TFLOP/s through im2col
// and through cuDNN (where the build has it; FMA math, deterministic algorithms), the latter also
// as a fraction of im2col's; flash attention reports TFLOP/s (causal FLOPs).
//   build/bench_cuda_kernels [--benchmark_filter=...]
// Exits with a message (status 0) where there is no GPU: nothing to measure.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <string>

#include "cuda/control.h"
#include "engine/backend.h"
#include "engine/factory.h"
#include "ops/ops.h"

using namespace spool;

namespace {

double g_copy_bps = 0;      // device-to-device copy ceiling, bytes/s
double g_cublas_flops = 0;  // cuBLAS SGEMM at 4096^3, FLOP/s (set by BM_sgemm/cublas)

Device gpu() { return Device::cuda(0); }
Backend& B() { return backend(gpu()); }
Tensor grand(const Shape& s) { return to(randn(s), gpu()); }
Tensor gempty(const Shape& s, DType dt = DType::f32) { return empty(s, dt, gpu()); }

void trampoline(void* f) { (*static_cast<std::function<void()>*>(f))(); }

// Times f on the stream (CUDA events around `reps` calls); the iteration time is one call.
double run(benchmark::State& st, std::function<void()> f, int reps = 20) {
  double s = 0;
  for (auto _ : st) {
    s = cuda::time_on_stream(&trampoline, &f, reps);
    st.SetIterationTime(s);
  }
  return s;
}

void bandwidth(benchmark::State& st, double bytes, double seconds) {
  st.counters["GB/s"] = bytes / seconds / 1e9;
  st.counters["of_copy"] = bytes / seconds / g_copy_bps;
}

void BM_copy_kernel(benchmark::State& st) {
  const int64_t n = int64_t(1) << 28;
  Tensor a = grand({n}), y = gempty({n});
  bandwidth(st, 8.0 * double(n), run(st, [&] { B().copy(a, y); }));
}
BENCHMARK(BM_copy_kernel)->UseManualTime()->Iterations(3);

void BM_add(benchmark::State& st) {
  const int64_t n = int64_t(1) << 26;
  Tensor a = grand({n}), b = grand({n}), y = gempty({n});
  bandwidth(st, 12.0 * double(n), run(st, [&] { B().binary(BinaryOp::add, a, b, y); }));
}
BENCHMARK(BM_add)->UseManualTime()->Iterations(3);

void BM_add_broadcast_rows(benchmark::State& st) {  // [8192, 768] + [768]: bias add
  Tensor a = grand({8192, 768}), b = expand(reshape(grand({768}), {1, 768}), {8192, 768});
  Tensor y = gempty({8192, 768});
  bandwidth(st, 8.0 * 8192 * 768, run(st, [&] { B().binary(BinaryOp::add, a, b, y); }));
}
BENCHMARK(BM_add_broadcast_rows)->UseManualTime()->Iterations(3);

void BM_gelu_tanh(benchmark::State& st) {
  const int64_t n = int64_t(1) << 26;
  Tensor a = grand({n}), y = gempty({n});
  bandwidth(st, 8.0 * double(n), run(st, [&] { B().unary(UnaryOp::gelu_tanh, a, y, 0, 0); }));
}
BENCHMARK(BM_gelu_tanh)->UseManualTime()->Iterations(3);

void BM_sum_rows(benchmark::State& st) {  // [8192, 4096] -> [8192, 1]
  Tensor a = grand({8192, 4096}), y = gempty({8192, 1});
  bandwidth(st, 4.0 * 8192 * 4096, run(st, [&] { B().reduce(ReduceOp::sum, a, {1}, y); }));
}
BENCHMARK(BM_sum_rows)->UseManualTime()->Iterations(3);

void BM_sum_columns(benchmark::State& st) {  // [8192, 768] -> [1, 768]: a bias gradient
  Tensor a = grand({8192, 768}), y = gempty({1, 768});
  bandwidth(st, 4.0 * 8192 * 768, run(st, [&] { B().reduce(ReduceOp::sum, a, {0}, y); }));
}
BENCHMARK(BM_sum_columns)->UseManualTime()->Iterations(3);

void BM_softmax(benchmark::State& st) {  // gpt2-124m logits rows: [8192, 50257]
  Tensor a = grand({8192, 50257}), y = gempty({8192, 50257});
  bandwidth(st, 8.0 * 8192 * 50257,
            run(
                st, [&] { B().softmax(a, 1, true, y); }, 5));
}
BENCHMARK(BM_softmax)->UseManualTime()->Iterations(2);

void BM_layer_norm(benchmark::State& st) {
  Tensor x = grand({8192, 768}), w = grand({768}), b = grand({768}), y = gempty({8192, 768});
  Tensor m = gempty({8192}), r = gempty({8192});
  bandwidth(st, 8.0 * 8192 * 768, run(st, [&] { B().layer_norm(x, w, b, 1e-5, y, m, r); }));
}
BENCHMARK(BM_layer_norm)->UseManualTime()->Iterations(3);

void BM_layer_norm_backward(benchmark::State& st) {
  Tensor x = grand({8192, 768}), w = grand({768}), b = grand({768}), y = gempty({8192, 768});
  Tensor m = gempty({8192}), r = gempty({8192}), gy = grand({8192, 768}), gx = gempty({8192, 768});
  Tensor gw = gempty({768}), gb = gempty({768});
  B().layer_norm(x, w, b, 1e-5, y, m, r);
  bandwidth(st, 12.0 * 8192 * 768 * 2,  // x and gy read twice (gx, then the parameter sums)
            run(st, [&] { B().layer_norm_backward(x, w, m, r, gy, gx, gw, gb); }));
}
BENCHMARK(BM_layer_norm_backward)->UseManualTime()->Iterations(3);

void BM_adamw(benchmark::State& st) {  // gpt2-124m's parameters in one tensor
  const int64_t n = 124'000'000;
  Tensor p = grand({n}), g = grand({n}), m = grand({n}), v = to(rand({n}), gpu());
  const AdamParams a{1e-3, 0.9, 0.999, 1e-8, 0.01, true, 0.1, 0.001};
  bandwidth(st, 28.0 * double(n),
            run(
                st, [&] { B().adam_step(p, g, m, v, a); }, 5));
}
BENCHMARK(BM_adamw)->UseManualTime()->Iterations(2);

void BM_embedding(benchmark::State& st) {  // wte lookup for 8 x 1024 tokens
  Tensor table = grand({50257, 768}), idx = to(arange(8192) * 6, gpu()), y = gempty({8192, 768});
  bandwidth(st, 8.0 * 8192 * 768, run(st, [&] { B().index_select(table, 0, idx, y); }));
}
BENCHMARK(BM_embedding)->UseManualTime()->Iterations(3);

void sgemm(benchmark::State& st, cuda::Gemm which) {
  const int64_t n = st.range(0);
  Tensor a = grand({1, n, n}), b = grand({1, n, n}), c = gempty({1, n, n});
  cuda::set_gemm(which);
  const double s = run(
      st, [&] { B().matmul(a, b, c); }, n >= 4096 ? 5 : 20);
  cuda::set_gemm(cuda::Gemm::cublas);
  const double flops = 2.0 * double(n) * double(n) * double(n) / s;
  st.counters["TFLOP/s"] = flops / 1e12;
  if (which == cuda::Gemm::cublas && n == 4096) g_cublas_flops = flops;
  if (which == cuda::Gemm::tiled && g_cublas_flops > 0 && n == 4096)
    st.counters["of_cublas"] = flops / g_cublas_flops;
}
void BM_sgemm_cublas(benchmark::State& st) { sgemm(st, cuda::Gemm::cublas); }
void BM_sgemm_tiled(benchmark::State& st) { sgemm(st, cuda::Gemm::tiled); }
BENCHMARK(BM_sgemm_cublas)->Arg(1024)->Arg(4096)->UseManualTime()->Iterations(2);
BENCHMARK(BM_sgemm_tiled)->Arg(1024)->Arg(4096)->UseManualTime()->Iterations(2);

// resnet layer1 conv, batch 32, through the im2col path or cuDNN (cuda::set_conv); each reports
// TFLOP/s, the cuDNN one also as a fraction of im2col's (of_im2col).
double g_im2col_flops = 0;  // set by BM_conv3x3_im2col
void conv3x3(benchmark::State& st, cuda::Conv path) {
  std::string why;
  if (path == cuda::Conv::cudnn && !cuda::cudnn_available(&why)) {
    st.SkipWithError(("no cuDNN: " + why).c_str());
    return;
  }
  Tensor x = grand({32, 64, 56, 56}), w = grand({64, 64, 3, 3}), y = gempty({32, 64, 56, 56});
  WindowParams p;
  p.kernel = {3, 3};
  p.stride = {1, 1};
  p.padding = {1, 1};
  p.dilation = {1, 1};
  const cuda::Conv before = cuda::conv_path();
  cuda::set_conv(path);
  const double s = run(
      st, [&] { B().conv(x, w, p, y); }, 5);
  cuda::set_conv(before);
  const double flops = 2.0 * 32 * 64 * 56 * 56 * 64 * 9 / s;
  st.counters["TFLOP/s"] = flops / 1e12;
  if (path == cuda::Conv::im2col) g_im2col_flops = flops;
  if (path == cuda::Conv::cudnn && g_im2col_flops > 0)
    st.counters["of_im2col"] = flops / g_im2col_flops;
}
void BM_conv3x3_im2col(benchmark::State& st) { conv3x3(st, cuda::Conv::im2col); }
void BM_conv3x3_cudnn(benchmark::State& st) { conv3x3(st, cuda::Conv::cudnn); }
BENCHMARK(BM_conv3x3_im2col)->UseManualTime()->Iterations(2);
BENCHMARK(BM_conv3x3_cudnn)->UseManualTime()->Iterations(2);

void attention(benchmark::State& st, bool backward) {
  const int64_t b = 8, h = 12, t = st.range(0), d = 64;
  Tensor q = grand({b, h, t, d}), k = grand({b, h, t, d}), v = grand({b, h, t, d});
  Tensor o = gempty({b, h, t, d}), lse = gempty({b, h, t}), go = grand({b, h, t, d});
  Tensor gq = gempty({b, h, t, d}), gk = gempty({b, h, t, d}), gv = gempty({b, h, t, d});
  AttentionParams p;
  p.scale = 1 / std::sqrt(double(d));
  B().attention(q, k, v, Tensor(), p, o, lse);
  const double s = run(
      st,
      [&] {
        if (backward)
          B().attention_backward(q, k, v, Tensor(), p, o, lse, go, gq, gk, gv);
        else
          B().attention(q, k, v, Tensor(), p, o, lse);
      },
      5);
  // Causal: half of the 4 B H T^2 D FLOPs of QK^T and PV (backward: 2.5x the forward's).
  const double flops =
      2.0 * double(b * h) * double(t) * double(t) * double(d) * (backward ? 2.5 : 1);
  st.counters["TFLOP/s"] = flops / s / 1e12;
}
void BM_flash_attention_forward(benchmark::State& st) { attention(st, false); }
void BM_flash_attention_backward(benchmark::State& st) { attention(st, true); }
BENCHMARK(BM_flash_attention_forward)->Arg(1024)->UseManualTime()->Iterations(2);
BENCHMARK(BM_flash_attention_backward)->Arg(1024)->UseManualTime()->Iterations(2);

}  // namespace

int main(int argc, char** argv) {
  std::string why;
  if (!cuda_backend(&why)) {
    std::printf("bench_cuda_kernels: no GPU (%s); nothing to measure\n", why.c_str());
    return 0;
  }
  g_copy_bps = cuda::copy_bandwidth(size_t(1) << 30);
  std::printf("device-to-device copy ceiling: %.0f GB/s (read + written, 1 GiB)\n",
              g_copy_bps / 1e9);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
