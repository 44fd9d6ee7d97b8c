// The kernel spans of a trace (engine/trace.h): while a trace is on, backend() hands out this
// wrapper around the device's backend, which records a span around each call.
#include <map>
#include <memory>
#include <mutex>

#include "engine/backend.h"
#include "engine/trace.h"

namespace spool::trace::detail {

namespace {

const char* const kUnary[] = {"neg",   "exp",       "log",       "sqrt",           "abs",
                              "sign",  "tanh",      "sigmoid",   "log_sigmoid",    "relu",
                              "gelu",  "gelu_tanh", "gelu_grad", "gelu_tanh_grad", "pow_scalar",
                              "clamp", "affine"};
const char* const kBinary[] = {"add",       "sub", "mul", "div", "pow", "maximum", "minimum",
                               "relu_grad", "eq",  "ne",  "lt",  "le",  "gt",      "ge"};
const char* const kReduce[] = {"sum", "max", "min"};

template <size_t N, class E>
std::string named(const char* prefix, const char* const (&names)[N], E op) {
  const size_t i = size_t(op);
  return std::string(prefix) + (i < N ? names[i] : "?");
}

// One kernel's span: inputs are read, outputs written (an in-place kernel's tensor is both).
class Kernel {
 public:
  Kernel(std::string name, std::initializer_list<const Tensor*> in,
         std::initializer_list<const Tensor*> out, double flops = -1)
      : name_(std::move(name)), flops_(flops), start_(now_us()) {
    kernel_started(start_);
    for (const Tensor* t : in) add(*t, read_, in_);
    for (const Tensor* t : out) {
      add(*t, written_, out_);
      if (t->defined() && dtype_.empty()) {
        dtype_ = spool::name(t->dtype());
        device_ = t->device().str();
      }
    }
  }
  ~Kernel() {
    std::vector<Arg> args{arg("inputs", in_),       arg("outputs", out_),
                          arg("dtype", dtype_),     arg("device", device_),
                          arg("bytes_read", read_), arg("bytes_written", written_)};
    if (flops_ >= 0) args.push_back(arg("flops", flops_));
    complete("kernel", std::move(name_), start_, now_us(), std::move(args),
             {flops_, double(read_ + written_)});
  }

