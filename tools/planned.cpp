#include "tools/planned.h"

#include <cstdio>
#include <cstdlib>

#include "engine/autograd.h"
#include "tools/cli.h"

namespace spool::cli {

int64_t BudgetSpec::resolve(const ChainProfile& profile) const {
  if (fraction < 0) return bytes;
  const int64_t fixed = profile.base_bytes + profile.param_grad_bytes;
  const int64_t plain = make_plan(profile, "none", kUnlimited).predicted_peak;
  return fixed + int64_t(double(plain - fixed) * fraction);
}

BudgetSpec parse_budget(const std::string& s, const std::string& command) {
  BudgetSpec b{s};
  char* end = nullptr;
  if (auto slash = s.find('/'); slash != std::string::npos) {
    const std::string num_s = s.substr(0, slash), den_s = s.substr(slash + 1);
    const double num = std::strtod(num_s.c_str(), &end);
    const bool num_ok = !num_s.empty() && *end == 0;
    const double den = std::strtod(den_s.c_str(), &end);
    if (num_ok && !den_s.empty() && *end == 0 && num > 0 && den > 0) b.fraction = num / den;
  } else if (s.find('.') != std::string::npos || s == "1") {
    const double f = std::strtod(s.c_str(), &end);
    if (!s.empty() && *end == 0 && f > 0) b.fraction = f;
  } else {
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && *end == 0 && v > 0) b.bytes = v;
  }
  if (b.fraction < 0 && b.bytes == 0)
    throw UsageError(command + ": budget '" + s +
                     "' is neither a byte count nor a fraction (0.5, 1/3) of the plain step's "
                     "activation memory");
  return b;
}

int64_t parse_stem_groups(const Args& a, const std::string& command) {
  const int64_t k = a.has("stem-groups") ? a.positive_int("stem-groups", 1) : 1;
  if (64 % k != 0)
    throw UsageError(command + ": --stem-groups " + std::to_string(k) +
                     " must divide the stem's 64 channels (1, 2, 4, 8, 16, 32 or 64)");
  return k;
}

PlannedSteps::PlannedSteps(std::string policy, const std::string& budget)
    : policy_(std::move(policy)), budget_(parse_budget(budget, "train")) {
  if (!known_policy(policy_))
    throw UsageError("train: unknown checkpoint policy '" + policy_ +
                     "' (known: " + policy_names() + ")");
}

double PlannedSteps::step(Chain& chain, const std::string& key,
                          const std::function<void()>& zero_grad, Chain* reference) {
  auto it = plans_.find(key);
  if (it == plans_.end()) {
    // The profile's extra step is this rank's alone: data parallel's hook (which would reduce
    // its gradients with the other ranks') is set aside while it runs.
    struct HookAside {
      GradReadyHook saved = set_grad_ready_hook({});
      ~HookAside() { set_grad_ready_hook(std::move(saved)); }
    } aside;
    Entry e;
    e.profile = profile_chain(chain);
    zero_grad();
    int64_t budget = budget_.resolve(e.profile);
    if (reference && budget_.fraction >= 0) {
      budget = budget_.resolve(profile_chain(*reference));
      zero_grad();
    }
    e.plan = make_plan(e.profile, policy_, budget);
    std::printf(
        "checkpoint plan (%s, budget %lld bytes): %s; predicted peak %lld bytes (%s), "
        "recompute %.3g GFLOP%s%s\n",
        policy_.c_str(), (long long)budget, e.plan.describe().c_str(),
        (long long)e.plan.predicted_peak, e.plan.peak_at.c_str(), e.plan.recompute_flops / 1e9,
        e.plan.note.empty() ? "" : "; ", e.plan.note.c_str());
    it = plans_.emplace(key, std::move(e)).first;
  }
  return run_step(chain, it->second.profile, it->second.plan).loss;
}

}  // namespace spool::cli
