// The CUDA backend against the CPU backend: every kernel on fresh random inputs (odd sizes,
// non-contiguous views), outputs poisoned with NaN before each run so an unwritten element fails,
// and whole gpt-tiny and resnet18 training steps. Every test skips, with the reason, where this
// build has no CUDA backend or the machine has no GPU; bench/gpu/run.sh runs them on a GPU.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/factory.h"
#include "models/gpt.h"
#include "models/resnet.h"
#include "ops/ops.h"
#include "tests/support/helpers.h"

#ifdef SPOOL_HAVE_CUDA
#include "cuda/control.h"
#include "cuda/gemm.h"
#endif
#ifdef SPOOL_CUDA_EMULATED
#include "cuda/emulate/device.h"
#endif

using namespace spool;

namespace {

Device gpu() { return Device::cuda(0); }

#define REQUIRE_GPU()                                             \
  do {                                                            \
    std::string why_;                                             \
    if (!cuda_backend(&why_)) GTEST_SKIP() << "no GPU: " << why_; \
  } while (0)

// The same tensor on both devices.
struct Pair {
  Tensor c, g;
};

uint64_t g_seed = 1000;

Pair on_both(const Tensor& cpu) { return {cpu, to(cpu, gpu())}; }
Pair randn_pair(const Shape& s, DType dt = DType::f32) {
  Generator gen(++g_seed);
  return on_both(randn(s, dt, &gen));
}
Pair rand_pair(const Shape& s, double lo, double hi, DType dt = DType::f32) {
  Generator gen(++g_seed);
  return on_both(rand(s, dt, &gen, lo, hi));
}
Tensor random_ints(const Shape& s, int64_t lo, int64_t hi) {
  std::mt19937_64 rng(++g_seed);
  std::vector<int64_t> v(size_t(numel(s)));
  for (auto& x : v) x = lo + int64_t(rng() % uint64_t(hi - lo));
  return from_vector(v, s);
}
Pair ints_pair(const Shape& s, int64_t lo, int64_t hi) { return on_both(random_ints(s, lo, hi)); }
// The same view of both.
Pair view(const Pair& p, const std::function<Tensor(const Tensor&)>& f) { return {f(p.c), f(p.g)}; }
// An output on both devices: the GPU one poisoned (NaN, or -7777 for integers).
Pair out_pair(const Shape& s, DType dt = DType::f32) {
  return {empty(s, dt), full(s, is_float(dt) ? std::nan("") : -7777.0, dt, gpu())};
}
Tensor none() { return Tensor(); }

Backend& cpu_b() { return cpu_backend(); }
Backend& gpu_b() { return backend(gpu()); }

// ||gpu - cpu|| / ||cpu|| (exact equality for integers); NaN never passes.
double rel_err(const Pair& p) {
  const auto a = to(p.g, Device::cpu()).to_vector<double>();
  const auto b = p.c.to_vector<double>();
  EXPECT_EQ(a.size(), b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (std::isnan(a[i]) != std::isnan(b[i])) return std::numeric_limits<double>::infinity();
    if (std::isnan(a[i])) continue;
    if (std::isinf(a[i]) || std::isinf(b[i])) {
      if (a[i] != b[i]) return std::numeric_limits<double>::infinity();
      continue;
    }
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

#define EXPECT_CLOSE(pair, tol) EXPECT_LE(rel_err(pair), tol) << #pair

constexpr double kF32 = 1e-5;  // f32 without tensor cores, the bound

// On the emulated device (SPOOL_CUDA=EMULATE) every CUDA thread is a fiber on one core, so the
// largest shapes, which stand for real model sizes on a GPU, shrink there.
#ifdef SPOOL_CUDA_EMULATED
constexpr bool kEmulated = true;
#else
constexpr bool kEmulated = false;
#endif
// Under ThreadSanitizer (tools/emulate_check.sh tsan) every access of every CUDA thread is
// checked too, and the model-sized GEMM shrinks again: a race does not depend on the size (every
// block runs the same code), and the other cases keep the partial tiles and batches.
#if defined(__SANITIZE_THREAD__)
constexpr bool kThreadSanitizer = true;
#else
constexpr bool kThreadSanitizer = false;
#endif

}  // namespace

TEST(CudaRuntime, CopiesRoundTripAndTheAllocatorCountsExactBytes) {
  REQUIRE_GPU();
  const MemoryStats before = memory_stats(gpu());
  Pair x = randn_pair({1001, 7});
  const MemoryStats after = memory_stats(gpu());
  EXPECT_EQ(after.live_bytes - before.live_bytes, 1001 * 7 * 4);
  EXPECT_GE(after.reserved_bytes, after.live_bytes);
  EXPECT_EQ(to(x.g, Device::cpu()).to_vector<float>(), x.c.to_vector<float>());
  EXPECT_EQ(x.g.device(), gpu());
  EXPECT_NEAR(sum(x.g).item(), sum(x.c).item(), 1e-3);
  x = Pair{};
  EXPECT_EQ(memory_stats(gpu()).live_bytes, before.live_bytes);
  empty_cache(gpu());
  EXPECT_EQ(memory_stats(gpu()).reserved_bytes, memory_stats(gpu()).live_bytes);
}

TEST(CudaRuntime, MixingDevicesIsAClearError) {
  REQUIRE_GPU();
  Pair x = randn_pair({4});
  const std::string msg = test_support::error_of([&] { (void)add(x.c, x.g); });
  EXPECT_NE(msg.find("cuda:0"), std::string::npos) << msg;
}

TEST(CudaKernels, FillCopyArangeAndConversions) {
  REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::f64, DType::i32, DType::i64, DType::b8}) {
    Pair o = out_pair({3, 5}, dt);
    cpu_b().fill(o.c, 3);
    gpu_b().fill(o.g, 3);
    EXPECT_CLOSE(o, 0);
    const int64_t n = dt == DType::b8 ? 200 : 1003;  // b8 holds 0..255
    Pair a = out_pair({n}, dt);
    cpu_b().arange(a.c, 2, 1);
    gpu_b().arange(a.g, 2, 1);
    EXPECT_CLOSE(a, 0);
  }
  // In [0, 3): a float's conversion to b8 (uint8) is defined only within 0..255.
  Pair x = rand_pair({37, 53}, 0, 3);
  Pair xt = view(x, [](const Tensor& t) { return transpose(t, 0, 1); });
  for (DType dt : {DType::f32, DType::f64, DType::i32, DType::i64, DType::b8}) {
    Pair o = out_pair({53, 37}, dt);
    cpu_b().copy(xt.c, o.c);
    gpu_b().copy(xt.g, o.g);
    EXPECT_CLOSE(o, 0) << name(dt);
  }
}

