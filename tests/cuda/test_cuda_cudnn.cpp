// The cuDNN convolution path (cuda::set_conv(Conv::cudnn), cuda/cudnn_conv.cu) against the CPU
// backend: forward, input gradient and weight gradient over 1-D, 2-D and 3-D windows with stride,
// padding, dilation and groups, f32 and f64, at the im2col tests' tolerances, outputs poisoned
// with NaN so an unwritten (or accumulated-into) element fails; and two runs bit-identical. They
// skip, with the reason, where the build has no CUDA backend, on the emulated device (cuDNN is
// not emulated), where the build has no cuDNN, and where the machine has no GPU; bench/gpu/run.sh
// runs them on a GPU (its filter Cuda* takes them).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/factory.h"
#include "ops/ops.h"
#include "tests/support/helpers.h"

#ifdef SPOOL_HAVE_CUDA
#include "cuda/control.h"
#endif
#ifdef SPOOL_HAVE_CUDNN
#include "cuda/cudnn_conv.h"
#endif

using namespace spool;

namespace {

// Skips unless this build's cuDNN path can run here; says which of the four reasons holds.
#if !defined(SPOOL_HAVE_CUDA)
#define REQUIRE_CUDNN() GTEST_SKIP() << "this build of spool has no CUDA backend"
#elif defined(SPOOL_CUDA_EMULATED)
#define REQUIRE_CUDNN() \
  GTEST_SKIP() << "cuDNN is not emulated: the emulated device (SPOOL_CUDA=EMULATE) has no cuDNN"
#else
#define REQUIRE_CUDNN()                                                      \
  do {                                                                       \
    std::string why_;                                                        \
    if (!cuda::cudnn_available(&why_)) GTEST_SKIP() << "no cuDNN: " << why_; \
    if (!cuda_backend(&why_)) GTEST_SKIP() << "no GPU: " << why_;            \
  } while (0)
#endif

#if defined(SPOOL_HAVE_CUDA)
// Sends the convolutions to cuDNN for the scope, then back to the path before.
struct CudnnScope {
  cuda::Conv before = cuda::conv_path();
  CudnnScope() { cuda::set_conv(cuda::Conv::cudnn); }
  ~CudnnScope() { cuda::set_conv(before); }
};
#endif

Device gpu() { return Device::cuda(0); }

struct Pair {
  Tensor c, g;
};

uint64_t g_seed = 7000;

Pair randn_pair(const Shape& s, DType dt) {
  Generator gen(++g_seed);
  const Tensor c = randn(s, dt, &gen);
  return {c, to(c, gpu())};
}
// An output on both devices, the GPU one poisoned with NaN.
Pair out_pair(const Shape& s, DType dt) { return {empty(s, dt), full(s, std::nan(""), dt, gpu())}; }

Backend& cpu_b() { return cpu_backend(); }
Backend& gpu_b() { return backend(gpu()); }

// ||gpu - cpu|| / ||cpu||; a NaN or an infinity on one side only never passes.
double rel_err(const Pair& p) {
  const auto a = to(p.g, Device::cpu()).to_vector<double>();
  const auto b = p.c.to_vector<double>();
  if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) {
      if (!(a[i] == b[i])) return std::numeric_limits<double>::infinity();
      continue;
    }
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// The im2col tests' bounds (tests/cuda/test_cuda_kernels.cpp): f32 without tensor cores.
double tolerance(DType dt) { return dt == DType::f64 ? 1e-12 : 1e-5; }

struct Case {
  Shape x, w;
  std::vector<int64_t> stride, pad, dil;
  int64_t groups;
};

WindowParams params_of(const Case& c) {
  WindowParams p;
  for (size_t d = 0; d + 2 < c.x.size(); ++d) p.kernel.push_back(c.w[d + 2]);
  p.stride = c.stride;
  p.padding = c.pad;
  p.dilation = c.dil;
  p.groups = c.groups;
  return p;
}

Shape out_shape(const Case& c, const WindowParams& p) {
  Shape ys{c.x[0], c.w[0]};
  for (size_t d = 0; d + 2 < c.x.size(); ++d) ys.push_back(p.out_size(d, c.x[d + 2]));
  return ys;
}

// Forward, input and weight gradients of every case in both dtypes, GPU (cuDNN) against CPU.
void check_against_cpu(const std::vector<Case>& cases) {
  for (DType dt : {DType::f32, DType::f64}) {
    for (const Case& c : cases) {
      const WindowParams p = params_of(c);
      const Shape ys = out_shape(c, p);
      const std::string what = str(c.x) + " * " + str(c.w) + " " + name(dt);
      Pair x = randn_pair(c.x, dt), w = randn_pair(c.w, dt), gy = randn_pair(ys, dt);
      Pair y = out_pair(ys, dt);
      cpu_b().conv(x.c, w.c, p, y.c);
      gpu_b().conv(x.g, w.g, p, y.g);
      EXPECT_LE(rel_err(y), tolerance(dt)) << "conv " << what;
      Pair gx = out_pair(c.x, dt), gw = out_pair(c.w, dt);
      cpu_b().conv_backward_input(gy.c, w.c, p, gx.c);
      gpu_b().conv_backward_input(gy.g, w.g, p, gx.g);
      EXPECT_LE(rel_err(gx), tolerance(dt)) << "conv_backward_input " << what;
      cpu_b().conv_backward_weight(gy.c, x.c, p, gw.c);
      gpu_b().conv_backward_weight(gy.g, x.g, p, gw.g);
      EXPECT_LE(rel_err(gw), tolerance(dt)) << "conv_backward_weight " << what;
    }
  }
}

// The GPU tensor's bytes on the host.
std::vector<unsigned char> bytes_of(const Tensor& t) {
  const Tensor h = to(t, Device::cpu());
  std::vector<unsigned char> b(h.nbytes());
  std::memcpy(b.data(), h.raw(), b.size());
  return b;
}

}  // namespace

