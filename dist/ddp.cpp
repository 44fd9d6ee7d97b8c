#include "dist/ddp.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <utility>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/clock.h"
#include "engine/error.h"
#include "engine/factory.h"
#include "ops/elementwise.h"
#include "ops/shape.h"

namespace spool::dist {

namespace {

// Elements [start, start + n) of contiguous `t`, as a 1-D view.
Tensor flat_view(const Tensor& t, int64_t start, int64_t n) {
  return Tensor::make(t.storage(), t.offset() + start, {n}, {1}, t.dtype());
}

float* f32(const Tensor& t) { return t.data<float>(); }

}  // namespace

DataParallel::DataParallel(ProcessGroup& group, nn::Module& model, nn::Optimizer& opt,
                           DataParallelOptions options)
    : g_(group),
      buckets_group_(group.duplicate()),
      model_(model),
      opt_(opt),
      o_(options),
      params_(opt.params()) {
  SPOOL_CHECK(o_.bucket_mb > 0 && std::isfinite(o_.bucket_mb), "data parallel: --bucket-mb ",
              o_.bucket_mb, " must be a positive number");
  SPOOL_CHECK(o_.zero == 0 || o_.zero == 1, "data parallel: --zero ", o_.zero,
              " is not a ZeRO stage spool has (0 or 1)");
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    SPOOL_CHECK(p.device() == Device::cpu() && p.dtype() == DType::f32 && p.is_contiguous(),
                "data parallel: parameter ", i, " is ", describe(p), " on ", p.device().str(),
                "; data parallel over MPI takes contiguous f32 parameters on the cpu");
  }
  // Buckets: consecutive parameters up to the cap; one larger than the cap is a bucket alone.
  const double cap = o_.bucket_mb * 1e6 / 4;  // elements
  for (size_t i = 0; i < params_.size(); ++i) {
    const int64_t n = params_[i].numel();
    if (buckets_.empty() || (buckets_.back().numel > 0 && double(buckets_.back().numel + n) > cap))
      buckets_.emplace_back();
    Bucket& b = buckets_.back();
    b.params.push_back(i);
    b.offset.push_back(b.numel);
    b.numel += n;
  }
  for (Bucket& b : buckets_) b.chunk = (b.numel + g_.world() - 1) / g_.world();
  bucket_of_.resize(params_.size());
  for (size_t k = 0; k < buckets_.size(); ++k)
    for (size_t i : buckets_[k].params) bucket_of_[i] = k;
  for (size_t i = 0; i < params_.size(); ++i) index_[params_[i].impl_ptr().get()] = i;
  // The buckets' flat buffers live as long as this: a step allocates nothing for its
  // collectives (they run in place in them), so the memory planner's account of a step, which
  // counts them in what is live at its start, holds per rank (docs/distributed.md).
  for (const Bucket& b : buckets_) flat_.push_back(zeros({b.chunk * g_.world()}));
  flags_ = empty({int64_t(params_.size())});
  ready_.assign(params_.size(), 0);
  has_grad_.assign(params_.size(), 1);
  ready_count_.assign(buckets_.size(), 0);
  started_.assign(buckets_.size(), 0);
  stale_.assign(buckets_.size(), 0);
  if (o_.zero == 1) {
    grad_chunk_.resize(buckets_.size());
    // This rank's pieces, as 1-D views of the parameters, each in a group of its own with its
    // parameter's weight decay; the shard optimizer steps them.
    std::vector<nn::ParamGroup> groups;
    for (size_t k = 0; k < buckets_.size(); ++k)
      for_each_piece(buckets_[k], g_.rank(), [&](size_t i, int64_t at, int64_t c, int64_t n) {
        pieces_.push_back({k, i, at, c, n});
        views_.push_back(flat_view(params_[i], at, n));
        groups.push_back({{views_.back()}, opt_.weight_decay_of(i)});
      });
    shard_ = opt_.like(std::move(groups));
    split_state();
  }
}

template <class F>
void DataParallel::for_each_piece(const Bucket& b, int rank, F&& f) const {
  const int64_t lo = rank * b.chunk, hi = std::min(b.numel, lo + b.chunk);
  for (size_t j = 0; j < b.params.size(); ++j) {
    const int64_t start = b.offset[j], end = start + params_[b.params[j]].numel();
    const int64_t s = std::max(start, lo), e = std::min(end, hi);
    if (s < e) f(b.params[j], s - start, s - lo, e - s);
  }
}

