// The CPU backend's paths (ops/cpu/paths.h), each held in f32 to an f64 reference (the spool /
// OpenBLAS path in f64, which the gradchecks hold to finite differences):
// - convolution: spool's im2col + GEMM and oneDNN's blocked direct convolutions, on the forward
//   pass and both gradients, over the geometries the models use and the corners (groups,
//   depthwise, dilation, strides that drop a row, 1, 2 and 3 spatial dims, the 3-channel stem);
// - matmul: OpenBLAS's sgemm and oneDNN's sgemm, with transposed, batched, broadcast and
//   degenerate operands, forward and both gradients;
// - flash attention, whose tile products take the same GEMM path: forward and the three
//   gradients against naive attention in f64, causal and over packed documents.
#include <gtest/gtest.h>

#include <string>

#include "engine/autograd.h"
#include "engine/factory.h"
#include "ops/attention.h"
#include "ops/conv.h"
#include "ops/cpu/paths.h"
#include "ops/ops.h"
#include "tests/support/helpers.h"

namespace spool {
namespace {

using cpu::Conv;
using cpu::Gemm;

// Selects a path for one scope and puts the previous one back.
class ConvPathScope {
 public:
  explicit ConvPathScope(Conv c) : saved_(cpu::conv_path()) { cpu::set_conv(c); }
  ~ConvPathScope() { cpu::set_conv(saved_); }

 private:
  Conv saved_;
};
class GemmPathScope {
 public:
  explicit GemmPathScope(Gemm g) : saved_(cpu::gemm_path()) { cpu::set_gemm(g); }
  ~GemmPathScope() { cpu::set_gemm(saved_); }

