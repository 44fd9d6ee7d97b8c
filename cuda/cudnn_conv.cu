// The cuDNN convolution path: forward, input gradient and weight gradient over 1-3 spatial dims
// (1-D as 2-D with a height of 1), f32 and f64, NCHW / NCDHW, groups, stride, padding, dilation.
// Chosen per call by cuda::conv_path() (cuda/control.h); the im2col path (cuda/conv.cu) is the
// default. Compiled only where CMake found cuDNN for the real CUDA build (SPOOL_HAVE_CUDNN);
// the emulated device has no cuDNN.
//
// What it promises, as the im2col path does:
// - the outputs are overwritten (alpha 1, beta 0: with beta 0 cuDNN does not read them);
// - f32 within 1e-5 of the CPU: the math type is CUDNN_FMA_MATH, so no TF32 tensor cores;
// - the same bits every run: only algorithms that cuDNN's heuristics (cudnnGet*Algorithm_v7)
//   report as CUDNN_DETERMINISTIC are used, the first such in the heuristics' order whose
//   status is CUDNN_STATUS_SUCCESS and whose math type is not a tensor-op one. The heuristics
//   time nothing (unlike cudnnFind*), so the choice is a function of the geometry, the dtype,
//   the cuDNN version and the GPU; it is kept per geometry for the process.
// After each call SPOOL_CUDA_LAUNCHED checks as after a launch (with SPOOL_CUDA_SYNC=1 a fault in
// cuDNN's kernels is named by the call). The workspace is the backend's scratch buffer, taken after
// the output tensors exist (an allocation that runs out of memory frees scratch before it retries;
// cuda/common.cuh).
#ifdef SPOOL_HAVE_CUDNN

#include <cudnn.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "cuda/common.cuh"
#include "cuda/control.h"
#include "cuda/cudnn_conv.h"
#include "engine/window.h"

namespace spool::cuda {

namespace {

// Throws spool::Error naming the call, cuDNN's status and message and where it was made.
[[noreturn]] void fail_cudnn(const char* call, cudnnStatus_t st, const char* file, int line) {
  char detail[512] = {0};
  cudnnGetLastErrorString(detail, sizeof detail);
  fail("cudnn: ", call, " failed: ", cudnnGetErrorString(st), detail[0] ? " (" : "", detail,
       detail[0] ? ")" : "", " (", file, ":", line, ")");
}

#define SPOOL_CUDNN_CHECK(call)                                        \
  do {                                                                 \
    const cudnnStatus_t spool_st_ = (call);                            \
    if (spool_st_ != CUDNN_STATUS_SUCCESS)                             \
      ::spool::cuda::fail_cudnn(#call, spool_st_, __FILE__, __LINE__); \
  } while (0)

// One handle, created at the first cuDNN convolution, on spool's stream; never destroyed (work
// may still be queued when statics go, as with the allocator).
cudnnHandle_t handle() {
  static cudnnHandle_t h = [] {
    cudnnHandle_t made = nullptr;
    SPOOL_CUDNN_CHECK(cudnnCreate(&made));
    SPOOL_CUDNN_CHECK(cudnnSetStream(made, stream()));
    return made;
  }();
  return h;
}

struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc() { SPOOL_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d)); }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};
struct FilterDesc {
  cudnnFilterDescriptor_t d = nullptr;
  FilterDesc() { SPOOL_CUDNN_CHECK(cudnnCreateFilterDescriptor(&d)); }
  ~FilterDesc() { cudnnDestroyFilterDescriptor(d); }
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
};
struct ConvDesc {
  cudnnConvolutionDescriptor_t d = nullptr;
  ConvDesc() { SPOOL_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d)); }
  ~ConvDesc() { cudnnDestroyConvolutionDescriptor(d); }
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
};

