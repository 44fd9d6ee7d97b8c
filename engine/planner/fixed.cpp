// The fixed policies: none (every stage kept), every-K (dropped segments of K stages; "every-k"
// means K = 2) and sqrt (segments of ceil(sqrt(n)) stages). They plan graphs too.
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/planner/internal.h"

namespace spool::planning {

int every_k(const std::string& policy) {
  if (policy == "every-k") return 2;
  if (policy.rfind("every-", 0) != 0) return 0;
  const std::string k = policy.substr(6);
  if (k.empty() || k.size() > 6 || k.find_first_not_of("0123456789") != std::string::npos) return 0;
  return std::stoi(k);
}

std::vector<Segment> fixed_for(const ChainProfile& p, const std::string& policy) {
  const int n = p.size() - 1;
  if (policy == "none") return fixed_segments(n, 0);
  if (policy == "sqrt")
    return fixed_segments(n, std::max(1, int(std::ceil(std::sqrt(double(std::max(n, 1)))))));
  return fixed_segments(n, every_k(policy));
}

namespace {

class FixedPolicy final : public PlanPolicy {
 public:
  using PlanPolicy::PlanPolicy;
  bool plans_graphs() const override { return true; }
  void plan(const ChainProfile& p, int64_t budget, const PlanOptions&, Plan& out) const override {
    out.segments = fixed_for(p, name());
    const int64_t peak = evaluate(p, out).predicted_peak;
    if (peak > budget) infeasible(name(), budget, peak);
  }
  int64_t smallest_budget(const ChainProfile& p, const PlanOptions&) const override {
    return static_peak(p, fixed_for(p, name()));
  }
};

}  // namespace

std::unique_ptr<PlanPolicy> make_fixed(const std::string& name) {
  if (name == "none" || name == "sqrt" || every_k(name) > 0)
    return std::make_unique<FixedPolicy>(name);
  return nullptr;
}

}  // namespace spool::planning