TEST(CudaKernels, RandomStreamsMatchTheCpu) {
  REQUIRE_GPU();
  const RngState s{1234, 77};
  for (int64_t n : {1, 5, 1001}) {
    Pair u = out_pair({n});
    cpu_b().uniform(u.c, s, -2, 3);
    gpu_b().uniform(u.g, s, -2, 3);
    EXPECT_CLOSE(u, 0);
    Pair z = out_pair({n}, DType::f64);
    cpu_b().normal(z.c, s, 1, 2);
    gpu_b().normal(z.g, s, 1, 2);
    EXPECT_CLOSE(z, 1e-13);
  }
  // dropout through the op: the same mask on both devices for the same generator state
  Pair x = rand_pair({64, 33}, 0.5, 1.5);
  Generator g1(9), g2(9);
  Pair y{dropout(x.c, 0.3, true, &g1), dropout(x.g, 0.3, true, &g2)};
  EXPECT_CLOSE(y, 0);
}

TEST(CudaKernels, UnaryOpsOnContiguousAndStridedInputs) {
  REQUIRE_GPU();
  const UnaryOp ops[] = {UnaryOp::neg,         UnaryOp::exp,
                         UnaryOp::log,         UnaryOp::sqrt,
                         UnaryOp::abs,         UnaryOp::sign,
                         UnaryOp::tanh,        UnaryOp::sigmoid,
                         UnaryOp::log_sigmoid, UnaryOp::relu,
                         UnaryOp::gelu,        UnaryOp::gelu_tanh,
                         UnaryOp::gelu_grad,   UnaryOp::gelu_tanh_grad,
                         UnaryOp::pow_scalar,  UnaryOp::clamp,
                         UnaryOp::affine};
  Pair pos = rand_pair({257, 129}, 0.1, 3);
  Pair any = randn_pair({257, 129});
  for (UnaryOp op : ops) {
    const bool positive = op == UnaryOp::log || op == UnaryOp::sqrt || op == UnaryOp::pow_scalar;
    for (bool strided : {false, true}) {
      Pair x = positive ? pos : any;
      if (strided) x = view(x, [](const Tensor& t) { return transpose(t, 0, 1); });
      Pair o = out_pair(x.c.shape());
      const double a = op == UnaryOp::pow_scalar ? 1.7 : -0.5, b = 0.75;
      cpu_b().unary(op, x.c, o.c, a, b);
      gpu_b().unary(op, x.g, o.g, a, b);
      EXPECT_CLOSE(o, kF32) << "op " << int(op) << (strided ? " strided" : "");
    }
  }
  // f64 and an odd length (the vector path's tail)
  Pair x = randn_pair({1000003}, DType::f32);
  Pair o = out_pair({1000003});
  cpu_b().unary(UnaryOp::tanh, x.c, o.c, 0, 0);
  gpu_b().unary(UnaryOp::tanh, x.g, o.g, 0, 0);
  EXPECT_CLOSE(o, kF32);
  Pair xd = randn_pair({333}, DType::f64);
  Pair od = out_pair({333}, DType::f64);
  cpu_b().unary(UnaryOp::gelu, xd.c, od.c, 0, 0);
  gpu_b().unary(UnaryOp::gelu, xd.g, od.g, 0, 0);
  EXPECT_CLOSE(od, 1e-12);
}

TEST(CudaKernels, BinaryOpsBroadcastingAndWhere) {
  REQUIRE_GPU();
  const BinaryOp ops[] = {BinaryOp::add, BinaryOp::sub,     BinaryOp::mul,     BinaryOp::div,
                          BinaryOp::pow, BinaryOp::maximum, BinaryOp::minimum, BinaryOp::eq,
                          BinaryOp::ne,  BinaryOp::lt,      BinaryOp::le,      BinaryOp::gt,
                          BinaryOp::ge};
  Pair a = rand_pair({31, 1, 45}, 0.5, 2);
  Pair b = rand_pair({1, 17, 45}, 0.5, 2);
  const Shape s{31, 17, 45};
  Pair ab = view(a, [&](const Tensor& t) { return expand(t, s); });
  Pair bb = view(b, [&](const Tensor& t) { return expand(t, s); });
  for (BinaryOp op : ops) {
    Pair o = out_pair(s, is_comparison(op) ? DType::b8 : DType::f32);
    cpu_b().binary(op, ab.c, bb.c, o.c);
    gpu_b().binary(op, ab.g, bb.g, o.g);
    EXPECT_CLOSE(o, kF32) << "op " << int(op);
  }
  Pair ia = ints_pair({1000}, -50, 50), ib = ints_pair({1000}, -50, 50);
  for (BinaryOp op : {BinaryOp::add, BinaryOp::mul, BinaryOp::maximum, BinaryOp::lt}) {
    Pair o = out_pair({1000}, is_comparison(op) ? DType::b8 : DType::i64);
    cpu_b().binary(op, ia.c, ib.c, o.c);
    gpu_b().binary(op, ia.g, ib.g, o.g);
    EXPECT_CLOSE(o, 0);
  }
  // relu's backward (a where b > 0, else 0) with b of both signs, also written over a.
  {
    Pair g = randn_pair({64, 65}), yv = randn_pair({64, 65});
    Pair o = out_pair({64, 65});
    cpu_b().binary(BinaryOp::relu_grad, g.c, yv.c, o.c);
    gpu_b().binary(BinaryOp::relu_grad, g.g, yv.g, o.g);
    EXPECT_CLOSE(o, 0);
    cpu_b().binary(BinaryOp::relu_grad, g.c, yv.c, g.c);
    gpu_b().binary(BinaryOp::relu_grad, g.g, yv.g, g.g);
    EXPECT_CLOSE(g, 0);
  }
  Pair x = randn_pair({64, 65}), y = randn_pair({64, 65});
  Pair cond{gt(x.c, y.c), gt(x.g, y.g)};
  Pair w = out_pair({64, 65});
  cpu_b().where(cond.c, x.c, y.c, w.c);
  gpu_b().where(cond.g, x.g, y.g, w.g);
  EXPECT_CLOSE(w, 0);
}

