// Training under a checkpoint plan (spool train --checkpoint-policy P --memory-budget B), and the
// budget syntax shared with spool memstudy.
#pragma once
#include <functional>
#include <map>
#include <string>

#include "engine/planner/planner.h"

namespace spool::cli {

// A budget: bytes ("123456789"), or a fraction ("0.5", "1/3") of the plain step's activation
// memory on top of what every plan holds (parameters, optimizer state, batch, gradients).
struct BudgetSpec {
  std::string text;
  double fraction = -1;  // < 0: bytes
  int64_t bytes = 0;
  int64_t resolve(const ChainProfile& profile) const;
};
// Throws UsageError naming the text when it is neither.
BudgetSpec parse_budget(const std::string& text, const std::string& command);

class Args;
// --stem-groups K (1 when absent): the groups a ResNet stem's backward replays (the standard
// configurations' stems have 64 channels, which K must divide; UsageError naming it otherwise).
int64_t parse_stem_groups(const Args& a, const std::string& command);

class PlannedSteps {
 public:
  PlannedSteps(std::string policy, const std::string& budget);
  // One forward and backward of `chain` under the plan; returns the loss. The first batch of
  // each shape (`key`) is profiled (one extra plain step, its gradients cleared by zero_grad)
  // and planned; the plan is printed once.
  // With `reference` (the model's standard staging, when `chain` stages it otherwise), a
  // budget given as a fraction is of the reference's plain activations, as in memstudy.
  double step(Chain& chain, const std::string& key, const std::function<void()>& zero_grad,
              Chain* reference = nullptr);

 private:
  struct Entry {
    ChainProfile profile;
    Plan plan;
  };
  std::string policy_;
  BudgetSpec budget_;
  std::map<std::string, Entry> plans_;
};

}  // namespace spool::cli
