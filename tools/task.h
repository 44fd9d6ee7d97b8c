// One model family's part of `spool train`, and the one loop that drives them all.
//
// A Task owns the model, its optimizer, the generator and the data, and knows the family's
// loss (a plain forward and backward, or the model's chain of stages under a memory plan), its
// held-out evaluation and its report. run_training() is the loop every family shares:
//   learning rate -> zero_grad -> Task::step -> divergence check -> gradient clipping
//   -> optimizer step -> evaluation when due -> log line -> progress bar,
// then --save, Task::finish (the final evaluation, the final log line and the printed summary)
// and the log's atomic commit. A run logs step 0, every --log-every-th step, every step after
// which it evaluated and its last step.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "engine/rng.h"
#include "nn/module.h"
#include "nn/optim.h"
#include "tools/cli.h"
#include "tools/train.h"

namespace spool::cli {

class PlannedSteps;

// Named metrics of a step or an evaluation ("loss" among them for a step).
using Metrics = std::map<std::string, double>;

class Task {
 public:
  virtual ~Task() = default;

  // Forward and backward of step `step` (0-based) on its batch; returns its metrics, "loss"
  // among them. Under a plan (`planned` not null) the step runs as the model's chain;
  // `zero_grad` clears the gradients of its profiling step.
  virtual Metrics step(int64_t step, PlannedSteps* planned,
                       const std::function<void()>& zero_grad) = 0;
  // The held-out metrics, for tasks that evaluate every `eval_every` steps.
  virtual Metrics evaluate() { return {}; }
  // Before the first step; returns the held-out metrics measured there, if any (the preference
  // tasks evaluate and log them at step 0).
  virtual Metrics start(LineLog&) { return {}; }
  // A logged step's line: by default "step", "loss", "lr" (when scheduled) and, when the step
  // evaluated, the evaluation's metrics as they are named (`eval` is empty otherwise).
  virtual Json log_line(int64_t step, const Metrics& m, const Metrics& eval) const;
  // The progress bar's status after a step (`eval`: the latest evaluation): by default the loss.
  virtual std::string status(const Metrics& m, const Metrics& eval) const;
  // After the loop and --save: the final evaluation, the final log line and the summary.
  // `steps` were done; `eval` is the latest evaluation (start()'s when none ran in the loop);
  // `train_seconds` is the loop's time, `t0` when it began.
  virtual void finish(LineLog& log, int64_t steps, const Metrics& last, const Metrics& eval,
                      double train_seconds, double t0) = 0;

  nn::Module& model() { return *model_; }
  nn::Optimizer& optimizer() { return *opt_; }
  Generator& generator() { return gen_; }

  int64_t total = 0;       // steps asked for
  int64_t start_step = 0;  // > 0 when resumed
  // The learning rate of each step; none: the optimizer's as it was built.
  std::optional<nn::CosineSchedule> schedule;
  double clip_norm = 0;        // clip the gradients' global norm to this; 0: no clipping
  int64_t eval_every = 0;      // 0: the task evaluates only in finish()
  bool stops_on_time = false;  // --time-limit ends the loop (the cosine follows the time)
  // Under --time-limit: false, the warm-up counts steps and the cosine follows the share of the
  // time done (gpt: a warm-up of at most 100 steps); true, the whole schedule, warm-up included,
  // is read at the step the share of time done corresponds to (the video schedule, whose
  // warm-up is 1/20 of --steps: a time-bounded run sets --steps high and would otherwise never
  // leave it).
  bool schedule_by_time = false;
  // This rank's share of the global batch's loss, set by step(): its rows (or counted targets)
  // over the global batch's. 1 for one process.
  double share = 1;

  // Rows [first, end) of a global batch of n rows that are this rank's (the ranks take equal
  // runs, the first ones one row fewer when n does not divide); sets `share` to their fraction.
  std::pair<int64_t, int64_t> my_rows(int64_t n);

 protected:
  explicit Task(const TrainConfig& c) : c_(c), gen_(c.seed) {}
  // The final log line's opening: {"final": true, "model": ..., "steps": steps}.
  Json final_line(int64_t steps) const {
    return Json().add("final", true).add("model", c_.model).add("steps", steps);
  }
  const TrainConfig& c_;
  Generator gen_;
  std::shared_ptr<nn::Module> model_;
  std::unique_ptr<nn::Optimizer> opt_;
};

// The task of c.model's family (tools/models.h), its data read and its model built.
std::unique_ptr<Task> make_task(const TrainConfig& c);
std::unique_ptr<Task> make_classifier_task(const TrainConfig& c);
std::unique_ptr<Task> make_gpt_task(const TrainConfig& c);
std::unique_ptr<Task> make_sft_task(const TrainConfig& c);
std::unique_ptr<Task> make_dpo_task(const TrainConfig& c);
std::unique_ptr<Task> make_reward_task(const TrainConfig& c);
std::unique_ptr<Task> make_ppo_task(const TrainConfig& c);
std::unique_ptr<Task> make_video_task(const TrainConfig& c);

// The loop above; returns the process's exit status (0).
int run_training(Task& task, const TrainConfig& c);

}  // namespace spool::cli
