// A policy of the memory planner, and the registry make_plan and smallest_budget find policies in
// (engine/planner/planner.cpp). Each policy is one file of engine/planner/ (docs/contributing.md).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/planner/planner.h"

namespace spool {

class PlanPolicy {
 public:
  explicit PlanPolicy(std::string name) : name_(std::move(name)) {}
  virtual ~PlanPolicy() = default;
  // The name the policy was asked for ("every-3"), for messages.
  const std::string& name() const { return name_; }
  // Whether it plans graphs of stages (stages that read several boundaries). make_plan and
  // smallest_budget refuse a graph to a policy that does not, naming a stage that makes it one.
  virtual bool plans_graphs() const = 0;
  // Fills `out` (segments; or dynamic, the peak and recompute filled in; note, gap) for `budget`,
  // or throws spool::Error naming the smallest feasible budget when it cannot meet it. make_plan
  // then evaluates a static plan on the profile (evaluate(): the single truth of its peak).
  virtual void plan(const ChainProfile& p, int64_t budget, const PlanOptions& o,
                    Plan& out) const = 0;
  // The least budget the policy can meet on the profile.
  virtual int64_t smallest_budget(const ChainProfile& p, const PlanOptions& o) const = 0;

 private:
  std::string name_;
};

// One family of policies: its factory returns the policy `name` asks for, or null when the name
// is not one of this family's ("every-3" is fixed's, "dp" is dp's).
struct PolicyEntry {
  const char* names;  // as messages list them
  std::unique_ptr<PlanPolicy> (*make)(const std::string& name);
};
const std::vector<PolicyEntry>& policy_registry();
// The policy `name` asks for; spool::Error listing the known ones when there is none.
std::unique_ptr<PlanPolicy> find_policy(const std::string& name);

}  // namespace spool