TEST(CudaKernels, ReductionsOverAnyDimsAndArgmax) {
  REQUIRE_GPU();
  Pair x = randn_pair({7, 300, 9});
  const std::vector<std::vector<int64_t>> dim_sets = {{0}, {1}, {2}, {0, 2}, {0, 1, 2}, {1, 2}};
  for (const auto& dims : dim_sets) {
    Shape s = x.c.shape();
    for (int64_t d : dims) s[size_t(d)] = 1;
    for (ReduceOp op : {ReduceOp::sum, ReduceOp::max, ReduceOp::min}) {
      Pair o = out_pair(s);
      cpu_b().reduce(op, x.c, dims, o.c);
      gpu_b().reduce(op, x.g, dims, o.g);
      EXPECT_CLOSE(o, kF32) << "op " << int(op) << " over " << dims.size() << " dims";
    }
  }
  Pair xt = view(x, [](const Tensor& t) { return transpose(t, 0, 2); });  // [9, 300, 7]
  Pair o = out_pair({9, 1, 7});
  cpu_b().reduce(ReduceOp::sum, xt.c, {1}, o.c);
  gpu_b().reduce(ReduceOp::sum, xt.g, {1}, o.g);
  EXPECT_CLOSE(o, kF32);
  Pair xi = ints_pair({40, 1000}, -1000, 1000);
  Pair oi = out_pair({1, 1000}, DType::i64);
  cpu_b().reduce(ReduceOp::sum, xi.c, {0}, oi.c);
  gpu_b().reduce(ReduceOp::sum, xi.g, {0}, oi.g);
  EXPECT_CLOSE(oi, 0);
  Pair am = out_pair({7, 1, 9}, DType::i64);
  cpu_b().argmax(x.c, 1, am.c);
  gpu_b().argmax(x.g, 1, am.g);
  EXPECT_CLOSE(am, 0);
}

TEST(CudaKernels, SoftmaxAndLogSoftmaxForwardAndBackward) {
  REQUIRE_GPU();
  for (const Shape& s : {Shape{33, 1001}, Shape{4, 50257}, Shape{5, 17, 3}}) {
    for (int64_t dim : {int64_t(1), int64_t(s.size()) - 1}) {
      for (bool log : {false, true}) {
        Pair x = randn_pair(s), gy = randn_pair(s);
        Pair y = out_pair(s);
        cpu_b().softmax(x.c, dim, log, y.c);
        gpu_b().softmax(x.g, dim, log, y.g);
        EXPECT_CLOSE(y, kF32);
        Pair gx = out_pair(s);
        cpu_b().softmax_backward(y.c, gy.c, dim, log, gx.c);
        gpu_b().softmax_backward(y.g, gy.g, dim, log, gx.g);
        EXPECT_CLOSE(gx, kF32);
      }
    }
  }
}

TEST(CudaKernels, LayerNormForwardAndBackward) {
  REQUIRE_GPU();
  for (int64_t d : {1, 33, 256, 768, 1537}) {
    for (bool affine : {true, false}) {
      const int64_t rows = 129;
      Pair x = randn_pair({rows, d}), gy = randn_pair({rows, d});
      Pair w = affine ? randn_pair({d}) : Pair{}, b = affine ? randn_pair({d}) : Pair{};
      Pair y = out_pair({rows, d}), mean = out_pair({rows}), rstd = out_pair({rows});
      cpu_b().layer_norm(x.c, w.c, b.c, 1e-5, y.c, mean.c, rstd.c);
      gpu_b().layer_norm(x.g, w.g, b.g, 1e-5, y.g, mean.g, rstd.g);
      EXPECT_CLOSE(y, kF32);
      EXPECT_CLOSE(mean, kF32);
      EXPECT_CLOSE(rstd, kF32);
      Pair gx = out_pair({rows, d});
      Pair gw = affine ? out_pair({d}) : Pair{}, gb = affine ? out_pair({d}) : Pair{};
      cpu_b().layer_norm_backward(x.c, w.c, mean.c, rstd.c, gy.c, gx.c, gw.c, gb.c);
      gpu_b().layer_norm_backward(x.g, w.g, mean.g, rstd.g, gy.g, gx.g, gw.g, gb.g);
      EXPECT_CLOSE(gx, kF32) << "d " << d;
      if (affine) {
        EXPECT_CLOSE(gw, kF32);
        EXPECT_CLOSE(gb, kF32);
      }
    }
  }
}

TEST(CudaKernels, BatchNormStatisticsApplyAndBackward) {
  REQUIRE_GPU();
  for (const Shape& s : {Shape{4, 64, 28, 28}, Shape{3, 5, 7}, Shape{2, 8, 3, 5, 5}}) {
    const int64_t c = s[1];
    Pair x = randn_pair(s), gy = randn_pair(s), w = randn_pair({c}), b = randn_pair({c});
    Pair mean = out_pair({c}), var = out_pair({c});
    cpu_b().batch_norm_stats(x.c, mean.c, var.c);
    gpu_b().batch_norm_stats(x.g, mean.g, var.g);
    EXPECT_CLOSE(mean, kF32);
    EXPECT_CLOSE(var, kF32);
    std::vector<float> inv;
    for (float vv : var.c.to_vector<float>()) inv.push_back(1.0f / std::sqrt(vv + 1e-5f));
    Pair invstd = on_both(from_vector(inv, {c}));
    Pair mc{mean.c, to(mean.c, gpu())};
    Pair y = out_pair(s);
    cpu_b().batch_norm_apply(x.c, mc.c, invstd.c, w.c, b.c, y.c);
    gpu_b().batch_norm_apply(x.g, mc.g, invstd.g, w.g, b.g, y.g);
    EXPECT_CLOSE(y, kF32);
    for (bool batch_stats : {true, false}) {
      Pair gx = out_pair(s), gw = out_pair({c}), gb = out_pair({c});
      cpu_b().batch_norm_backward(x.c, gy.c, mc.c, invstd.c, w.c, batch_stats, gx.c, gw.c, gb.c);
      gpu_b().batch_norm_backward(x.g, gy.g, mc.g, invstd.g, w.g, batch_stats, gx.g, gw.g, gb.g);
      EXPECT_CLOSE(gx, kF32);
      EXPECT_CLOSE(gw, kF32);
      EXPECT_CLOSE(gb, kF32);
    }
  }
}

