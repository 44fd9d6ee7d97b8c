// The CUDA backend: handwritten kernels (cuda/*.cu), cuBLAS for GEMM. Every kernel is queued on
// one stream (cuda/common.cuh); host copies and synchronize() wait for it.
#pragma once
#include "engine/backend.h"

namespace spool::cuda {

class CudaBackend final : public Backend {
 public:
  const char* name() const override { return "cuda"; }
  void to_host(const Tensor& src, void* dst) override;
  void from_host(const void* src, const Tensor& dst) override;
  void synchronize() override;
  void fill(const Tensor& out, double value) override;
  void copy(const Tensor& src, const Tensor& out) override;
  void arange(const Tensor& out, double start, double step) override;
  void uniform(const Tensor& out, RngState state, double lo, double hi) override;
  void normal(const Tensor& out, RngState state, double mean, double std) override;
  void unary(UnaryOp op, const Tensor& x, const Tensor& out, double a, double b) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) override;
  void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) override;
  void reduce(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims,
              const Tensor& out) override;
  void argmax(const Tensor& x, int64_t dim, const Tensor& out) override;
  void matmul(const Tensor& a, const Tensor& b, const Tensor& out) override;
  void softmax(const Tensor& x, int64_t dim, bool log, const Tensor& out) override;
  void softmax_backward(const Tensor& y, const Tensor& gy, int64_t dim, bool log,
                        const Tensor& gx) override;
  void layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, double eps, const Tensor& y,
                  const Tensor& mean, const Tensor& rstd) override;
  void layer_norm_backward(const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd,
                           const Tensor& gy, const Tensor& gx, const Tensor& gw,
                           const Tensor& gb) override;
  void conv(const Tensor& x, const Tensor& w, const WindowParams& p, const Tensor& y) override;
  void conv_backward_input(const Tensor& gy, const Tensor& w, const WindowParams& p,
                           const Tensor& gx) override;
  void conv_backward_weight(const Tensor& gy, const Tensor& x, const WindowParams& p,
                            const Tensor& gw) override;
  void max_pool(const Tensor& x, const WindowParams& p, const Tensor& y,
                const Tensor& indices) override;
  void max_pool_backward(const Tensor& gy, const Tensor& indices, const WindowParams& p,
                         const Tensor& gx) override;
  void avg_pool(const Tensor& x, const WindowParams& p, const Tensor& y) override;
  void avg_pool_backward(const Tensor& gy, const WindowParams& p, const Tensor& gx) override;
  void batch_norm_stats(const Tensor& x, const Tensor& mean, const Tensor& var) override;
  void batch_norm_apply(const Tensor& x, const Tensor& mean, const Tensor& invstd, const Tensor& w,
                        const Tensor& b, const Tensor& y) override;
  void batch_norm_backward(const Tensor& x, const Tensor& gy, const Tensor& mean,
                           const Tensor& invstd, const Tensor& w, bool batch_stats,
                           const Tensor& gx, const Tensor& gw, const Tensor& gb) override;
  void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& seg,
                 const AttentionParams& p, const Tensor& out, const Tensor& lse) override;
  void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& seg,
                          const AttentionParams& p, const Tensor& out, const Tensor& lse,
                          const Tensor& gout, const Tensor& gq, const Tensor& gk,
                          const Tensor& gv) override;
  void adam_step(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v,
                 const AdamParams& a) override;
  void cross_entropy(const Tensor& x, const Tensor& targets, int64_t ignore_index, double smoothing,
                     const Tensor& loss, const Tensor& lse) override;
  void cross_entropy_backward(const Tensor& x, const Tensor& targets, const Tensor& lse,
                              const Tensor& gloss, int64_t ignore_index, double smoothing,
                              const Tensor& gx) override;
  void roi_align(const Tensor& x, const Tensor& rois, const RoiAlignParams& p,
                 const Tensor& out) override;
  void roi_align_backward(const Tensor& gout, const Tensor& rois, const RoiAlignParams& p,
                          const Tensor& gx) override;
  void temporal_shift(const Tensor& x, int64_t segments, int64_t fold, bool online, bool reverse,
                      const Tensor& out) override;
  void index_select(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& out) override;
  void index_add(const Tensor& out, int64_t dim, const Tensor& idx, const Tensor& src) override;
  void gather(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& out) override;
  void scatter_add(const Tensor& out, int64_t dim, const Tensor& idx, const Tensor& src) override;
};

}  // namespace spool::cuda