void DataParallel::broadcast_state() {
  NoGrad no_grad;
  for (Tensor& p : params_) {
    g_.broadcast(p, 0);
    p.storage()->bump_version();
  }
  broadcast_buffers();
}

void DataParallel::broadcast_buffers() {
  NoGrad no_grad;
  for (auto& [name, t] : model_.named_buffers()) {
    SPOOL_CHECK(t.device() == Device::cpu() && t.is_contiguous(), "data parallel: buffer ", name,
                " ", describe(t), " is not a contiguous cpu tensor");
    if (t.dtype() == DType::f32 || t.dtype() == DType::f64 || t.dtype() == DType::i64) {
      Tensor b = t;
      g_.broadcast(b, 0);
      t.storage()->bump_version();
    }
  }
}

void DataParallel::flatten(size_t k, double share) {
  const Bucket& b = buckets_[k];
  const float w = float(share);
  float* f = f32(flat_[k]);
  for (size_t j = 0; j < b.params.size(); ++j) {
    const Tensor& p = params_[b.params[j]];
    const int64_t n = p.numel(), off = b.offset[j];
    Tensor grad = p.grad();
    if (!grad.defined()) {
      std::memset(f + off, 0, size_t(n) * 4);
      continue;
    }
    SPOOL_CHECK(grad.dtype() == DType::f32 && grad.device() == Device::cpu(),
                "data parallel: the gradient of parameter ", b.params[j], " is ", describe(grad));
    const Tensor gc = grad.is_contiguous() ? grad : contiguous(grad);
    const float* src = f32(gc);
    if (w == 0.0f)  // a rank with no share (no counted targets): nothing, even from a NaN loss
      std::memset(f + off, 0, size_t(n) * 4);
    else if (w == 1.0f)
      std::memcpy(f + off, src, size_t(n) * 4);
    else
      for (int64_t i = 0; i < n; ++i) f[off + i] = w * src[i];
  }
  std::memset(f + b.numel, 0, size_t(b.chunk * g_.world() - b.numel) * 4);
}

Tensor DataParallel::my_chunk(size_t k) const {
  return flat_view(flat_[k], g_.rank() * buckets_[k].chunk, buckets_[k].chunk);
}

void DataParallel::reduce(size_t k) {
  const double t0 = now_ms();
  // Reduce-scatter into this rank's chunk of the bucket, in place; ZeRO-1 steps that chunk,
  // replicated training all-gathers the sums back into the whole bucket, in place too.
  Tensor mine = my_chunk(k);
  buckets_group_->reduce_scatter_sum(flat_[k], mine);
  if (o_.zero == 1)
    grad_chunk_[k] = mine;
  else
    buckets_group_->all_gather(mine, flat_[k]);
  comm_seconds_ += (now_ms() - t0) / 1000;
}

void DataParallel::launch(size_t k) {
  flatten(k, share_());
  started_[k] = 1;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(k);
    ++in_flight_;
  }
  cv_.notify_one();
}

void DataParallel::comm_loop() {
  for (;;) {
    size_t k;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_
      k = queue_.front();
      queue_.pop_front();
    }
    try {
      if (!error_) reduce(k);
    } catch (...) {
      error_ = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      --in_flight_;
    }
    done_cv_.notify_all();
  }
}

DataParallel::~DataParallel() {
  if (watching_) set_grad_ready_hook({});
  if (comm_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      in_flight_ -= queue_.size();
      queue_.clear();  // an error ended the step: its buckets are not reduced
    }
    cv_.notify_all();
    comm_.join();
  }
}

void DataParallel::begin_step(std::function<double()> share) {
  if (!o_.overlap || !g_.serialized_threads()) return;
  share_ = std::move(share);
  std::fill(ready_.begin(), ready_.end(), 0);
  std::fill(started_.begin(), started_.end(), 0);
  std::fill(stale_.begin(), stale_.end(), 0);
  std::fill(ready_count_.begin(), ready_count_.end(), 0);
  if (!comm_.joinable()) comm_ = std::thread([this] { comm_loop(); });
  watching_ = true;
  set_grad_ready_hook([this](TensorImpl& leaf) {
    auto it = index_.find(&leaf);
    if (it == index_.end()) return;  // not one of the optimizer's parameters
    const size_t i = it->second, k = bucket_of_[i];
    if (ready_[i]) {  // a second backward added to it: reduce its bucket again at the end
      if (started_[k]) stale_[k] = 1;
      return;
    }
    ready_[i] = 1;
    if (++ready_count_[k] == buckets_[k].params.size()) launch(k);
  });
}