TEST(CudaKernels, CudnnConvolution1dAnd2dMatchTheCpu) {
  REQUIRE_CUDNN();
#if defined(SPOOL_HAVE_CUDA)
  CudnnScope scope;
  ASSERT_EQ(cuda::conv_path(), cuda::Conv::cudnn);
  check_against_cpu({
      {{2, 3, 17, 19}, {8, 3, 3, 3}, {1, 1}, {1, 1}, {1, 1}, 1},
      {{3, 8, 28, 28}, {16, 8, 7, 7}, {2, 2}, {3, 3}, {1, 1}, 1},
      {{2, 6, 11, 13}, {6, 2, 3, 3}, {2, 1}, {1, 0}, {2, 1}, 3},  // groups, dilation, stride
      {{2, 8, 10, 10}, {8, 1, 3, 3}, {1, 1}, {1, 1}, {1, 1}, 8},  // depthwise
      {{1, 64, 14, 14}, {128, 64, 1, 1}, {2, 2}, {0, 0}, {1, 1}, 1},
      {{2, 4, 9}, {5, 4, 4}, {2}, {1}, {1}, 1},  // 1-D, as 2-D of height 1
      {{2, 6, 20}, {4, 3, 3}, {1}, {2}, {3}, 2},
  });
#endif
}

TEST(CudaKernels, CudnnConvolution3dMatchesTheCpu) {
  REQUIRE_CUDNN();
#if defined(SPOOL_HAVE_CUDA)
  CudnnScope scope;
  check_against_cpu({
      {{2, 3, 5, 12, 12}, {4, 3, 3, 3, 3}, {1, 2, 2}, {1, 1, 1}, {1, 1, 1}, 1},
      {{2, 4, 6, 9, 8}, {6, 2, 3, 2, 3}, {2, 1, 2}, {1, 0, 2}, {1, 2, 1}, 2},
      {{1, 4, 4, 6, 6}, {4, 1, 1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}, 4},
      {{2, 16, 4, 7, 7}, {8, 16, 3, 1, 1}, {1, 1, 1}, {1, 0, 0}, {1, 1, 1}, 1},  // temporal
  });
#endif
}