 private:
  Gemm saved_;
};

struct Case {
  const char* name;
  Shape x, w;
  ConvOptions o;
};

std::vector<Case> cases() {
  auto opt = [](std::vector<int64_t> s, std::vector<int64_t> p, std::vector<int64_t> d, int64_t g) {
    ConvOptions o;
    o.stride = std::move(s);
    o.padding = std::move(p);
    o.dilation = std::move(d);
    o.groups = g;
    return o;
  };
  return {
      {"conv1d", {2, 5, 11}, {4, 5, 3}, opt({1}, {1}, {1}, 1)},
      {"conv1d strided dilated", {2, 4, 13}, {6, 4, 3}, opt({2}, {2}, {2}, 1)},
      {"stem 7x7 stride 2, 3 channels", {2, 3, 20, 20}, {16, 3, 7, 7}, opt({2}, {3}, {1}, 1)},
      {"3x3 blocked channels", {2, 32, 9, 9}, {32, 32, 3, 3}, opt({1}, {1}, {1}, 1)},
      {"3x3 stride 2 dropping a row", {2, 16, 10, 9}, {32, 16, 3, 3}, opt({2}, {1}, {1}, 1)},
      {"1x1 stride 2 shortcut", {2, 16, 9, 8}, {32, 16, 1, 1}, opt({2}, {0}, {1}, 1)},
      {"per-dim stride and padding", {1, 6, 7, 8}, {5, 6, 3, 2}, opt({2, 1}, {1, 0}, {1}, 1)},
      {"dilated 2d", {1, 8, 10, 10}, {8, 8, 3, 3}, opt({1}, {2}, {2}, 1)},
      {"grouped", {2, 8, 7, 7}, {12, 4, 3, 3}, opt({1}, {1}, {1}, 2)},
      {"depthwise", {2, 16, 8, 8}, {16, 1, 3, 3}, opt({1}, {1}, {1}, 16)},
      {"3d 3x3x3", {1, 16, 4, 6, 6}, {16, 16, 3, 3, 3}, opt({1}, {1}, {1}, 1)},
      {"3d stem 5x7x7", {1, 3, 6, 14, 14}, {8, 3, 5, 7, 7}, opt({1, 2, 2}, {2, 3, 3}, {1}, 1)},
      {"3d 1x3x3 stride (1,2,2)",
       {2, 8, 3, 7, 7},
       {16, 8, 1, 3, 3},
       opt({1, 2, 2}, {0, 1, 1}, {1}, 1)},
  };
}

struct Result {
  Tensor y, gx, gw;
};

// Forward and both gradients of conv(x, w) under the upstream gradient g, in x's dtype.
Result run(const Tensor& x0, const Tensor& w0, const Tensor& g, const ConvOptions& o) {
  Tensor x = x0.detach(), w = w0.detach();
  x.requires_grad_();
  w.requires_grad_();
  Tensor y = conv(x, w, {}, o);
  backward(sum(y * to(g, y.dtype())));
  return {y.detach(), x.grad(), w.grad()};
}

// f32 results against the f64 reference, scaled by the reference's largest magnitude (a
// floor of 1e-3 for tensors that are near zero throughout).
void expect_close(const Result& got, const Result& want, const std::string& what) {
  EXPECT_LT(test_support::scaled_error(to(got.y, DType::f64), want.y, 1e-3), 2e-5) << what << ": y";
  EXPECT_LT(test_support::scaled_error(to(got.gx, DType::f64), want.gx, 1e-3), 2e-5)
      << what << ": gx";
  EXPECT_LT(test_support::scaled_error(to(got.gw, DType::f64), want.gw, 1e-3), 2e-5)
      << what << ": gw";
}

void check_path(Conv path, const char* path_name) {
  uint64_t seed = 1;
  for (const Case& c : cases()) {
    Generator gen(seed++);
    const Tensor x = randn(c.x, DType::f64, &gen), w = randn(c.w, DType::f64, &gen);
    Tensor y_shape;
    {
      NoGrad no_grad;
      y_shape = conv(x, w, {}, c.o);
    }
    const Tensor g = randn(y_shape.shape(), DType::f64, &gen);
    Result want;
    {
      ConvPathScope scope(Conv::im2col);
      want = run(x, w, g, c.o);
    }
    ConvPathScope scope(path);
    const Result got = run(to(x, DType::f32), to(w, DType::f32), g, c.o);
    expect_close(got, want, std::string(path_name) + ", " + c.name);
  }
}

TEST(CpuConvPaths, Im2colInF32MatchesTheF64Reference) { check_path(Conv::im2col, "im2col"); }

TEST(CpuConvPaths, OnednnInF32MatchesTheF64Reference) {
  std::string why;
  if (!cpu::onednn_available(&why)) GTEST_SKIP() << "no oneDNN path to check: " << why;
  check_path(Conv::onednn, "onednn");
}

// Plans that recompute a convolution count on it giving the same bits the second time, and the
// oneDNN path's reorders and workspace are reused between calls of different shapes.
TEST(CpuConvPaths, OnednnRepeatsBitForBitAcrossInterleavedShapes) {
  std::string why;
  if (!cpu::onednn_available(&why)) GTEST_SKIP() << "no oneDNN path to check: " << why;
  ConvPathScope scope(Conv::onednn);
  const std::vector<Case> all = cases();
  std::vector<Result> first;
  for (int round = 0; round < 2; ++round) {
    uint64_t seed = 100;
    for (size_t i = 0; i < all.size(); ++i) {
      Generator gen(seed++);
      const Tensor x = randn(all[i].x, DType::f32, &gen), w = randn(all[i].w, DType::f32, &gen);
      Tensor g;
      {
        NoGrad no_grad;
        g = randn(conv(x, w, {}, all[i].o).shape(), DType::f32, &gen);
      }
      Result r = run(x, w, g, all[i].o);
      if (round == 0) {
        first.push_back(r);
        continue;
      }
      EXPECT_EQ(r.y.to_vector<float>(), first[i].y.to_vector<float>()) << all[i].name;
      EXPECT_EQ(r.gx.to_vector<float>(), first[i].gx.to_vector<float>()) << all[i].name;
      EXPECT_EQ(r.gw.to_vector<float>(), first[i].gw.to_vector<float>()) << all[i].name;
    }
  }
}

TEST(CpuConvPaths, SelectingOnednnWithoutItSaysWhy) {
  std::string why;
  if (cpu::onednn_available(&why)) {
    EXPECT_FALSE(cpu::onednn_version().empty());
    GTEST_SKIP() << "this build has oneDNN " << cpu::onednn_version();
  }
  try {
    cpu::set_conv(Conv::onednn);
    FAIL() << "set_conv(Conv::onednn) did not throw in a build without oneDNN";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("libdnnl-dev"), std::string::npos) << e.what();
  }
  EXPECT_EQ(cpu::conv_path(), Conv::im2col);
}

// ---- matmul ----------------------------------------------------------------------------------

struct GemmCase {
  const char* name;
  Shape a, b;
  bool ta, tb;  // the operand is stored transposed (a view with swapped last two dims)
};

const GemmCase kGemmCases[] = {
    {"plain", {37, 53}, {53, 29}, false, false},
    {"A transposed", {37, 53}, {53, 29}, true, false},
    {"B transposed", {37, 53}, {53, 29}, false, true},
    {"both transposed", {16, 64}, {64, 48}, true, true},
    {"batched", {3, 17, 33}, {3, 33, 9}, false, false},
    {"batched, B broadcast", {4, 19, 24}, {24, 31}, false, true},
    {"one row", {1, 40}, {40, 70}, false, false},
    {"one column", {40, 70}, {70, 1}, false, false},
    {"inner size 1", {30, 1}, {1, 20}, false, false},
};

// A tensor of `shape` whose last two dims are a transposed view when `t`.
Tensor operand(const Shape& shape, bool t, Generator* gen) {
  if (!t) return randn(shape, DType::f64, gen);
  Shape s = shape;
  std::swap(s[s.size() - 1], s[s.size() - 2]);
  return transpose(randn(s, DType::f64, gen), -1, -2);
}

// matmul(a, b) and the gradients of sum(matmul(a, b) * g), in a's dtype.
Result run_matmul(const Tensor& a0, const Tensor& b0, const Tensor& g) {
  Tensor a = a0.detach(), b = b0.detach();
  a.requires_grad_();
  b.requires_grad_();
  Tensor y = matmul(a, b);
  backward(sum(y * to(g, y.dtype())));
  return {y.detach(), a.grad(), b.grad()};
}

void check_gemm_path(Gemm path, const char* path_name) {
  uint64_t seed = 50;
  for (const GemmCase& c : kGemmCases) {
    Generator gen(seed++);
    const Tensor a = operand(c.a, c.ta, &gen), b = operand(c.b, c.tb, &gen);
    Tensor y;
    {
      NoGrad no_grad;
      y = matmul(a, b);
    }
    const Tensor g = randn(y.shape(), DType::f64, &gen);
    const Result want = run_matmul(a, b, g);  // f64: OpenBLAS's dgemm on every path
    GemmPathScope scope(path);
    const Result got = run_matmul(to(a, DType::f32), to(b, DType::f32), g);
    expect_close(got, want, std::string(path_name) + ", " + c.name);
  }
}

TEST(CpuGemmPaths, OpenblasInF32MatchesTheF64Reference) {
  check_gemm_path(Gemm::openblas, "openblas");
}

TEST(CpuGemmPaths, OnednnInF32MatchesTheF64Reference) {
  std::string why;
  if (!cpu::onednn_available(&why)) GTEST_SKIP() << "no oneDNN path to check: " << why;
  check_gemm_path(Gemm::onednn, "onednn");
}

// Flash attention in f32 on a GEMM path, and its gradients, against naive attention in f64
// (matmul's dgemm and ordinary ops): 150 tokens make key tiles of 64, 64 and 22. The tiles below
// the diagonal that lie inside one document need no mask (a path of their own): the causal rows
// and the 140-token document have some, the short documents none.
void check_attention_path(Gemm path, const char* path_name) {
  const Shape shape{2, 2, 150, 16};
  Generator gen(70);
  const Tensor q = randn(shape, DType::f64, &gen), k = randn(shape, DType::f64, &gen),
               v = randn(shape, DType::f64, &gen), g = randn(shape, DType::f64, &gen);
  const std::vector<std::vector<int64_t>> documents = {
      {}, {0, 40, 150, 230, 300}, {0, 140, 150, 300}};
  for (const auto& cu : documents) {
    const bool packed = !cu.empty();
    AttentionOptions o;
    if (packed)
      o.segments = segments_from_cu_seqlens(from_vector<int64_t>(cu, {int64_t(cu.size())}), 2, 150);
    auto run_attention = [&](bool flash, DType dt) {
      Tensor x[3] = {to(q, dt).detach(), to(k, dt).detach(), to(v, dt).detach()};
      for (Tensor& t : x) t.requires_grad_();
      Tensor y =
          flash ? flash_attention(x[0], x[1], x[2], o) : naive_attention(x[0], x[1], x[2], o);
      backward(sum(y * to(g, dt)));
      return std::vector<Tensor>{y.detach(), x[0].grad(), x[1].grad(), x[2].grad()};
    };
    const auto want = run_attention(false, DType::f64);
    GemmPathScope scope(path);
    const auto got = run_attention(true, DType::f32);
    const char* what[] = {"out", "dq", "dk", "dv"};
    for (size_t i = 0; i < 4; ++i)
      EXPECT_LT(test_support::scaled_error(to(got[i], DType::f64), want[i], 1e-3), 2e-5)
          << path_name << (packed ? ", documents ending at " + str(cu) : ", causal") << ": "
          << what[i];
  }
}

TEST(CpuGemmPaths, FlashAttentionThroughOpenblasMatchesTheF64Reference) {
  check_attention_path(Gemm::openblas, "openblas");
}

TEST(CpuGemmPaths, FlashAttentionThroughOnednnMatchesTheF64Reference) {
  std::string why;
  if (!cpu::onednn_available(&why)) GTEST_SKIP() << "no oneDNN path to check: " << why;
  check_attention_path(Gemm::onednn, "onednn");
}

TEST(CpuGemmPaths, SelectingOnednnWithoutItSaysWhy) {
  std::string why;
  if (cpu::onednn_available(&why))
    GTEST_SKIP() << "this build has oneDNN " << cpu::onednn_version();
  EXPECT_THROW(cpu::set_gemm(Gemm::onednn), Error);
  EXPECT_EQ(cpu::gemm_path(), Gemm::openblas);
}

}  // namespace
}  // namespace spool
