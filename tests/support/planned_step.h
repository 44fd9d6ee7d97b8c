// What the planner tests share: a model of random linear layers staged as a chain or a graph
// (its parameters and gradients), and the check of one step under a policy at a budget.
#pragma once
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/planner/chain.h"
#include "engine/planner/planner.h"
#include "engine/rng.h"
#include "nn/linear.h"
#include "tests/support/helpers.h"

namespace spool::test_support {

// Linear layers and the chain (or graph) of stages built from them.
struct LinearStages {
  explicit LinearStages(uint64_t seed) : gen(seed) {}
  Generator gen;
  std::vector<std::shared_ptr<nn::Linear>> layers;
  Chain chain;

  Tensors params() const {
    Tensors p;
    for (const auto& l : layers)
      for (const auto& t : l->parameters()) p.push_back(t);
    return p;
  }
  void zero_grad() {
    for (auto& p : params()) p.impl().grad.reset();
  }
  std::vector<std::vector<float>> grads() const {
    std::vector<std::vector<float>> g;
    for (const auto& p : params()) g.push_back(p.grad().to_vector<float>());
    return g;
  }
};

// The plain step (every stage kept) of m's chain, the reference the planned steps are held to:
// it meets its own prediction to the byte; `grads` are its parameter gradients.
struct PlainReference {
  Plan none;
  StepResult step;
  std::vector<std::vector<float>> grads;
};
inline PlainReference plain_reference(LinearStages& m, const ChainProfile& prof) {
  PlainReference r;
  r.none = make_plan(prof, "none", kUnlimited);
  r.step = run_step(m.chain, prof, r.none);
  EXPECT_EQ(r.step.mismatch, "");
  EXPECT_EQ(r.step.measured_peak, r.step.predicted_peak);
  r.grads = m.grads();
  return r;
}

// Plans `policy` at `budget` and runs one step of m's chain from the generator state `start`.
// A budget below the policy's smallest is refused naming it (nullopt). Otherwise the step's
// measured peak equals the prediction and keeps to the budget, and its loss and gradients are
// bit for bit those of `ref` (the plain step's loss) and `ref_grads`.
inline std::optional<std::pair<Plan, StepResult>> checked_step(
    LinearStages& m, const ChainProfile& prof, const std::string& policy, int64_t budget,
    const RngState& start, double ref, const std::vector<std::vector<float>>& ref_grads) {
  if (budget < smallest_budget(prof, policy)) {
    EXPECT_NE(error_of([&] {
                make_plan(prof, policy, budget);
              }).find("smallest feasible budget for policy '" + policy + "'"),
              std::string::npos);
    return std::nullopt;
  }
  const Plan plan = make_plan(prof, policy, budget);
  m.zero_grad();
  m.gen.set_state(start);
  const StepResult r = run_step(m.chain, prof, plan);
  EXPECT_EQ(r.mismatch, "");
  EXPECT_EQ(r.measured_peak, plan.predicted_peak);
  EXPECT_EQ(r.predicted_peak, plan.predicted_peak);
  EXPECT_LE(r.measured_peak, budget);
  EXPECT_EQ(r.loss, ref);
  EXPECT_EQ(m.grads(), ref_grads) << plan.describe();
  return std::pair{plan, r};
}

}  // namespace spool::test_support