 private:
  static void add(const Tensor& t, int64_t& bytes, std::string& shapes) {
    if (!t.defined()) return;
    bytes += int64_t(t.numel()) * int64_t(itemsize(t.dtype()));
    if (!shapes.empty()) shapes += ' ';
    shapes += shape_of(t);
  }
  std::string name_, in_, out_, dtype_, device_;
  int64_t read_ = 0, written_ = 0;
  double flops_;
  double start_;
};

double conv_flops(const Tensor& w, const Tensor& y) {
  // 2 x (each output element's multiply-adds: C / groups x the kernel's elements).
  return 2.0 * double(y.numel()) * double(w.numel() / std::max<int64_t>(w.shape()[0], 1));
}

class TracingBackend : public Backend {
 public:
  explicit TracingBackend(Backend& inner) : in_(inner) {}
  const char* name() const override { return in_.name(); }
  void to_host(const Tensor& src, void* dst) override {
    Kernel k("to_host", {&src}, {});
    in_.to_host(src, dst);
  }
  void from_host(const void* src, const Tensor& dst) override {
    Kernel k("from_host", {}, {&dst});
    in_.from_host(src, dst);
  }
  void synchronize() override {
    Kernel k("synchronize", {}, {});
    in_.synchronize();
  }
  void fill(const Tensor& out, double value) override {
    Kernel k("fill", {}, {&out});
    in_.fill(out, value);
  }
  void copy(const Tensor& src, const Tensor& out) override {
    Kernel k("copy", {&src}, {&out});
    in_.copy(src, out);
  }
  void arange(const Tensor& out, double start, double step) override {
    Kernel k("arange", {}, {&out});
    in_.arange(out, start, step);
  }
  void uniform(const Tensor& out, RngState state, double lo, double hi) override {
    Kernel k("uniform", {}, {&out});
    in_.uniform(out, state, lo, hi);
  }
  void normal(const Tensor& out, RngState state, double mean, double std) override {
    Kernel k("normal", {}, {&out});
    in_.normal(out, state, mean, std);
  }
  void unary(UnaryOp op, const Tensor& x, const Tensor& out, double a, double b) override {
    Kernel k(named("unary ", kUnary, op), {&x}, {&out});
    in_.unary(op, x, out, a, b);
  }
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) override {
    Kernel k(named("binary ", kBinary, op), {&a, &b}, {&out});
    in_.binary(op, a, b, out);
  }
  void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) override {
    Kernel k("where", {&cond, &a, &b}, {&out});
    in_.where(cond, a, b, out);
  }
  void reduce(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims,
              const Tensor& out) override {
    Kernel k(named("reduce ", kReduce, op), {&x}, {&out});
    in_.reduce(op, x, dims, out);
  }
  void argmax(const Tensor& x, int64_t dim, const Tensor& out) override {
    Kernel k("argmax", {&x}, {&out});
    in_.argmax(x, dim, out);
  }
  void matmul(const Tensor& a, const Tensor& b, const Tensor& out) override {
    // out [B, M, N] = a [B, M, K] @ b [B, K, N]: 2 B M N K.
    const double kk = a.shape().empty() ? 0 : double(a.shape().back());
    Kernel k("matmul", {&a, &b}, {&out}, 2.0 * double(out.numel()) * kk);
    in_.matmul(a, b, out);
  }
  void softmax(const Tensor& x, int64_t dim, bool log, const Tensor& out) override {
    Kernel k(log ? "log_softmax" : "softmax", {&x}, {&out});
    in_.softmax(x, dim, log, out);
  }
  void softmax_backward(const Tensor& y, const Tensor& gy, int64_t dim, bool log,
                        const Tensor& gx) override {
    Kernel k(log ? "log_softmax_backward" : "softmax_backward", {&y, &gy}, {&gx});
    in_.softmax_backward(y, gy, dim, log, gx);
  }
  void layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, double eps, const Tensor& y,
                  const Tensor& mean, const Tensor& rstd) override {
    Kernel k("layer_norm", {&x, &w, &b}, {&y, &mean, &rstd});
    in_.layer_norm(x, w, b, eps, y, mean, rstd);
  }
  void layer_norm_backward(const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd,
                           const Tensor& gy, const Tensor& gx, const Tensor& gw,
                           const Tensor& gb) override {
    Kernel k("layer_norm_backward", {&x, &w, &mean, &rstd, &gy}, {&gx, &gw, &gb});
    in_.layer_norm_backward(x, w, mean, rstd, gy, gx, gw, gb);
  }
  void conv(const Tensor& x, const Tensor& w, const WindowParams& p, const Tensor& y) override {
    Kernel k("conv", {&x, &w}, {&y}, conv_flops(w, y));
    in_.conv(x, w, p, y);
  }
  void conv_backward_input(const Tensor& gy, const Tensor& w, const WindowParams& p,
                           const Tensor& gx) override {
    Kernel k("conv_backward_input", {&gy, &w}, {&gx}, conv_flops(w, gy));
    in_.conv_backward_input(gy, w, p, gx);
  }
  void conv_backward_weight(const Tensor& gy, const Tensor& x, const WindowParams& p,
                            const Tensor& gw) override {
    Kernel k("conv_backward_weight", {&gy, &x}, {&gw}, conv_flops(gw, gy));
    in_.conv_backward_weight(gy, x, p, gw);
  }
  void max_pool(const Tensor& x, const WindowParams& p, const Tensor& y,
                const Tensor& indices) override {
    Kernel k("max_pool", {&x}, {&y, &indices});
    in_.max_pool(x, p, y, indices);
  }
  void max_pool_backward(const Tensor& gy, const Tensor& indices, const WindowParams& p,
                         const Tensor& gx) override {
    Kernel k("max_pool_backward", {&gy, &indices}, {&gx});
    in_.max_pool_backward(gy, indices, p, gx);
  }
  void avg_pool(const Tensor& x, const WindowParams& p, const Tensor& y) override {
    Kernel k("avg_pool", {&x}, {&y});
    in_.avg_pool(x, p, y);
  }
  void avg_pool_backward(const Tensor& gy, const WindowParams& p, const Tensor& gx) override {
    Kernel k("avg_pool_backward", {&gy}, {&gx});
    in_.avg_pool_backward(gy, p, gx);
  }
  void batch_norm_stats(const Tensor& x, const Tensor& mean, const Tensor& var) override {
    Kernel k("batch_norm_stats", {&x}, {&mean, &var});
    in_.batch_norm_stats(x, mean, var);
  }
  void batch_norm_apply(const Tensor& x, const Tensor& mean, const Tensor& invstd, const Tensor& w,
                        const Tensor& b, const Tensor& y) override {
    Kernel k("batch_norm_apply", {&x, &mean, &invstd, &w, &b}, {&y});
    in_.batch_norm_apply(x, mean, invstd, w, b, y);
  }
  void batch_norm_backward(const Tensor& x, const Tensor& gy, const Tensor& mean,
                           const Tensor& invstd, const Tensor& w, bool batch_stats,
                           const Tensor& gx, const Tensor& gw, const Tensor& gb) override {
    Kernel k("batch_norm_backward", {&x, &gy, &mean, &invstd, &w}, {&gx, &gw, &gb});
    in_.batch_norm_backward(x, gy, mean, invstd, w, batch_stats, gx, gw, gb);
  }
  void attention(const Tensor& q, const Tensor& k_, const Tensor& v, const Tensor& seg,
                 const AttentionParams& p, const Tensor& out, const Tensor& lse) override {
    // q k^T and p v over [B, H, T, T] (causal: about half of it): 4 B H T T D, halved.
    const double t = q.dim() == 4 ? double(q.shape()[2]) : 0;
    const double f = 4.0 * double(q.numel()) * t * (p.causal ? 0.5 : 1.0);
    Kernel k("attention", {&q, &k_, &v, &seg}, {&out, &lse}, f);
    in_.attention(q, k_, v, seg, p, out, lse);
  }
  void attention_backward(const Tensor& q, const Tensor& k_, const Tensor& v, const Tensor& seg,
                          const AttentionParams& p, const Tensor& out, const Tensor& lse,
                          const Tensor& gout, const Tensor& gq, const Tensor& gk,
                          const Tensor& gv) override {
    // The probabilities recomputed (2), then dv, dp, dq, dk (4 more products): 2.5 x forward.
    const double t = q.dim() == 4 ? double(q.shape()[2]) : 0;
    const double f = 10.0 * double(q.numel()) * t * (p.causal ? 0.5 : 1.0);
    Kernel k("attention_backward", {&q, &k_, &v, &seg, &out, &lse, &gout}, {&gq, &gk, &gv}, f);
    in_.attention_backward(q, k_, v, seg, p, out, lse, gout, gq, gk, gv);
  }
  void cross_entropy(const Tensor& x, const Tensor& targets, int64_t ignore_index, double smoothing,
                     const Tensor& loss, const Tensor& lse) override {
    Kernel k("cross_entropy", {&x, &targets}, {&loss, &lse});
    in_.cross_entropy(x, targets, ignore_index, smoothing, loss, lse);
  }
  void cross_entropy_backward(const Tensor& x, const Tensor& targets, const Tensor& lse,
                              const Tensor& gloss, int64_t ignore_index, double smoothing,
                              const Tensor& gx) override {
    Kernel k("cross_entropy_backward", {&x, &targets, &lse, &gloss}, {&gx});
    in_.cross_entropy_backward(x, targets, lse, gloss, ignore_index, smoothing, gx);
  }
  void temporal_shift(const Tensor& x, int64_t segments, int64_t fold, bool online, bool reverse,
                      const Tensor& out) override {
    Kernel k("temporal_shift", {&x}, {&out});
    in_.temporal_shift(x, segments, fold, online, reverse, out);
  }
  void roi_align(const Tensor& x, const Tensor& rois, const RoiAlignParams& p,
                 const Tensor& out) override {
    Kernel k("roi_align", {&x, &rois}, {&out});
    in_.roi_align(x, rois, p, out);
  }
  void roi_align_backward(const Tensor& gout, const Tensor& rois, const RoiAlignParams& p,
                          const Tensor& gx) override {
    Kernel k("roi_align_backward", {&gout, &rois}, {&gx});
    in_.roi_align_backward(gout, rois, p, gx);
  }
  void adam_step(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v,
                 const AdamParams& a) override {
    Kernel k("adam_step", {&p, &g, &m, &v}, {&p, &m, &v});
    in_.adam_step(p, g, m, v, a);
  }
  void index_select(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& out) override {
    Kernel k("index_select", {&x, &idx}, {&out});
    in_.index_select(x, dim, idx, out);
  }
  void index_add(const Tensor& out, int64_t dim, const Tensor& idx, const Tensor& src) override {
    Kernel k("index_add", {&out, &idx, &src}, {&out});
    in_.index_add(out, dim, idx, src);
  }
  void gather(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& out) override {
    Kernel k("gather", {&x, &idx}, {&out});
    in_.gather(x, dim, idx, out);
  }
  void scatter_add(const Tensor& out, int64_t dim, const Tensor& idx, const Tensor& src) override {
    Kernel k("scatter_add", {&out, &idx, &src}, {&out});
    in_.scatter_add(out, dim, idx, src);
  }

 private:
  Backend& in_;
};

}  // namespace

Backend& traced(Backend& inner) {
  static std::mutex mu;
  static std::map<Backend*, std::unique_ptr<TracingBackend>> wrappers;
  std::lock_guard<std::mutex> lock(mu);
  auto& w = wrappers[&inner];
  if (!w) w = std::make_unique<TracingBackend>(inner);
  return *w;
}

}  // namespace spool::trace::detail