namespace {
void check_matmuls(double tol) {
  struct Case {
    int64_t batch, m, k, n;
    bool ta, tb, broadcast_b;
  };
  const Case cases[] = {{1, 1, 1, 1, false, false, false},
                        {1, 67, 129, 33, false, false, false},
                        {3, 64, 64, 64, true, false, false},
                        {2, 100, 37, 250, false, true, false},
                        {5, 17, 300, 9, true, true, true},
                        {1, 1, 777, 513, false, false, false},
                        kThreadSanitizer ? Case{1, 256, 96, 320, false, false, false}
                                         : Case{1, 2048, 768, 2304, false, false, false}};
  for (const Case& c : cases) {
    Pair a = c.ta ? view(randn_pair({c.batch, c.k, c.m}),
                         [](const Tensor& t) { return transpose(t, 1, 2); })
                  : randn_pair({c.batch, c.m, c.k});
    Pair b = c.broadcast_b ? view(randn_pair({1, c.k, c.n}),
                                  [&](const Tensor& t) {
                                    return expand(t, {c.batch, c.k, c.n});
                                  })
                           : randn_pair({c.batch, c.k, c.n});
    if (c.tb && !c.broadcast_b)
      b = view(randn_pair({c.batch, c.n, c.k}), [](const Tensor& t) { return transpose(t, 1, 2); });
    Pair o = out_pair({c.batch, c.m, c.n});
    cpu_b().matmul(a.c, b.c, o.c);
    gpu_b().matmul(a.g, b.g, o.g);
    EXPECT_CLOSE(o, tol) << c.batch << "x" << c.m << "x" << c.k << "x" << c.n;
  }
  Pair a = randn_pair({2, 45, 67}, DType::f64), b = randn_pair({2, 67, 23}, DType::f64);
  Pair o = out_pair({2, 45, 23}, DType::f64);
  cpu_b().matmul(a.c, b.c, o.c);
  gpu_b().matmul(a.g, b.g, o.g);
  EXPECT_CLOSE(o, 1e-12);
}
}  // namespace

TEST(CudaKernels, MatmulThroughCublas) {
  REQUIRE_GPU();
  check_matmuls(kF32);
}

#ifdef SPOOL_HAVE_CUDA
TEST(CudaKernels, MatmulThroughTheTiledSgemm) {
  REQUIRE_GPU();
  cuda::set_gemm(cuda::Gemm::tiled);
  check_matmuls(kF32);
  cuda::set_gemm(cuda::Gemm::cublas);
}
#endif

TEST(CudaKernels, ConvolutionForwardAndBackward) {
  REQUIRE_GPU();
  struct Case {
    Shape x, w;
    std::vector<int64_t> stride, pad, dil;
    int64_t groups;
  };
  const Case cases[] = {{{2, 3, 17, 19}, {8, 3, 3, 3}, {1, 1}, {1, 1}, {1, 1}, 1},
                        {{3, 8, 28, 28}, {16, 8, 7, 7}, {2, 2}, {3, 3}, {1, 1}, 1},
                        {{2, 6, 11, 13}, {6, 2, 3, 3}, {2, 1}, {1, 0}, {2, 1}, 3},
                        {{2, 4, 9}, {5, 4, 4}, {2}, {1}, {1}, 1},
                        {{2, 3, 5, 12, 12}, {4, 3, 3, 3, 3}, {1, 2, 2}, {1, 1, 1}, {1, 1, 1}, 1},
                        {{1, 64, 14, 14}, {128, 64, 1, 1}, {2, 2}, {0, 0}, {1, 1}, 1}};
  for (const Case& c : cases) {
    WindowParams p;
    for (size_t d = 0; d + 2 < c.x.size(); ++d) p.kernel.push_back(c.w[d + 2]);
    p.stride = c.stride;
    p.padding = c.pad;
    p.dilation = c.dil;
    p.groups = c.groups;
    Shape ys{c.x[0], c.w[0]};
    for (size_t d = 0; d + 2 < c.x.size(); ++d) ys.push_back(p.out_size(d, c.x[d + 2]));
    Pair x = randn_pair(c.x), w = randn_pair(c.w), gy = randn_pair(ys);
    Pair y = out_pair(ys);
    cpu_b().conv(x.c, w.c, p, y.c);
    gpu_b().conv(x.g, w.g, p, y.g);
    EXPECT_CLOSE(y, kF32) << str(c.x);
    Pair gx = out_pair(c.x), gw = out_pair(c.w);
    cpu_b().conv_backward_input(gy.c, w.c, p, gx.c);
    gpu_b().conv_backward_input(gy.g, w.g, p, gx.g);
    EXPECT_CLOSE(gx, kF32) << str(c.x);
    cpu_b().conv_backward_weight(gy.c, x.c, p, gw.c);
    gpu_b().conv_backward_weight(gy.g, x.g, p, gw.g);
    EXPECT_CLOSE(gw, kF32) << str(c.x);
  }
}