int to_int(int64_t v, const char* op, const char* what) {
  SPOOL_CHECK(v >= 0 && v <= INT32_MAX, op, ": ", what, " ", v,
              " is beyond cuDNN's int sizes (use the im2col path: cuda::set_conv(Conv::im2col))");
  return int(v);
}

// The descriptors of one convolution: x [N, Cin, *in], w [Cout, Cin / groups, *k],
// y [N, Cout, *out], contiguous. 1-D convolutions become 2-D ones of height 1 (cuDNN's
// convolutions have 2 or 3 spatial dims).
struct Problem {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  cudnnDataType_t type;
  std::vector<int64_t> key;  // the geometry and dtype, for the algorithm cache

  Problem(const Shape& xs, const Shape& ws, const Shape& ys, const WindowParams& p, DType dt,
          const char* op) {
    SPOOL_CHECK(
        xs.size() >= 3 && xs.size() <= 5 && ws.size() == xs.size() && ys.size() == xs.size(), op,
        ": cuDNN path: x ", str(xs), ", w ", str(ws), ", y ", str(ys),
        " (expected 1-3 spatial dims)");
    type = dt == DType::f64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    const Window3 g = window3(xs, ys, p);
    const int sd = xs.size() == 5 ? 3 : 2, lead = 3 - sd;
    std::vector<int> xd{to_int(xs[0], op, "batch"), to_int(xs[1], op, "channels")};
    std::vector<int> yd{xd[0], to_int(ys[1], op, "channels")};
    std::vector<int> wd{to_int(ws[0], op, "filters"), to_int(ws[1], op, "filter channels")};
    std::vector<int> pad, stride, dil;
    for (int i = lead; i < 3; ++i) {
      xd.push_back(to_int(g.in[i], op, "input size"));
      yd.push_back(to_int(g.out[i], op, "output size"));
      wd.push_back(to_int(g.k[i], op, "kernel size"));
      pad.push_back(to_int(g.p[i], op, "padding"));
      stride.push_back(to_int(g.s[i], op, "stride"));
      dil.push_back(to_int(g.d[i], op, "dilation"));
    }
    const int nb = sd + 2;
    auto strides_of = [&](const std::vector<int>& dims) {
      std::vector<int> st(size_t(nb), 1);
      for (int i = nb - 2; i >= 0; --i)
        st[size_t(i)] = to_int(int64_t(st[size_t(i + 1)]) * dims[size_t(i + 1)], op, "stride");
      return st;
    };
    const std::vector<int> xst = strides_of(xd), yst = strides_of(yd);
    SPOOL_CUDNN_CHECK(cudnnSetTensorNdDescriptor(x.d, type, nb, xd.data(), xst.data()));
    SPOOL_CUDNN_CHECK(cudnnSetTensorNdDescriptor(y.d, type, nb, yd.data(), yst.data()));
    SPOOL_CUDNN_CHECK(cudnnSetFilterNdDescriptor(w.d, type, CUDNN_TENSOR_NCHW, nb, wd.data()));
    SPOOL_CUDNN_CHECK(cudnnSetConvolutionNdDescriptor(conv.d, sd, pad.data(), stride.data(),
                                                      dil.data(), CUDNN_CROSS_CORRELATION, type));
    SPOOL_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv.d, to_int(p.groups, op, "groups")));
    // FMA only: the default math lets f32 convolutions round through TF32 tensor cores.
    SPOOL_CUDNN_CHECK(cudnnSetConvolutionMathType(conv.d, CUDNN_FMA_MATH));
    // cuDNN's output size must be the one spool computed (the same formula; a check, not a hope).
    std::vector<int> od(size_t(nb), 0);
    SPOOL_CUDNN_CHECK(cudnnGetConvolutionNdForwardOutputDim(conv.d, x.d, w.d, nb, od.data()));
    SPOOL_CHECK(od == yd, op, ": cuDNN path: cuDNN's output shape differs from y ", str(ys), " (x ",
                str(xs), ", w ", str(ws), ")");
    key.push_back(int64_t(type));
    key.push_back(p.groups);
    for (int v : xd) key.push_back(v);
    for (int v : wd) key.push_back(v);
    for (size_t i = 0; i < pad.size(); ++i) {
      key.push_back(pad[i]);
      key.push_back(stride[i]);
      key.push_back(dil[i]);
    }
  }
};