void DataParallel::reduce_gradients(double share) {
  NoGrad no_grad;
  if (watching_) {
    set_grad_ready_hook({});
    watching_ = false;
    // Wait for the buckets backward started; what is left of the communication was not hidden.
    const double t0 = now_ms();
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return in_flight_ == 0; });
    exposed_seconds_ += (now_ms() - t0) / 1000;
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  } else {
    std::fill(started_.begin(), started_.end(), 0);
  }
  // Which parameters have a gradient on some rank: the others stay without one, so the optimizer
  // skips them as one process would.
  for (size_t i = 0; i < params_.size(); ++i) f32(flags_)[i] = params_[i].grad().defined();
  g_.all_reduce_sum(flags_);
  for (size_t i = 0; i < params_.size(); ++i) has_grad_[i] = f32(flags_)[i] > 0;
  // The buckets not started (or overtaken by a later gradient) are reduced here.
  for (size_t k = 0; k < buckets_.size(); ++k)
    if (!started_[k] || stale_[k]) {
      const double t0 = now_ms();
      flatten(k, share);
      reduce(k);
      exposed_seconds_ += (now_ms() - t0) / 1000;
    }
  for (size_t k = 0; k < buckets_.size(); ++k) {
    const Bucket& b = buckets_[k];
    if (o_.zero == 1) {
      // The whole gradients are not needed again: only this rank's chunks are stepped.
      for (size_t i : b.params) params_[i].impl().grad.reset();
      continue;
    }
    const float* f = f32(flat_[k]);
    for (size_t j = 0; j < b.params.size(); ++j) {
      const Tensor& p = params_[b.params[j]];
      if (!has_grad_[b.params[j]]) {
        p.impl().grad.reset();
        continue;
      }
      Tensor grad = p.grad();
      if (!grad.defined() || !grad.is_contiguous()) {
        grad = empty_like(p);
        const_cast<Tensor&>(p).set_grad(grad);
      }
      std::memcpy(grad.raw(), f + b.offset[j], size_t(p.numel()) * 4);
      grad.storage()->bump_version();
    }
  }
}

double DataParallel::clip_grad_norm(double max_norm) {
  if (o_.zero == 0) return nn::clip_grad_norm(params_, max_norm);
  SPOOL_CHECK(max_norm > 0, "clip_grad_norm: max_norm ", max_norm, " must be positive");
  // The chunks' squares held exactly (nn::SquareSum) and summed over ranks as exact integer
  // limbs: the norm is the one nn::clip_grad_norm finds over the whole gradients, bit for bit,
  // and so is the scale, applied by the same kernel.
  nn::SquareSum local;
  for (const Tensor& c : grad_chunk_) {
    SPOOL_CHECK(c.defined(), "data parallel: clip_grad_norm before reduce_gradients");
    local.add(f32(c), c.numel());
  }
  const std::vector<double> limbs = local.limbs();
  Tensor t = from_vector<double>(limbs, {int64_t(limbs.size())});
  g_.all_reduce_sum(t);
  const double norm = std::sqrt(nn::SquareSum::from_limbs(t.data<double>()).value());
  if (norm > max_norm) {
    NoGrad no_grad;
    const double scale = nn::clip_scale(norm, max_norm);
    for (const Tensor& c : grad_chunk_) mul_(c, scale);
  }
  return norm;
}