TEST(CudaKernels, PoolingForwardAndBackward) {
  REQUIRE_GPU();
  struct Case {
    Shape x;
    std::vector<int64_t> k, s, p;
    bool ceil, include_pad;
  };
  const Case cases[] = {{{2, 3, 112, 112}, {3, 3}, {2, 2}, {1, 1}, false, true},
                        {{2, 5, 13, 11}, {2, 3}, {2, 2}, {1, 1}, true, false},
                        {{1, 4, 8, 9, 9}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, false, true},
                        {{3, 2, 17}, {4}, {3}, {2}, true, true}};
  for (const Case& c : cases) {
    WindowParams p;
    p.kernel = c.k;
    p.stride = c.s;
    p.padding = c.p;
    p.dilation.assign(c.k.size(), 1);
    p.ceil_mode = c.ceil;
    p.count_include_pad = c.include_pad;
    Shape ys{c.x[0], c.x[1]};
    for (size_t d = 0; d + 2 < c.x.size(); ++d) ys.push_back(p.out_size(d, c.x[d + 2]));
    Pair x = randn_pair(c.x), gy = randn_pair(ys);
    Pair y = out_pair(ys), idx = out_pair(ys, DType::i64);
    cpu_b().max_pool(x.c, p, y.c, idx.c);
    gpu_b().max_pool(x.g, p, y.g, idx.g);
    EXPECT_CLOSE(y, 0);
    EXPECT_CLOSE(idx, 0);
    Pair gx = out_pair(c.x);
    cpu_b().max_pool_backward(gy.c, idx.c, p, gx.c);
    gpu_b().max_pool_backward(gy.g, idx.g, p, gx.g);
    EXPECT_CLOSE(gx, 0);
    Pair ya = out_pair(ys);
    cpu_b().avg_pool(x.c, p, ya.c);
    gpu_b().avg_pool(x.g, p, ya.g);
    EXPECT_CLOSE(ya, kF32);
    Pair gxa = out_pair(c.x);
    cpu_b().avg_pool_backward(gy.c, p, gxa.c);
    gpu_b().avg_pool_backward(gy.g, p, gxa.g);
    EXPECT_CLOSE(gxa, kF32);
  }
}

TEST(CudaKernels, FlashAttentionForwardAndBackward) {
  REQUIRE_GPU();
  struct Case {
    int64_t b, h, t, d;
    bool causal, packed;
    double dropout;
  };
  const Case cases[] = {
      {2, 3, 100, 64, true, false, 0},
      {1, 2, 257, 40, false, false, 0},
      {2, 2, 130, 32, true, true, 0},
      {1, 1, 77, 128, true, false, 0.2},
      {2, 4, 64, 16, false, true, 0.1},
      kEmulated ? Case{1, 2, 320, 64, true, false, 0} : Case{1, 12, 1024, 64, true, false, 0}};
  for (const Case& c : cases) {
    const Shape s{c.b, c.h, c.t, c.d};
    Pair q = randn_pair(s), k = randn_pair(s), v = randn_pair(s), gout = randn_pair(s);
    Pair seg;
    if (c.packed) {  // documents of lengths 1, 37, 20 and the rest in every row
      std::vector<int64_t> starts;
      for (int64_t b = 0; b < c.b; ++b)
        for (int64_t i = 0; i < c.t; ++i)
          starts.push_back(i < 1 ? 0 : i < 38 ? 1 : i < 58 ? 38 : 58);
      seg = on_both(from_vector(starts, {c.b, c.t}));
    }
    AttentionParams p;
    p.causal = c.causal;
    p.scale = 1 / std::sqrt(double(c.d));
    p.dropout_p = c.dropout;
    p.rng = {42, 7};
    Pair out = out_pair(s), lse = out_pair({c.b, c.h, c.t});
    cpu_b().attention(q.c, k.c, v.c, seg.c, p, out.c, lse.c);
    gpu_b().attention(q.g, k.g, v.g, seg.g, p, out.g, lse.g);
    EXPECT_CLOSE(out, kF32) << "T " << c.t << " D " << c.d;
    EXPECT_CLOSE(lse, kF32);
    Pair gq = out_pair(s), gk = out_pair(s), gv = out_pair(s);
    cpu_b().attention_backward(q.c, k.c, v.c, seg.c, p, out.c, lse.c, gout.c, gq.c, gk.c, gv.c);
    gpu_b().attention_backward(q.g, k.g, v.g, seg.g, p, out.g, lse.g, gout.g, gq.g, gk.g, gv.g);
    EXPECT_CLOSE(gq, kF32) << "T " << c.t << " D " << c.d;
    EXPECT_CLOSE(gk, kF32);
    EXPECT_CLOSE(gv, kF32);
  }
}

// A NaN score (here key 0 of every row) makes the rows that see it NaN, as on the CPU. Lanes of
// a warp must agree on the row maximum, or some skip a row whose shuffles the others enter.
TEST(CudaKernels, FlashAttentionPropagatesANaNScoreLikeTheCpu) {
  REQUIRE_GPU();
  const Shape s{1, 1, 40, 32};
  Generator gen(77);
  Tensor kc = randn(s, DType::f32, &gen);
  kc.data<float>()[0] = std::nanf("");
  Pair q = randn_pair(s), k = on_both(kc), v = randn_pair(s);
  for (bool causal : {true, false}) {
    AttentionParams p;
    p.causal = causal;
    p.scale = 1 / std::sqrt(32.0);
    Pair out = out_pair(s), lse = out_pair({1, 1, 40});
    cpu_b().attention(q.c, k.c, v.c, Tensor(), p, out.c, lse.c);
    gpu_b().attention(q.g, k.g, v.g, Tensor(), p, out.g, lse.g);
    EXPECT_CLOSE(out, kF32) << (causal ? "causal" : "full");
    EXPECT_CLOSE(lse, kF32) << (causal ? "causal" : "full");
  }
}

// Rows whose many small terms each fall below half an ulp of a float partial sum: summed in
// float they vanish, in double (as on the CPU) they count.
TEST(CudaKernels, SoftmaxRowsSumInDoubleLikeTheCpu) {
  REQUIRE_GPU();
  const int64_t n = 256 * 1000;
  std::vector<float> row(size_t(n), -17.3f);
  for (int64_t i = 0; i < 256; ++i) row[size_t(i)] = 0;  // one large term per thread's partial
  Pair x = on_both(from_vector(row, {1, n}));
  for (bool log : {false, true}) {
    Pair y = out_pair({1, n});
    cpu_b().softmax(x.c, 1, log, y.c);
    gpu_b().softmax(x.g, 1, log, y.g);
    EXPECT_CLOSE(y, kF32) << (log ? "log_softmax" : "softmax");
  }
}

