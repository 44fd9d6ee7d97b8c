// Data-parallel training over a process group (docs/distributed.md).
//
// Every rank holds the whole model and runs forward and backward on its part of the global batch.
// DataParallel then makes the ranks' gradients one: each bucket of parameters (consecutive in the
// optimizer's order, at most bucket_mb megabytes) is flattened, weighted by the rank's share of
// the global batch and summed in rank order, so every rank steps with the same gradient and the
// same bits. Parameters without a gradient on a rank count as zeros there; one without a
// gradient on every rank is left without one, so the optimizer skips it as one process would.
// Every rank's backward must reach the parameters in the same order (the same graph), as
// PyTorch's DDP assumes: the buckets' collectives are issued in that order.
//
// With ZeRO stage 1 (zero = 1), the optimizer's state (AdamW's moments, SGD's momentum) is
// sharded: each bucket is split into world() equal chunks, rank r keeps the state of chunk r of
// every bucket only, the gradients are reduce-scattered instead of all-reduced, rank r updates its
// chunks' parameters, and the updated chunks are all-gathered. The update is the optimizer's own:
// a shard optimizer of the same kind (Optimizer::like) over 1-D views of this rank's pieces of the
// parameters, so it is the same arithmetic element for element. The state then takes 1/world() of
// the memory on each rank. A checkpoint still holds the whole optimizer state (gather_state), so
// it resumes with any number of processes.
#pragma once
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "dist/dist.h"
#include "nn/module.h"
#include "nn/optim.h"

namespace spool::dist {

struct DataParallelOptions {
  double bucket_mb = 25;  // the most a bucket of gradients holds, in MB (10^6 bytes)
  int zero = 0;           // 0: replicated optimizer state; 1: ZeRO stage 1
  // Reduce each bucket on a communication thread as soon as backward has made all its
  // gradients, while backward goes on; false: every bucket after backward, on this thread.
  bool overlap = true;
};

class DataParallel {
 public:
  // `opt` must outlive this; with zero = 1 its whole state (empty, or loaded from a checkpoint)
  // is split into this rank's chunks and freed from `opt`.
  DataParallel(ProcessGroup& group, nn::Module& model, nn::Optimizer& opt,
               DataParallelOptions options);

  // Every rank's parameters and buffers become rank 0's (at the start of a run).
  void broadcast_state();
  // Every rank's buffers (running statistics) become rank 0's.
  void broadcast_buffers();

  // Before the step's backward (with overlap): watches backward (engine/autograd.h's grad-ready
  // hook) and reduces each bucket whose gradients are all made on the communication thread,
  // weighted by share(), read when the bucket starts. Ended by reduce_gradients().
  void begin_step(std::function<double()> share);
  // After backward: every rank's gradients become sum over ranks of share_r * gradient_r, with
  // share_r this rank's share of the global batch's loss (rows / global rows, summing to 1).
  // Buckets begin_step() started are waited for; the others are reduced here. A parameter that
  // received a gradient after its bucket started is reduced again, so the result is the same.
  // Under ZeRO-1 only this rank's chunks are kept (and the whole gradients dropped).
  void reduce_gradients(double share);
  // Scales the reduced gradients so their global L2 norm is at most max_norm; returns the norm
  // before (the whole gradient's on every rank).
  double clip_grad_norm(double max_norm);
  // The optimizer step: opt.step() on the reduced gradients, or under ZeRO-1 the update of this
  // rank's chunks followed by the all-gather of the parameters.
  void step();
  // Sum over ranks of share_r * value_r (the global batch's loss from each rank's), f64.
  double weighted_sum(double value, double share);

  // Under ZeRO-1: gathers the whole optimizer state into `opt` (every rank takes part; before a
  // checkpoint is written), and release_state() frees it again after. No-ops without ZeRO.
  void gather_state();
  void release_state();

  ~DataParallel();
  int zero() const { return o_.zero; }
  // Seconds the buckets' collectives took, and the part of them backward did not hide: the
  // time reduce_gradients() waited for them (both summed over the steps).
  double comm_seconds() const { return comm_seconds_; }
  double exposed_seconds() const { return exposed_seconds_; }
  int64_t buckets() const { return int64_t(buckets_.size()); }
  // Bytes of optimizer state this rank holds (ZeRO-1: its chunks' only).
  int64_t moment_bytes() const;

 private:
  struct Bucket {
    std::vector<size_t> params;    // indexes into params_
    std::vector<int64_t> offset;   // each parameter's first element in the bucket
    int64_t numel = 0, chunk = 0;  // chunk: numel padded to world() chunks, divided
  };
  // Calls f(param index, first element in the param, first element in the chunk, count) for
  // each piece of bucket b's chunk `rank`.
  template <class F>
  void for_each_piece(const Bucket& b, int rank, F&& f) const;
  // ZeRO-1: a run of one parameter's elements in this rank's chunk of bucket k.
  struct Piece {
    size_t bucket, param;
    int64_t at, in_chunk, n;  // first element in the parameter, in the chunk; count
  };
  void split_state();  // ZeRO-1: the loaded whole state to this rank's chunks
  void flatten(size_t bucket, double share);  // the bucket's gradients, weighted, into flat_
  Tensor my_chunk(size_t bucket) const;       // this rank's chunk of flat_[bucket], a view
  void reduce(size_t bucket);                 // flat_'s collective
  void launch(size_t bucket);                 // flatten, then reduce on the comm thread
  void comm_loop();

  ProcessGroup& g_;
  // The buckets' collectives, ordered apart from g_'s (ProcessGroup::duplicate).
  std::unique_ptr<ProcessGroup> buckets_group_;
  nn::Module& model_;
  nn::Optimizer& opt_;
  DataParallelOptions o_;
  Tensors params_;
  std::vector<Bucket> buckets_;
  // ZeRO-1: per bucket, this rank's chunk of the gradient (a view of flat_); this rank's pieces,
  // the views of the parameters they are, and the optimizer that steps those views.
  Tensors grad_chunk_;
  std::vector<Piece> pieces_;
  Tensors views_;
  std::unique_ptr<nn::Optimizer> shard_;
  // Each bucket's flattened gradients (padded to world() chunks; allocated once: every
  // collective of a step runs in place in them), and the has-a-gradient flags' buffer.
  Tensors flat_;
  Tensor flags_;
  // The step in flight: which parameters backward has made, and which buckets have started.
  std::unordered_map<const TensorImpl*, size_t> index_;  // parameter -> index in params_
  std::vector<size_t> bucket_of_;
  std::vector<char> ready_, started_, stale_;
  std::vector<char> has_grad_;  // per parameter: a gradient on some rank this step
  std::vector<size_t> ready_count_;
  std::function<double()> share_;
  bool watching_ = false;
  double comm_seconds_ = 0, exposed_seconds_ = 0;
  // The communication thread and its queue of buckets.
  std::thread comm_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::deque<size_t> queue_;
  size_t in_flight_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace spool::dist