void DataParallel::step() {
  if (o_.zero == 0) {
    opt_.step();
    return;
  }
  NoGrad no_grad;
  for (size_t k = 0; k < buckets_.size(); ++k)
    SPOOL_CHECK(grad_chunk_[k].defined(), "data parallel: step before reduce_gradients");
  // The shard optimizer steps this rank's pieces at the optimizer's rate and step count.
  for (size_t j = 0; j < pieces_.size(); ++j) {
    const Piece& q = pieces_[j];
    if (has_grad_[q.param]) views_[j].set_grad(flat_view(grad_chunk_[q.bucket], q.in_chunk, q.n));
  }
  shard_->set_lr(opt_.lr());
  shard_->set_steps(opt_.steps());
  shard_->step();
  opt_.set_steps(shard_->steps());
  for (Tensor& v : views_) v.impl().grad.reset();
  // Every rank's chunks, updated, to every rank: gathered in place in the buckets' buffers, whose
  // gradients are spent (a chunk's padding is never read back).
  for (size_t k = 0; k < buckets_.size(); ++k) {
    const Bucket& b = buckets_[k];
    Tensor mine = my_chunk(k);
    const Tensor& whole = flat_[k];
    for (const Piece& q : pieces_)
      if (q.bucket == k)
        std::memcpy(f32(mine) + q.in_chunk, f32(params_[q.param]) + q.at, size_t(q.n) * 4);
    grad_chunk_[k] = Tensor();
    g_.all_gather(mine, flat_[k]);
    for (size_t j = 0; j < b.params.size(); ++j) {
      const Tensor& p = params_[b.params[j]];
      std::memcpy(p.raw(), f32(whole) + b.offset[j], size_t(p.numel()) * 4);
      p.storage()->bump_version();
    }
  }
}

double DataParallel::weighted_sum(double value, double share) {
  Tensor t = full({1}, share == 0 ? 0.0 : value * share, DType::f64);
  g_.all_reduce_sum(t);
  return t.item();
}

void DataParallel::gather_state() {
  if (o_.zero == 0 || opt_.steps() == 0) return;
  // Each slot's chunks, gathered bucket by bucket into whole per-parameter tensors.
  std::map<std::string, Tensor> mine;
  for (const auto& [name, t] : shard_->state()) mine[name] = t;
  nn::NamedTensors whole_state;
  for (const std::string& slot : opt_.slots()) {
    Tensors whole_params(params_.size());
    for (size_t i = 0; i < params_.size(); ++i) whole_params[i] = zeros(params_[i].shape());
    for (size_t k = 0; k < buckets_.size(); ++k) {
      const Bucket& b = buckets_[k];
      Tensor chunk = zeros({b.chunk}), whole = empty({b.chunk * g_.world()});
      for (size_t j = 0; j < pieces_.size(); ++j) {
        const Piece& q = pieces_[j];
        auto it = mine.find(std::to_string(j) + "." + slot);
        if (q.bucket == k && it != mine.end())
          std::memcpy(f32(chunk) + q.in_chunk, f32(contiguous(it->second)), size_t(q.n) * 4);
      }
      g_.all_gather(chunk, whole);
      for (size_t j = 0; j < b.params.size(); ++j)
        std::memcpy(whole_params[b.params[j]].raw(), f32(whole) + b.offset[j],
                    size_t(params_[b.params[j]].numel()) * 4);
    }
    for (size_t i = 0; i < params_.size(); ++i)
      whole_state.emplace_back(std::to_string(i) + "." + slot, whole_params[i]);
  }
  whole_state.emplace_back("step", full({}, double(opt_.steps()), DType::i64));
  opt_.load_state(whole_state);
}

void DataParallel::release_state() {
  if (o_.zero == 0) return;
  opt_.load_state({{"step", full({}, double(opt_.steps()), DType::i64)}});
}

void DataParallel::split_state() {
  // The whole state (loaded from a checkpoint, or empty) sliced into this rank's pieces.
  std::map<std::string, Tensor> whole;
  for (const auto& [name, t] : opt_.state()) whole[name] = t;
  nn::NamedTensors pieces;
  for (const std::string& slot : opt_.slots())
    for (size_t j = 0; j < pieces_.size(); ++j) {
      const Piece& q = pieces_[j];
      auto it = whole.find(std::to_string(q.param) + "." + slot);
      if (it == whole.end()) continue;
      const Tensor flat = contiguous(to(it->second, Device::cpu()));
      pieces.emplace_back(std::to_string(j) + "." + slot, clone(flat_view(flat, q.at, q.n)));
    }
  pieces.emplace_back("step", full({}, double(opt_.steps()), DType::i64));
  shard_->load_state(pieces);
  release_state();
}

int64_t DataParallel::moment_bytes() const {
  int64_t bytes = 0;
  for (const auto& [name, t] : shard_ ? shard_->state() : opt_.state())
    if (name != "step") bytes += int64_t(t.nbytes());
  return bytes;
}

}  // namespace spool::dist