#ifdef SPOOL_CUDA_EMULATED
// Scratch memory that fails to grow must not hand out the buffer it freed on the next, smaller
// request (the convolution's column buffer comes from it).
// A 3 x 3 convolution, stride 1, padding 1 (the scratch tests' column buffers).
WindowParams same_3x3() {
  WindowParams p;
  p.kernel = {3, 3};
  p.stride = {1, 1};
  p.padding = {1, 1};
  p.dilation = {1, 1};
  return p;
}

// The fused softmax + cross-entropy, forward and backward, with ignored targets and label
// smoothing, over a gpt2-sized vocabulary row too; a NaN logit gives the CPU's NaN loss.
TEST(CudaKernels, CrossEntropyForwardAndBackward) {
  REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::f64}) {
    for (const Shape& s : {Shape{37, 11}, Shape{3, 50257}, Shape{300, 1}}) {
      for (double smoothing : {0.0, 0.1}) {
        const int64_t rows = s[0], n = s[1];
        Tensor t = random_ints({rows}, 0, n);
        auto tv = t.to_vector<int64_t>();
        for (size_t i = 0; i < tv.size(); i += 3) tv[i] = -100;  // every third ignored
        Pair tg = on_both(from_vector(tv, {rows}));
        Pair x = randn_pair(s, dt), g = randn_pair({rows}, dt);
        Pair loss = out_pair({rows}, dt), lse = out_pair({rows}, dt);
        cpu_b().cross_entropy(x.c, tg.c, -100, smoothing, loss.c, lse.c);
        gpu_b().cross_entropy(x.g, tg.g, -100, smoothing, loss.g, lse.g);
        EXPECT_CLOSE(lse, kF32) << str(s) << " " << smoothing;
        Pair gx = out_pair(s, dt);
        cpu_b().cross_entropy_backward(x.c, tg.c, lse.c, g.c, -100, smoothing, gx.c);
        gpu_b().cross_entropy_backward(x.g, tg.g, lse.g, g.g, -100, smoothing, gx.g);
        if (n > 1) {
          EXPECT_CLOSE(loss, kF32) << str(s) << " " << smoothing;
          EXPECT_CLOSE(gx, kF32) << str(s) << " " << smoothing;
        } else {
          // One class: the loss and the gradient are 0 in exact arithmetic, so both devices hold
          // rounding noise of a value near 1 (1 - eps - (1 - eps)); compare with an absolute floor.
          for (const Pair* p : {&loss, &gx}) {
            for (double v : to(p->g, Device::cpu()).to_vector<double>())
              EXPECT_LE(std::abs(v), 1e-6);
            for (double v : p->c.to_vector<double>()) EXPECT_LE(std::abs(v), 1e-6);
          }
        }
      }
    }
  }
  std::vector<float> v(40, 0.5f);
  v[7] = std::nanf("");
  Pair x = on_both(from_vector(v, {4, 10}));
  Pair tg = on_both(from_vector(std::vector<int64_t>{1, 2, 3, 4}, {4}));
  Pair loss = out_pair({4}), lse = out_pair({4});
  cpu_b().cross_entropy(x.c, tg.c, -100, 0, loss.c, lse.c);
  gpu_b().cross_entropy(x.g, tg.g, -100, 0, loss.g, lse.g);
  EXPECT_TRUE(std::isnan(loss.c.to_vector<double>()[0]));
  EXPECT_CLOSE(loss, kF32);  // NaN where the CPU has NaN, equal elsewhere
}

TEST(CudaKernels, TemporalShiftBothModesBothWays) {
  REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::f64}) {
    for (const Shape& s : {Shape{8, 24, 3, 5}, Shape{6, 17, 2, 2, 3}, Shape{3, 8}}) {
      for (bool online : {false, true}) {
        for (bool reverse : {false, true}) {
          Pair x = randn_pair(s, dt), y = out_pair(s, dt);
          const int64_t segments = s[0] == 3 ? 3 : 2, fold = s[1] / 8;
          cpu_b().temporal_shift(x.c, segments, fold, online, reverse, y.c);
          gpu_b().temporal_shift(x.g, segments, fold, online, reverse, y.g);
          EXPECT_EQ(to(y.g, Device::cpu()).to_vector<double>(), y.c.to_vector<double>())
              << str(s) << " online " << online << " reverse " << reverse;
        }
      }
    }
  }
}

// RoIAlign forward and backward (atomicAdd where regions overlap) against the CPU's, f32 and
// f64, fixed and adaptive sampling, regions across the border.
TEST(CudaKernels, RoiAlignForwardAndBackward) {
  REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::f64})
    for (int64_t sampling : {int64_t(2), int64_t(0)}) {
      Pair x = randn_pair({2, 5, 9, 13}, dt);
      const Pair rois =
          on_both(to(from_vector(std::vector<double>{0, 1,   1,   8,   6,   1, -2, 3, 14, 10,
                                                     1, 4.2, 4.1, 4.6, 4.4, 0, 0,  0, 13, 9},
                                 {4, 5}),
                     dt));
      RoiAlignParams p;
      p.out_h = 3;
      p.out_w = 4;
      p.sampling_ratio = sampling;
      p.spatial_scale = 0.8;
      Pair y = out_pair({4, 5, 3, 4}, dt);
      cpu_b().roi_align(x.c, rois.c, p, y.c);
      gpu_b().roi_align(x.g, rois.g, p, y.g);
      EXPECT_LE(rel_err(y), dt == DType::f32 ? 1e-6 : 1e-12) << "roi_align " << sampling;
      Pair g = randn_pair({4, 5, 3, 4}, dt);
      Pair gx = on_both(zeros({2, 5, 9, 13}, dt));
      cpu_b().roi_align_backward(g.c, rois.c, p, gx.c);
      gpu_b().roi_align_backward(g.g, rois.g, p, gx.g);
      EXPECT_LE(rel_err(gx), dt == DType::f32 ? kF32 : 1e-12) << "roi_align_backward " << sampling;
    }
}