// spool promises the same bits every run: the cuDNN path takes deterministic algorithms only.
// The weight gradient sums over the batch and positions, where a non-deterministic algorithm
// (atomics) would differ from run to run; the sizes are large enough for split reductions.
TEST(CudaKernels, CudnnConvolutionRepeatsBitForBit) {
  REQUIRE_CUDNN();
#if defined(SPOOL_HAVE_CUDA)
  CudnnScope scope;
  const std::vector<Case> cases = {
      {{8, 32, 28, 28}, {32, 32, 3, 3}, {1, 1}, {1, 1}, {1, 1}, 1},
      {{4, 16, 16, 16}, {32, 8, 3, 3}, {2, 2}, {1, 1}, {1, 1}, 2},
      {{2, 8, 8, 14, 14}, {16, 8, 3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, 1},
  };
  for (DType dt : {DType::f32, DType::f64}) {
    for (const Case& c : cases) {
      const WindowParams p = params_of(c);
      const Shape ys = out_shape(c, p);
      const std::string what = str(c.x) + " * " + str(c.w) + " " + name(dt);
      Pair x = randn_pair(c.x, dt), w = randn_pair(c.w, dt), gy = randn_pair(ys, dt);
      std::vector<unsigned char> first[3];
      for (int run = 0; run < 2; ++run) {
        Pair y = out_pair(ys, dt), gx = out_pair(c.x, dt), gw = out_pair(c.w, dt);
        gpu_b().conv(x.g, w.g, p, y.g);
        gpu_b().conv_backward_input(gy.g, w.g, p, gx.g);
        gpu_b().conv_backward_weight(gy.g, x.g, p, gw.g);
        const std::vector<unsigned char> now[3] = {bytes_of(y.g), bytes_of(gx.g), bytes_of(gw.g)};
        if (run == 0) {
          for (int k = 0; k < 3; ++k) first[k] = now[k];
          // Not a run of NaNs equal to itself: the values are right, too.
          cpu_b().conv_backward_weight(gy.c, x.c, p, gw.c);
          EXPECT_LE(rel_err(gw), tolerance(dt)) << "conv_backward_weight " << what;
        } else {
          EXPECT_TRUE(now[0] == first[0]) << "conv differs between runs: " << what;
          EXPECT_TRUE(now[1] == first[1]) << "conv_backward_input differs between runs: " << what;
          EXPECT_TRUE(now[2] == first[2]) << "conv_backward_weight differs between runs: " << what;
        }
      }
    }
  }
#endif
}

// Selecting cuDNN where the build has none is an error that says why; where it has one, the
// selection holds and goes back. Needs no GPU (nothing runs on the device).
TEST(CudaKernels, CudnnSelectionSaysWhyWhereTheBuildHasNone) {
#if !defined(SPOOL_HAVE_CUDA)
  GTEST_SKIP() << "this build of spool has no CUDA backend";
#else
  const cuda::Conv before = cuda::conv_path();
  std::string why;
  if (cuda::cudnn_available(&why)) {
    EXPECT_GT(cuda::cudnn_version(), size_t(0));
    cuda::set_conv(cuda::Conv::cudnn);
    EXPECT_EQ(cuda::conv_path(), cuda::Conv::cudnn);
  } else {
    EXPECT_EQ(cuda::cudnn_version(), size_t(0));
    EXPECT_FALSE(why.empty());
#ifdef SPOOL_CUDA_EMULATED
    EXPECT_NE(why.find("cuDNN is not emulated"), std::string::npos) << why;
#endif
    const std::string msg = test_support::error_of([] { cuda::set_conv(cuda::Conv::cudnn); });
    EXPECT_NE(msg.find("set_conv"), std::string::npos) << msg;
    EXPECT_NE(msg.find(why), std::string::npos) << msg;
    EXPECT_EQ(cuda::conv_path(), before);  // the failed selection changed nothing
  }
  cuda::set_conv(cuda::Conv::im2col);
  EXPECT_EQ(cuda::conv_path(), cuda::Conv::im2col);
  cuda::set_conv(before);
#endif
}

// The descriptors cuDNN is given (1-D as 2-D, 3-D, groups, stride, padding, dilation) yield the
// output shapes spool computes, and a wrong output shape is refused by name. Host work only, so
// this runs wherever the build has cuDNN, GPU or not.
TEST(CudaKernels, CudnnDescriptorsGiveSpoolsOutputShapes) {
#if !defined(SPOOL_HAVE_CUDNN)
  std::string why = "this build of spool has no CUDA backend";
#if defined(SPOOL_HAVE_CUDA)
  cuda::cudnn_available(&why);
#endif
  GTEST_SKIP() << "no cuDNN: " << why;
#else
  const std::vector<Case> cases = {
      {{2, 3, 17, 19}, {8, 3, 3, 3}, {1, 1}, {1, 1}, {1, 1}, 1},
      {{3, 8, 28, 28}, {16, 8, 7, 7}, {2, 2}, {3, 3}, {1, 1}, 1},
      {{2, 6, 11, 13}, {6, 2, 3, 3}, {2, 1}, {1, 0}, {2, 1}, 3},
      {{2, 8, 10, 10}, {8, 1, 3, 3}, {1, 1}, {1, 1}, {1, 1}, 8},
      {{2, 4, 9}, {5, 4, 4}, {2}, {1}, {1}, 1},
      {{2, 6, 20}, {4, 3, 3}, {1}, {2}, {3}, 2},
      {{2, 3, 5, 12, 12}, {4, 3, 3, 3, 3}, {1, 2, 2}, {1, 1, 1}, {1, 1, 1}, 1},
      {{2, 4, 6, 9, 8}, {6, 2, 3, 2, 3}, {2, 1, 2}, {1, 0, 2}, {1, 2, 1}, 2},
      {{1, 4, 4, 6, 6}, {4, 1, 1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}, 4},
  };
  for (DType dt : {DType::f32, DType::f64}) {
    for (const Case& c : cases) {
      const WindowParams p = params_of(c);
      const Shape ys = out_shape(c, p);
      EXPECT_NO_THROW(cuda::cudnn_check_geometry(c.x, c.w, ys, p, dt))
          << str(c.x) << " * " << str(c.w) << " " << name(dt);
      Shape wrong = ys;
      wrong.back() += 1;
      const std::string msg =
          test_support::error_of([&] { cuda::cudnn_check_geometry(c.x, c.w, wrong, p, dt); });
      EXPECT_NE(msg.find("cuDNN's output shape differs"), std::string::npos) << msg;
    }
  }
#endif
}
