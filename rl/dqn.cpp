#include "rl/dqn.h"

#include <algorithm>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/factory.h"
#include "nn/optim.h"
#include "ops/ops.h"

namespace spool::rl {

namespace {

// A ring of transitions (s, a, r, s', s' terminal).
class ReplayBuffer {
 public:
  ReplayBuffer(int64_t capacity, int64_t obs) : capacity_(capacity), obs_(obs) {}
  void add(const std::vector<float>& s, int a, double r, const std::vector<float>& next,
           bool terminal) {
    const size_t i = size_t(next_ % capacity_);
    if (size_ < capacity_) {
      s_.resize(s_.size() + size_t(obs_));
      next_s_.resize(next_s_.size() + size_t(obs_));
      a_.push_back(0);
      r_.push_back(0);
      alive_.push_back(0);
      ++size_;
    }
    std::copy(s.begin(), s.end(), s_.begin() + ptrdiff_t(i * size_t(obs_)));
    std::copy(next.begin(), next.end(), next_s_.begin() + ptrdiff_t(i * size_t(obs_)));
    a_[i] = a;
    r_[i] = float(r);
    alive_[i] = terminal ? 0.0f : 1.0f;
    ++next_;
  }
  int64_t size() const { return size_; }
  struct Batch {
    Tensor s, a, r, next, alive;
  };
  Batch sample(int64_t n, Sampler& rng) const {
    std::vector<float> s, next, r, alive;
    std::vector<int64_t> a;
    for (int64_t k = 0; k < n; ++k) {
      const size_t i = size_t(rng.below(size_));
      s.insert(s.end(), s_.begin() + ptrdiff_t(i * size_t(obs_)),
               s_.begin() + ptrdiff_t((i + 1) * size_t(obs_)));
      next.insert(next.end(), next_s_.begin() + ptrdiff_t(i * size_t(obs_)),
                  next_s_.begin() + ptrdiff_t((i + 1) * size_t(obs_)));
      a.push_back(a_[i]);
      r.push_back(r_[i]);
      alive.push_back(alive_[i]);
    }
    return {from_vector(s, {n, obs_}), from_vector(a, {n, 1}), from_vector(r),
            from_vector(next, {n, obs_}), from_vector(alive)};
  }

 private:
  int64_t capacity_, obs_, size_ = 0, next_ = 0;
  std::vector<float> s_, next_s_, r_, alive_;
  std::vector<int64_t> a_;
};

}  // namespace

DqnRun train_dqn(Environment& env, nn::Module& q, nn::Module& target, const DqnOptions& o) {
  SPOOL_CHECK(o.steps >= 1 && o.buffer >= 1 && o.batch >= 1 && o.lr > 0 && o.target_every >= 1 &&
                  o.epsilon_steps >= 1,
              "dqn: steps ", o.steps, ", buffer ", o.buffer, ", batch ", o.batch, ", lr ", o.lr,
              ", target every ", o.target_every, ", epsilon steps ", o.epsilon_steps);
  SPOOL_CHECK(
      o.epsilon_start >= 0 && o.epsilon_start <= 1 && o.epsilon_end >= 0 && o.epsilon_end <= 1,
      "dqn: epsilon must stay in [0, 1]");
  target.load_state_dict(q.state_dict());
  Sampler rng(o.seed);
  nn::Adam opt({{q.parameters(), {}}}, {.lr = o.lr});
  ReplayBuffer replay(o.buffer, env.observation_size());
  const int64_t n = env.observation_size();
  DqnRun run;
  std::vector<float> s = env.reset(rng);
  double episode_return = 0;
  int64_t episode_steps = 0;
  for (int64_t step = 1; step <= o.steps; ++step) {
    const double share = std::min(1.0, double(step - 1) / double(o.epsilon_steps));
    const double epsilon = o.epsilon_start + (o.epsilon_end - o.epsilon_start) * share;
    int a;
    if (rng.uniform() < epsilon) {
      a = int(rng.below(env.actions()));
    } else {
      NoGrad no_grad;
      const auto values = q.forward(from_vector(s, {1, n})).to_vector<float>();
      a = int(std::max_element(values.begin(), values.end()) - values.begin());
    }
    EnvStep st = env.step(a, rng);
    replay.add(s, a, st.reward, st.observation, st.done);
    episode_return += st.reward;
    ++episode_steps;
    s = std::move(st.observation);
    if (st.done || episode_steps == env.max_steps()) {
      run.returns.push_back(episode_return);
      run.lengths.push_back(episode_steps);
      episode_return = 0;
      episode_steps = 0;
      s = env.reset(rng);
    }
    if (step >= o.learn_start && replay.size() >= o.batch) {
      const auto b = replay.sample(o.batch, rng);
      Tensor y;
      {
        NoGrad no_grad;
        const Tensor best = max(target.forward(b.next), {1});
        y = b.r + best * b.alive * env.gamma();
      }
      const Tensor chosen = reshape(gather(q.forward(b.s), 1, b.a), {o.batch});
      const Tensor loss = mse_loss(chosen, y);
      opt.zero_grad();
      backward(loss);
      opt.step();
      run.losses.push_back(loss.item());
    }
    if (step % o.target_every == 0) target.load_state_dict(q.state_dict());
  }
  return run;
}

}  // namespace spool::rl