// bf16 rounding is engine/bf16.h's arithmetic on both devices: the same bits, NaN and infinities
// included; autocast's matmul and its gradients on the device match the CPU's.
TEST(CudaKernels, Bf16ConversionsAndAutocastMatmul) {
  REQUIRE_GPU();
  std::vector<float> v = {1.0f,
                          1.00390625f,
                          1.01171875f,
                          -3.14159265f,
                          3.4e38f,
                          1e-40f,
                          std::numeric_limits<float>::infinity(),
                          std::nanf("")};
  Generator gen(++g_seed);
  for (float r : randn({1000}, DType::f32, &gen).to_vector<float>()) v.push_back(r);
  Pair x = on_both(from_vector(v, {int64_t(v.size())}));
  const Tensor hc = to(x.c, DType::bf16), hg = to(x.g, DType::bf16);
  const auto bc = to(hc, DType::f32).to_vector<float>();
  const auto bg = to(to(hg, DType::f32), Device::cpu()).to_vector<float>();
  ASSERT_EQ(bc.size(), bg.size());
  for (size_t i = 0; i < bc.size(); ++i) {
    uint32_t ub, uc;
    std::memcpy(&ub, &bg[i], 4);
    std::memcpy(&uc, &bc[i], 4);
    EXPECT_EQ(ub, uc) << i << ": " << v[i];
  }
  for (const auto& [m, k, n] : {std::array<int64_t, 3>{33, 70, 17}, {128, 256, 96}}) {
    Pair a = randn_pair({m, k}), w = randn_pair({n, k}), g = randn_pair({m, n});
    Tensor ac = a.c.detach().requires_grad_(), ag = a.g.detach().requires_grad_();
    Tensor wc = w.c.detach().requires_grad_(), wg = w.g.detach().requires_grad_();
    Pair y;
    {
      Autocast on;
      y = {linear(ac, wc), linear(ag, wg)};
      backward(y.c, g.c);
      backward(y.g, g.g);
    }
    EXPECT_CLOSE(y, kF32);
    EXPECT_CLOSE((Pair{ac.grad(), ag.grad()}), kF32);
    EXPECT_CLOSE((Pair{wc.grad(), wg.grad()}), kF32);
  }
}

TEST(CudaKernels, AutocastConvolutionAndAttentionMatchTheCpu) {
  REQUIRE_GPU();
  Pair x = randn_pair({2, 3, 11, 10}), w = randn_pair({5, 3, 3, 3}),
       gy = randn_pair({2, 5, 11, 10});
  Pair q = randn_pair({1, 2, 37, 32}), k = randn_pair({1, 2, 37, 32}),
       v = randn_pair({1, 2, 37, 32});
  Pair go = randn_pair({1, 2, 37, 32});
  auto grads = [](const Pair& p) {
    return Pair{p.c.detach().requires_grad_(), p.g.detach().requires_grad_()};
  };
  Pair xg = grads(x), wg = grads(w), qg = grads(q), kg = grads(k), vg = grads(v);
  Pair y, o;
  {
    Autocast on;
    y = {conv(xg.c, wg.c, {}, {.padding = {1}}), conv(xg.g, wg.g, {}, {.padding = {1}})};
    o = {flash_attention(qg.c, kg.c, vg.c), flash_attention(qg.g, kg.g, vg.g)};
    backward(y.c, gy.c);
    backward(y.g, gy.g);
    backward(o.c, go.c);
    backward(o.g, go.g);
  }
  EXPECT_CLOSE(y, kF32);
  EXPECT_CLOSE(o, kF32);
  for (const Pair* p : {&xg, &wg, &qg, &kg, &vg})
    EXPECT_CLOSE((Pair{p->c.grad(), p->g.grad()}), kF32);
}

TEST(CudaKernels, ScratchStaysUsableAfterAFailedGrowth) {
  REQUIRE_GPU();
  const WindowParams p = same_3x3();
  Pair x = randn_pair({1, 2, 8, 8}), w = randn_pair({3, 2, 3, 3});
  Pair y = out_pair({1, 3, 8, 8});
  gpu_b().conv(x.g, w.g, p, y.g);  // scratch holds a small column buffer
  // A 604 MB column buffer: more than any earlier test (the model steps included) left in
  // scratch, so it must grow (it is never allocated: the limit refuses it).
  Pair big = randn_pair({1, 64, 512, 512}), bw = randn_pair({3, 64, 3, 3});
  Pair by = out_pair({1, 3, 512, 512});
  spool::emu::set_memory_limit(spool::emu::memory_in_use() + (1 << 20));  // too little for it
  const std::string msg = test_support::error_of([&] { gpu_b().conv(big.g, bw.g, p, by.g); });
  spool::emu::set_memory_limit(SIZE_MAX);
  EXPECT_NE(msg.find("cudaMalloc"), std::string::npos) << msg;
  cpu_b().conv(x.c, w.c, p, y.c);
  gpu_b().conv(x.g, w.g, p, y.g);
  EXPECT_CLOSE(y, kF32);
}

// A tensor allocation that runs out of memory frees the scratch buffer before it gives up: a
// large column buffer left by one convolution must not make the next tensor fail.
TEST(CudaKernels, AnAllocationThatRunsOutFreesScratchFirst) {
  REQUIRE_GPU();
  const WindowParams p = same_3x3();
  Pair x = randn_pair({1, 16, 128, 128}), w = randn_pair({3, 16, 3, 3});
  Pair y = out_pair({1, 3, 128, 128});
  gpu_b().conv(x.g, w.g, p, y.g);  // 16 * 9 * 128^2 floats of columns: 9.4 MB and more
  const size_t held = cuda::scratch_bytes();
  ASSERT_GT(held, size_t(8) << 20);
  empty_cache(gpu());
  // Room for 1 MiB more than now: a tensor of half the scratch fits only once scratch is gone.
  spool::emu::set_memory_limit(spool::emu::memory_in_use() + (1 << 20));
  std::string msg;
  try {
    Tensor t = empty({int64_t(held / 8)}, DType::f32, gpu());
  } catch (const Error& e) {
    msg = e.what();
  }
  spool::emu::set_memory_limit(SIZE_MAX);
  EXPECT_EQ(msg, "");
  EXPECT_EQ(cuda::scratch_bytes(), 0u);
  cpu_b().conv(x.c, w.c, p, y.c);
  gpu_b().conv(x.g, w.g, p, y.g);  // and scratch grows again when it is needed
  EXPECT_CLOSE(y, kF32);
}