bool tensor_op(cudnnMathType_t m) {
  return m == CUDNN_TENSOR_OP_MATH || m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

// FFT and Winograd algorithms transform the operands and round differently from a direct sum
// of products, so f32 results could leave the 1e-5 of the CPU the tests hold: left out.
bool direct(cudnnConvolutionFwdAlgo_t a) {
  return a != CUDNN_CONVOLUTION_FWD_ALGO_FFT && a != CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING &&
         a != CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD &&
         a != CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
}
bool direct(cudnnConvolutionBwdDataAlgo_t a) {
  return a != CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT &&
         a != CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING &&
         a != CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD &&
         a != CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
}
bool direct(cudnnConvolutionBwdFilterAlgo_t a) {
  return a != CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT &&
         a != CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING &&
         a != CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
}

// The first deterministic, supported, non-tensor-op, direct (no FFT, no Winograd) algorithm of
// the heuristics' list.
template <class Perf>
int pick(const std::vector<Perf>& perf, int returned, const char* op) {
  for (int i = 0; i < returned; ++i) {
    const Perf& r = perf[size_t(i)];
    if (r.status == CUDNN_STATUS_SUCCESS && r.determinism == CUDNN_DETERMINISTIC &&
        !tensor_op(r.mathType) && direct(r.algo))
      return int(r.algo);
  }
  fail(op, ": cuDNN path: cuDNN offers no deterministic FMA algorithm for this convolution (",
       returned, " candidates); use the im2col path (cuda::set_conv(Conv::im2col))");
}

enum class Which { forward, backward_data, backward_filter };

// The algorithm for a problem: from the cache, or asked of the heuristics once.
int algorithm(Which which, const Problem& pr, const char* op) {
  static std::mutex mu;
  static std::map<std::vector<int64_t>, int> chosen;
  std::vector<int64_t> key = pr.key;
  key.push_back(int64_t(which));
  std::lock_guard<std::mutex> lock(mu);
  auto it = chosen.find(key);
  if (it != chosen.end()) return it->second;
  int count = 0, returned = 0, algo = -1;
  cudnnHandle_t h = handle();
  switch (which) {
    case Which::forward: {
      SPOOL_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &count));
      std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(size_t(count > 0 ? count : 1));
      SPOOL_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, pr.x.d, pr.w.d, pr.conv.d, pr.y.d,
                                                               count, &returned, perf.data()));
      algo = pick(perf, returned, op);
      break;
    }
    case Which::backward_data: {
      SPOOL_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &count));
      std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(size_t(count > 0 ? count : 1));
      SPOOL_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
          h, pr.w.d, pr.y.d, pr.conv.d, pr.x.d, count, &returned, perf.data()));
      algo = pick(perf, returned, op);
      break;
    }
    case Which::backward_filter: {
      SPOOL_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &count));
      std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(size_t(count > 0 ? count : 1));
      SPOOL_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
          h, pr.x.d, pr.y.d, pr.conv.d, pr.w.d, count, &returned, perf.data()));
      algo = pick(perf, returned, op);
      break;
    }
  }
  chosen.emplace(std::move(key), algo);
  return algo;
}

// alpha = 1 and beta = 0 in the compute type (double for f64, float for f32).
struct Scale {
  double d1 = 1, d0 = 0;
  float f1 = 1, f0 = 0;
  bool dbl;
  explicit Scale(DType dt) : dbl(dt == DType::f64) {}
  const void* one() const { return dbl ? static_cast<const void*>(&d1) : &f1; }
  const void* zero() const { return dbl ? static_cast<const void*>(&d0) : &f0; }
};