// cuBLAS takes int sizes: a batch count or leading dimension past 2^31 - 1 is refused by name
// before cuBLAS sees it (the pointers are never read).
TEST(CudaKernels, GemmSizesBeyondCublasIntsAreRefusedNotNarrowed) {
  REQUIRE_GPU();
  cuda::GemmArgs<float> g;
  g.m = g.n = g.k = 1;
  g.a_row = g.b_row = g.c_row = 1;
  g.a_col = g.b_col = 1;
  g.batch = int64_t(1) << 31;
  g.batch_a = g.batch_b = g.batch_c = 1;
  EXPECT_THAT(test_support::error_of([&] { cuda::gemm_strided(g); }),
              ::testing::HasSubstr("batch = 2147483648 does not fit"));
  g.batch = 1;
  g.m = 2;
  g.a_row = int64_t(1) << 31;  // rows of A 2^31 elements apart: lda would wrap negative
  EXPECT_THAT(test_support::error_of([&] { cuda::gemm_strided(g); }),
              ::testing::HasSubstr("lda = 2147483648"));
}
#endif

TEST(CudaKernels, AdamStepAndIndexing) {
  REQUIRE_GPU();
  Pair p = randn_pair({1001}), g = randn_pair({1001}), m = randn_pair({1001});
  Pair v = rand_pair({1001}, 0, 1);
  const AdamParams a{1e-3, 0.9, 0.999, 1e-8, 0.01, true, 0.1, 0.001};
  cpu_b().adam_step(p.c, g.c, m.c, v.c, a);
  gpu_b().adam_step(p.g, g.g, m.g, v.g, a);
  EXPECT_CLOSE(p, kF32);
  EXPECT_CLOSE(m, kF32);
  EXPECT_CLOSE(v, kF32);

  Pair table = randn_pair({50, 33}), idx = ints_pair({200}, 0, 50);
  Pair sel = out_pair({200, 33});
  cpu_b().index_select(table.c, 0, idx.c, sel.c);
  gpu_b().index_select(table.g, 0, idx.g, sel.g);
  EXPECT_CLOSE(sel, 0);
  Pair acc{zeros({50, 33}), zeros({50, 33}, DType::f32, gpu())}, src = randn_pair({200, 33});
  cpu_b().index_add(acc.c, 0, idx.c, src.c);
  gpu_b().index_add(acc.g, 0, idx.g, src.g);
  EXPECT_CLOSE(acc, kF32);

  Pair x = randn_pair({13, 40}), gi = ints_pair({13, 5}, 0, 40);
  Pair ga = out_pair({13, 5});
  cpu_b().gather(x.c, 1, gi.c, ga.c);
  gpu_b().gather(x.g, 1, gi.g, ga.g);
  EXPECT_CLOSE(ga, 0);
  Pair sc{zeros({13, 40}), zeros({13, 40}, DType::f32, gpu())}, ss = randn_pair({13, 5});
  cpu_b().scatter_add(sc.c, 1, gi.c, ss.c);
  gpu_b().scatter_add(sc.g, 1, gi.g, ss.g);
  EXPECT_CLOSE(sc, kF32);
}

namespace {
// Loss and every parameter gradient of one step of `model` on both devices.
template <class Model, class Step>
void compare_step(Model& cpu_model, Model& gpu_model, Step step, double tol) {
  const Tensor loss_c = step(cpu_model, Device::cpu());
  backward(loss_c);
  const Tensor loss_g = step(gpu_model, gpu());
  backward(loss_g);
  EXPECT_NEAR(loss_g.item(), loss_c.item(), tol * std::abs(loss_c.item()));
  const auto pc = cpu_model.named_parameters(), pg = gpu_model.named_parameters();
  ASSERT_EQ(pc.size(), pg.size());
  for (size_t i = 0; i < pc.size(); ++i) {
    ASSERT_TRUE(pg[i].second.grad().defined()) << pg[i].first;
    EXPECT_EQ(pg[i].second.device(), gpu());
    Pair grads{pc[i].second.grad(), pg[i].second.grad()};
    EXPECT_LE(rel_err(grads), tol) << pc[i].first;
  }
}
}  // namespace

TEST(CudaModels, GptTinyTrainingStepMatchesTheCpu) {
  REQUIRE_GPU();
  Generator g1(5), g2(5);
  models::Gpt cpu_model(models::gpt_tiny(), &g1), gpu_model(models::gpt_tiny(), &g2);
  gpu_model.to(gpu());
  const Tensor idx = random_ints({4, 256}, 0, 256), targets = random_ints({4, 256}, 0, 256);
  compare_step(
      cpu_model, gpu_model,
      [&](models::Gpt& m, Device d) {
        const Tensor logits = m.forward(to(idx, d));
        return cross_entropy(reshape(logits, {-1, 256}), reshape(to(targets, d), {-1}));
      },
      1e-4);
}

TEST(CudaModels, ResNet18TrainingStepMatchesTheCpu) {
  REQUIRE_GPU();
  Generator g1(6), g2(6);
  models::ResNet cpu_model({}, &g1), gpu_model({}, &g2);
  gpu_model.to(gpu());
  Generator data(12);
  const Tensor x = randn({4, 3, 64, 64}, DType::f32, &data);
  const Tensor labels = random_ints({4}, 0, 10);
  compare_step(
      cpu_model, gpu_model,
      [&](models::ResNet& m, Device d) {
        return cross_entropy(m.forward(to(x, d)), to(labels, d));
      },
      1e-4);
  // BatchNorm's running statistics moved the same way
  const auto bc = cpu_model.named_buffers(), bg = gpu_model.named_buffers();
  for (size_t i = 0; i < bc.size(); ++i) {
    Pair b{bc[i].second, bg[i].second};
    EXPECT_LE(rel_err(b), 1e-4) << bc[i].first;
  }
}