DType checked_dtype(DType dt, const char* op) {
  SPOOL_CHECK(dt == DType::f32 || dt == DType::f64, op, ": dtype ", name(dt),
              " is not supported (expected f32 or f64)");
  return dt;
}

}  // namespace

void cudnn_conv(const Tensor& x, const Tensor& w, const WindowParams& p, const Tensor& y) {
  const char* op = "conv";
  const DType dt = checked_dtype(x.dtype(), op);
  const Problem pr(x.shape(), w.shape(), y.shape(), p, dt, op);
  const auto algo = cudnnConvolutionFwdAlgo_t(algorithm(Which::forward, pr, op));
  size_t ws = 0;
  SPOOL_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(handle(), pr.x.d, pr.w.d, pr.conv.d,
                                                            pr.y.d, algo, &ws));
  void* work = ws ? scratch(ws) : nullptr;  // y exists already: scratch after the tensors
  const Scale s(dt);
  SPOOL_CUDNN_CHECK(cudnnConvolutionForward(handle(), s.one(), pr.x.d, x.raw(), pr.w.d, w.raw(),
                                            pr.conv.d, algo, work, ws, s.zero(), pr.y.d, y.raw()));
  SPOOL_CUDA_LAUNCHED("cudnnConvolutionForward");
}

void cudnn_conv_backward_input(const Tensor& gy, const Tensor& w, const WindowParams& p,
                               const Tensor& gx) {
  const char* op = "conv_backward_input";
  const DType dt = checked_dtype(gy.dtype(), op);
  const Problem pr(gx.shape(), w.shape(), gy.shape(), p, dt, op);
  const auto algo = cudnnConvolutionBwdDataAlgo_t(algorithm(Which::backward_data, pr, op));
  size_t ws = 0;
  SPOOL_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(handle(), pr.w.d, pr.y.d,
                                                                 pr.conv.d, pr.x.d, algo, &ws));
  void* work = ws ? scratch(ws) : nullptr;
  const Scale s(dt);
  SPOOL_CUDNN_CHECK(cudnnConvolutionBackwardData(handle(), s.one(), pr.w.d, w.raw(), pr.y.d,
                                                 gy.raw(), pr.conv.d, algo, work, ws, s.zero(),
                                                 pr.x.d, gx.raw()));
  SPOOL_CUDA_LAUNCHED("cudnnConvolutionBackwardData");
}

void cudnn_conv_backward_weight(const Tensor& gy, const Tensor& x, const WindowParams& p,
                                const Tensor& gw) {
  const char* op = "conv_backward_weight";
  const DType dt = checked_dtype(x.dtype(), op);
  const Problem pr(x.shape(), gw.shape(), gy.shape(), p, dt, op);
  const auto algo = cudnnConvolutionBwdFilterAlgo_t(algorithm(Which::backward_filter, pr, op));
  size_t ws = 0;
  SPOOL_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(handle(), pr.x.d, pr.y.d,
                                                                   pr.conv.d, pr.w.d, algo, &ws));
  void* work = ws ? scratch(ws) : nullptr;
  const Scale s(dt);
  SPOOL_CUDNN_CHECK(cudnnConvolutionBackwardFilter(handle(), s.one(), pr.x.d, x.raw(), pr.y.d,
                                                   gy.raw(), pr.conv.d, algo, work, ws, s.zero(),
                                                   pr.w.d, gw.raw()));
  SPOOL_CUDA_LAUNCHED("cudnnConvolutionBackwardFilter");
}

void cudnn_check_geometry(const Shape& x, const Shape& w, const Shape& y, const WindowParams& p,
                          DType dt) {
  const Problem pr(x, w, y, p, checked_dtype(dt, "conv"), "conv");
}

size_t cudnn_version() { return cudnnGetVersion(); }

}  // namespace spool::cuda

#endif  // SPOOL_HAVE_CUDNN
