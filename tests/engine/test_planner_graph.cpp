// The planner on graphs of stages (stages that read several earlier boundaries): the executor's
// gradients equal one plain autograd backward of the whole model, every policy that plans graphs
// meets its prediction to the byte within the budget with bit-identical gradients, ilp finds the
// optimum that an enumeration of every segmentation finds (and dp's optimum on chains), and the
// chain-only policies refuse graphs by name.
#include <gtest/gtest.h>

#include <functional>
#include <random>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/factory.h"
#include "engine/planner/chain.h"
#include "engine/planner/planner.h"
#include "models/resnet.h"
#include "models/video.h"
#include "nn/linear.h"
#include "ops/ops.h"
#include "tests/support/helpers.h"
#include "tests/support/planned_step.h"
#include "tests/support/synthetic_profile.h"

using namespace spool;

namespace {

// A graph of random widths: stage i reads x_i and some earlier boundaries, projects each to its
// width and adds them, then an activation (some with dropout); the last stage is a cross-entropy.
struct RandomGraph : test_support::LinearStages {
  Tensor x, labels;

  RandomGraph(uint64_t seed, int n, int skips) : LinearStages(seed) {
    std::mt19937 r{uint32_t(seed) * 7919u + 1};
    std::vector<int64_t> width{8 + int64_t(r() % 24)};
    const int64_t batch = 12;
    x = randn({batch, width[0]}, DType::f32, &gen);
    std::vector<int64_t> lab(batch);
    for (auto& v : lab) v = int64_t(r() % 5);
    labels = from_vector(lab, {batch});
    chain.input = x;
    chain.generators = {&gen};
    for (int i = 0; i < n; ++i) {
      const bool last = i == n - 1;
      const int64_t out = last ? 5 : 8 + int64_t(r() % 56);
      std::vector<int> in{i};
      for (int k = 0; k < skips && i > 0; ++k)
        if (r() % 2) in.push_back(int(r() % uint32_t(i)));
      std::sort(in.begin(), in.end());
      in.erase(std::unique(in.begin(), in.end()), in.end());
      std::vector<std::shared_ptr<nn::Linear>> proj;
      for (int j : in) {
        proj.push_back(std::make_shared<nn::Linear>(width[size_t(j)], out, j == i, &gen));
        layers.push_back(proj.back());
      }
      const int kind = int(r() % 3);
      Generator* g = &gen;
      Tensor y = labels;
      auto fn = [proj, kind, last, g, y](const Tensors& xs) {
        Tensor h = proj[0]->forward(xs[0]);
        for (size_t k = 1; k < xs.size(); ++k) h = h + proj[k]->forward(xs[k]);
        if (last) return cross_entropy(h, y);
        if (kind == 0) return relu(h);
        if (kind == 1) return dropout(gelu(h), 0.25, true, g);
        return tanh(h) * sigmoid(h);
      };
      chain.stages.push_back(Stage("s" + std::to_string(i), in, fn));
      width.push_back(out);
    }
  }
  // The whole model as one tape, one backward.
  double plain_step() {
    std::vector<Tensor> xs{x};
    for (const Stage& s : chain.stages) {
      Tensors in;
      for (int j : s.inputs) in.push_back(xs[size_t(j)]);
      xs.push_back(s.fn_inputs(in));
    }
    backward(xs.back());
    return xs.back().item();
  }
};

const std::vector<std::string> kGraphPolicies = {"none", "every-2", "sqrt", "greedy", "ilp", "dtr"};

// Every segmentation of n plannable stages (kept stages and dropped runs).
void segmentations(int n, int a, std::vector<Segment>& cur,
                   std::vector<std::vector<Segment>>& out) {
  if (a == n) {
    out.push_back(cur);
    return;
  }
  cur.push_back({a, a + 1, true});
  segmentations(n, a + 1, cur, out);
  cur.pop_back();
  for (int b = a + 1; b <= n; ++b) {
    cur.push_back({a, b, false});
    segmentations(n, b, cur, out);
    cur.pop_back();
  }
}

// A ResNet-18 of the given width with one batch of two images (size x size), from generators
// seed and seed + 1; take() returns its parameter gradients and clears them.
struct SmallResNet {
  SmallResNet(int64_t width, int64_t size, uint64_t seed, std::vector<int64_t> classes)
      : gen(seed), data(seed + 1) {
    models::ResNetConfig cfg;
    cfg.width = width;
    net = std::make_shared<models::ResNet>(cfg, &gen);
    images = randn({2, 3, size, size}, DType::f32, &data);
    labels = from_vector(classes, {2});
  }
  std::vector<std::vector<float>> take() {
    std::vector<std::vector<float>> g;
    for (const auto& p : net->parameters()) g.push_back(p.grad().to_vector<float>());
    net->zero_grad();
    return g;
  }
  Generator gen, data;
  std::shared_ptr<models::ResNet> net;
  Tensor images, labels;
};

using Grads = std::vector<std::vector<float>>;

// One step of a restaged chain (blocks split, the stem replayed in channel groups) under plan:
// measured = predicted within budget, the standard step's loss, and the gradients `take` gives
// equal to `own`, the staging's plain step's, bit for bit. The first call sets `own` and checks
// it against the standard chain's `ref`: bit for bit but the first tensor, conv1's weight (a
// group's GEMM has fewer rows), to 1e-5 of its largest entry.
void check_restaged_step(Chain& c, const ChainProfile& prof, const Plan& plan, int64_t budget,
                         double ref_loss, const Grads& ref, Grads& own,
                         const std::function<Grads()>& take) {
  const StepResult r = run_step(c, prof, plan);
  EXPECT_EQ(r.mismatch, "");
  EXPECT_EQ(r.measured_peak, plan.predicted_peak);
  EXPECT_LE(r.measured_peak, budget);
  EXPECT_EQ(r.loss, ref_loss);
  const Grads got = take();
  if (own.empty()) {
    own = got;
    ASSERT_EQ(got.size(), ref.size());
    float scale = 0;
    for (float v : ref[0]) scale = std::max(scale, std::abs(v));
    for (size_t e = 0; e < got[0].size(); ++e) EXPECT_NEAR(got[0][e], ref[0][e], 1e-5 * scale);
    for (size_t k = 1; k < got.size(); ++k) EXPECT_EQ(got[k], ref[k]) << "parameter " << k;
  }
  EXPECT_EQ(got, own) << plan.describe();
}

}  // namespace

TEST(PlannerGraph, ExecutorGradientsEqualOnePlainBackward) {
  RandomGraph g(11, 8, 2);
  ASSERT_FALSE(profile_chain(g.chain).is_chain());
  g.zero_grad();
  const RngState start = g.gen.state();
  const double loss = g.plain_step();
  const auto plain = g.grads();
  g.zero_grad();
  g.gen.set_state(start);
  const ChainProfile prof = profile_chain(g.chain);
  g.zero_grad();
  const StepResult r = run_step(g.chain, prof, make_plan(prof, "none", kUnlimited));
  EXPECT_EQ(r.mismatch, "");
  EXPECT_EQ(r.measured_peak, r.predicted_peak);
  EXPECT_NEAR(r.loss, loss, 1e-6 * std::abs(loss));
  // The executor adds a boundary's gradient parts in its own order (readers from the last
  // down), so sums may round differently from the tape's.
  const auto got = g.grads();
  ASSERT_EQ(got.size(), plain.size());
  for (size_t k = 0; k < got.size(); ++k)
    for (size_t e = 0; e < got[k].size(); ++e)
      ASSERT_NEAR(got[k][e], plain[k][e], 1e-5f * (1 + std::abs(plain[k][e])))
          << "parameter " << k << " element " << e;
}

TEST(PlannerGraph, EveryGraphPolicyMeetsItsPredictionToTheByte) {
  for (uint64_t seed : {1, 2, 3}) {
    RandomGraph g(seed, 7 + int(seed), 2);
    const RngState start = g.gen.state();
    g.zero_grad();
    const ChainProfile prof = profile_chain(g.chain);
    ASSERT_FALSE(prof.is_chain());
    g.zero_grad();
    const auto [none, ref, ref_grads] = test_support::plain_reference(g, prof);
    const int64_t lo = smallest_budget(prof, "ilp"), hi = none.predicted_peak;
    ASSERT_LT(lo, hi) << "seed " << seed;
    const std::vector<int64_t> budgets = {lo - 1, lo,        lo + (hi - lo) / 4, lo + (hi - lo) / 2,
                                          hi,     kUnlimited};
    for (const auto& policy : kGraphPolicies) {
      double last_cost = 1e300;
      int64_t last_peak = 0;
      std::vector<int64_t> bs = budgets;
      bs.insert(bs.begin() + 2, smallest_budget(prof, policy));  // its own smallest
      std::sort(bs.begin(), bs.end());
      for (int64_t budget : bs) {
        SCOPED_TRACE("seed " + std::to_string(seed) + " policy " + policy + " budget " +
                     std::to_string(budget));
        if (policy != "dtr") EXPECT_GE(smallest_budget(prof, policy), lo);  // ilp's is least
        const auto step =
            test_support::checked_step(g, prof, policy, budget, start, ref.loss, ref_grads);
        if (!step) continue;
        const auto& [plan, r] = *step;
        if (policy == "ilp") {
          EXPECT_EQ(plan.gap, 0) << plan.note;
          EXPECT_LE(plan.recompute_ms, last_cost + 1e-9);  // more budget never costs more
          last_cost = plan.recompute_ms;
          EXPECT_GE(r.measured_peak, last_peak);  // the peak does not fall as the budget grows
          last_peak = r.measured_peak;
          for (const char* h : {"greedy", "sqrt", "every-2"})
            if (budget >= smallest_budget(prof, h))
              EXPECT_LE(plan.recompute_ms, make_plan(prof, h, budget).recompute_ms + 1e-9) << h;
        }
      }
    }
  }
}

// On synthetic graphs small enough to enumerate every segmentation, ilp's plan is the cheapest
// one within the budget, its smallest budget is the least peak of any, and the plan's peak (the
// executor's simulation) is within the budget.
// A stage that reads earlier boundaries need not read its own predecessor: x_i is dropped from
// stage i's inputs wherever another stage reads it.
ChainProfile skipping_predecessors(ChainProfile p) {
  for (int i = 1; i < p.size(); ++i) {
    std::vector<int> in = p.inputs(i);
    if (in.size() < 2) continue;
    bool elsewhere = false;
    for (int c = 0; c < p.size(); ++c)
      if (c != i)
        for (int j : p.inputs(c)) elsewhere = elsewhere || j == i;
    if (!elsewhere) continue;
    in.erase(std::find(in.begin(), in.end(), i));
    p.stages[size_t(i)].inputs = in;
  }
  return p;
}

TEST(PlannerGraph, IlpFindsTheOptimumOfEverySegmentation) {
  int graphs = 0, skipping = 0;
  for (uint64_t seed = 0; seed < 48; ++seed) {
    ChainProfile p = detail::synthetic_profile(seed / 2, 4 + int(seed / 2 % 6), 2);
    if (seed % 2) {
      p = skipping_predecessors(p);
      bool skips = false;
      for (int i = 1; i < p.size(); ++i) {
        const std::vector<int> in = p.inputs(i);
        skips = skips || std::find(in.begin(), in.end(), i) == in.end();
      }
      if (!skips) continue;
      ++skipping;
    }
    if (p.is_chain()) continue;
    ++graphs;
    const int n = p.size() - 1;
    std::vector<Segment> cur;
    std::vector<std::vector<Segment>> all;
    segmentations(n, 0, cur, all);
    std::vector<std::pair<int64_t, double>> peak_cost;
    for (const auto& segs : all) {
      Plan plan;
      plan.segments = segs;
      plan = evaluate(p, plan);
      peak_cost.emplace_back(plan.predicted_peak, plan.recompute_ms);
    }
    int64_t least = peak_cost[0].first, most = least;
    for (const auto& [pk, c] : peak_cost) least = std::min(least, pk), most = std::max(most, pk);
    ASSERT_EQ(smallest_budget(p, "ilp"), least) << "seed " << seed;
    int64_t last_peak = 0;
    for (int step = 0; step <= 6; ++step) {
      const int64_t budget = least + (most - least) * step / 6;
      double best = 1e300;
      for (const auto& [pk, c] : peak_cost)
        if (pk <= budget) best = std::min(best, c);
      const Plan ilp = make_plan(p, "ilp", budget);
      EXPECT_LE(ilp.predicted_peak, budget);
      EXPECT_GE(ilp.predicted_peak, last_peak) << "seed " << seed << " budget " << budget;
      last_peak = ilp.predicted_peak;
      EXPECT_EQ(ilp.gap, 0) << ilp.note;
      EXPECT_NEAR(ilp.recompute_ms, best, 1e-9 * (1 + best))
          << "seed " << seed << " budget " << budget << ": ilp " << ilp.describe();
    }
  }
  EXPECT_GE(graphs, 24);
  EXPECT_GE(skipping, 6);
}

// The graph program on chains: the same optimum as dp (whose closed form it does not use).
TEST(PlannerGraph, TheGraphProgramOnChainsEqualsDp) {
  for (uint64_t seed = 0; seed < 12; ++seed) {
    const ChainProfile p = detail::synthetic_profile(seed, 3 + int(seed % 10));
    std::vector<double> cost;
    for (const auto& s : p.stages) cost.push_back(s.forward_ms);
    const int64_t lo = smallest_budget(p, "dp");
    const detail::IlpResult least = detail::solve_ilp_graph(p, kUnlimited, cost, nullptr, 10, true);
    ASSERT_TRUE(least.solved);
    Plan lp;
    lp.segments = least.segments;
    EXPECT_EQ(evaluate(p, lp).predicted_peak, lo) << "seed " << seed;
    const int64_t hi = make_plan(p, "none", kUnlimited).predicted_peak;
    for (int step = 0; step <= 4; ++step) {
      const int64_t budget = lo + (hi - lo) * step / 4;
      const Plan dp = make_plan(p, "dp", budget);
      const detail::IlpResult r = detail::solve_ilp_graph(p, budget, cost, nullptr, 10);
      ASSERT_TRUE(r.solved && r.optimal) << "seed " << seed;
      Plan plan;
      plan.segments = r.segments;
      plan = evaluate(p, plan);
      EXPECT_LE(plan.predicted_peak, budget);
      EXPECT_NEAR(plan.recompute_ms, dp.recompute_ms, 1e-9 * (1 + dp.recompute_ms))
          << "seed " << seed << " budget " << budget << ": dp " << dp.describe() << ", graph ilp "
          << plan.describe();
    }
  }
}

// DTR on graphs whose records hold almost nothing beyond their boundaries: going below the plain
// peak takes evicting boundaries and rematerialising them, recursively over their producers'
// inputs. Every budget from its smallest up is kept to.
TEST(PlannerGraph, DtrEvictsBoundariesOfGraphsAndRematerialisesThem) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const bool skipping = seed >= 10;  // the same graphs with predecessors skipped
    ChainProfile p = detail::synthetic_profile(seed % 10, 12, 2);
    if (skipping) p = skipping_predecessors(p);
    ASSERT_FALSE(p.is_chain());
    std::vector<int> last_reader(size_t(p.size()) + 1, -1);
    for (int i = 0; i < p.size(); ++i)
      for (int j : p.inputs(i)) last_reader[size_t(j)] = i;
    for (int i = 0; i < p.size(); ++i) {
      StageCost& s = p.stages[size_t(i)];
      int64_t made = 0;  // the input gradients this backward makes (it is their last reader)
      for (int j : p.inputs(i))
        if (j > 0 && last_reader[size_t(j)] == i) made += p.boundary_grad_bytes(j);
      s.internal_bytes = 64;
      s.keep_peak = s.out_bytes + 64;
      s.nograd_peak = s.out_bytes;
      s.backward_delta = made - 64;
      s.backward_peak = made;
    }
    const int64_t plain = make_plan(p, "none", kUnlimited).predicted_peak;
    const int64_t lo = smallest_budget(p, "dtr");
    // On these graphs DTR, evicting single boundaries, goes below the least peak of any static
    // segmentation (ilp's smallest budget); an observation on these seeds, not a theorem.
    if (!skipping) EXPECT_LT(lo, smallest_budget(p, "ilp")) << "seed " << seed;
    for (int step = 0; step <= 6; ++step) {
      const int64_t budget = lo + (plain - lo) * step / 6;
      const Plan dtr = make_plan(p, "dtr", budget);
      EXPECT_LE(dtr.predicted_peak, budget) << "seed " << seed;
      if (step == 0) EXPECT_GT(dtr.recompute_ms, 0) << "seed " << seed;
    }
  }
}

// Past 48 plannable stages the graph program is not built: ilp returns the best heuristic plan
// and says so.
TEST(PlannerGraph, IlpOnLargeGraphsFallsBackToTheBestHeuristicAndSaysSo) {
  const ChainProfile p = detail::synthetic_profile(8, 61, 2);
  ASSERT_FALSE(p.is_chain());
  const int64_t hi = make_plan(p, "none", kUnlimited).predicted_peak;
  const int64_t budget = smallest_budget(p, "greedy") + (hi - smallest_budget(p, "greedy")) / 2;
  const Plan ilp = make_plan(p, "ilp", budget);
  EXPECT_NE(ilp.note.find("more than 48 plannable stages"), std::string::npos) << ilp.note;
  EXPECT_EQ(ilp.gap, 1);
  EXPECT_LE(ilp.predicted_peak, budget);
  EXPECT_LE(ilp.recompute_ms, make_plan(p, "greedy", budget).recompute_ms + 1e-9);
}

TEST(PlannerGraph, ChainOnlyPoliciesAndMalformedGraphsAreRefusedByName) {
  const ChainProfile p = detail::synthetic_profile(3, 8, 2);
  ASSERT_FALSE(p.is_chain());
  const std::string e = test_support::error_of([&] { make_plan(p, "dp", kUnlimited); });
  EXPECT_NE(e.find("checkpoint policy 'dp' plans chains"), std::string::npos) << e;
  // The suggestion lists the registered policies that plan graphs, and each of them does.
  const std::string graphs = policy_names(true);
  EXPECT_NE(e.find("(" + graphs + ")"), std::string::npos) << e;
  EXPECT_EQ(graphs.find("dp"), std::string::npos) << graphs;
  for (const char* name : {"none", "every-k", "sqrt", "greedy", "ilp", "dtr"})
    EXPECT_NE(graphs.find(name), std::string::npos) << name << " missing from " << graphs;
  for (const char* name : {"none", "every-2", "sqrt", "greedy", "ilp", "dtr"})
    EXPECT_NO_THROW(make_plan(p, name, kUnlimited)) << name;
  ChainProfile bad = p;
  bad.stages[3].inputs = {1, 4};
  EXPECT_NE(test_support::error_of([&] {
              make_plan(bad, "ilp", kUnlimited);
            }).find("stage 3 ('') reads x_4; a stage may read only x_0 .. x_3"),
            std::string::npos);
  bad.stages[3].inputs = {2, 1};
  EXPECT_NE(test_support::error_of([&] {
              make_plan(bad, "none", kUnlimited);
            }).find("lists its inputs out of order or twice"),
            std::string::npos);
  // Explicit {i} inputs are a chain.
  ChainProfile explicit_chain = detail::synthetic_profile(3, 6);
  for (int i = 0; i < explicit_chain.size(); ++i) explicit_chain.stages[size_t(i)].inputs = {i};
  EXPECT_TRUE(explicit_chain.is_chain());
  EXPECT_NO_THROW(make_plan(explicit_chain, "dp", kUnlimited));
  // A chain run against another chain's profile.
  RandomGraph a(6, 5, 2), b(6, 5, 0);
  const ChainProfile pa = profile_chain(a.chain);
  ASSERT_FALSE(pa.is_chain());
  EXPECT_NE(test_support::error_of([&] {
              ChainExecutor e(pa, &b.chain);
            }).find("reads other boundaries than its profile says"),
            std::string::npos);
  // A boundary no stage reads: its gradient would never be made.
  RandomGraph g(5, 4, 0);
  g.chain.stages[2].inputs = {0};
  EXPECT_NE(test_support::error_of([&] {
              profile_chain(g.chain);
            }).find("no stage reads x_2, the output of stage 1 ('s1')"),
            std::string::npos);
}

// ResNet-18 (width 4) with every basic block staged as two stages, the second reading the block
// input again for the shortcut: the plain graph step gives the whole model's loss and (up to the
// order of a sum) its gradients; every graph policy at budgets down to ilp's smallest meets its
// prediction to the byte with the plain graph step's gradients, and BatchNorm's running
// statistics change once per step, replays included.
TEST(PlannerGraph, ResNetWithSplitBlocksIsAGraphEveryPolicyMeetsToTheByte) {
  SmallResNet m(4, 32, 3, {3, 7});
  auto& net = m.net;
  const Tensor &images = m.images, &labels = m.labels;
  auto take = [&] { return m.take(); };
  Tensor loss = cross_entropy(net->forward(images), labels);
  backward(loss);
  const auto plain = take();
  Chain c = net->chain(images, labels, true);
  EXPECT_EQ(c.stages.size(), size_t(2 + 2 * 8));
  const ChainProfile prof = profile_chain(c);
  ASSERT_FALSE(prof.is_chain());
  EXPECT_EQ(prof.inputs(2), (std::vector<int>{1, 2}));  // layer1.0 reads its input and branch
  net->zero_grad();
  const Plan none = make_plan(prof, "none", kUnlimited);
  const StepResult ref = run_step(c, prof, none);
  EXPECT_EQ(ref.loss, loss.item());
  const auto ref_grads = take();
  ASSERT_EQ(ref_grads.size(), plain.size());
  for (size_t k = 0; k < plain.size(); ++k)
    for (size_t e = 0; e < plain[k].size(); ++e)
      ASSERT_NEAR(ref_grads[k][e], plain[k][e], 1e-5f * (1 + std::abs(plain[k][e])))
          << "parameter " << k << " element " << e;
  const int64_t lo = smallest_budget(prof, "ilp"), hi = none.predicted_peak;
  ASSERT_LT(lo, hi);
  for (const char* policy : {"sqrt", "greedy", "ilp", "dtr"})
    for (int64_t budget : {lo, (lo + hi) / 2, hi}) {
      SCOPED_TRACE(std::string(policy) + " budget " + std::to_string(budget));
      if (budget < smallest_budget(prof, policy)) continue;
      const Plan plan = make_plan(prof, policy, budget);
      std::vector<double> tracked;
      for (const auto& t : c.state)
        if (t.dtype() == DType::i64) tracked.push_back(t.item());
      const StepResult r = run_step(c, prof, plan);
      EXPECT_EQ(r.mismatch, "");
      EXPECT_EQ(r.measured_peak, plan.predicted_peak);
      EXPECT_LE(r.measured_peak, budget);
      EXPECT_EQ(r.loss, ref.loss);
      EXPECT_EQ(take(), ref_grads) << plan.describe();
      size_t k = 0;
      for (const auto& t : c.state)
        if (t.dtype() == DType::i64) EXPECT_EQ(t.item(), tracked[k++] + 1);
    }
}

// stem_groups: the stem runs whole and is replayed in channel groups in its backward. Under
// every policy the staged step's gradients are its plain step's bit for bit, and they and the
// running statistics are the standard chain's (bit for bit but conv1's weight gradient, which
// each group sums with a smaller GEMM: equal to BLAS's rounding); the stem's stage keeps only
// its output, and the smallest budget drops.
TEST(PlannerGraph, ResNetWithStemGroupsEqualsTheStandardStepAndNeedsLess) {
  SmallResNet m(8, 64, 5, {1, 4});
  auto& net = m.net;
  const Tensor &images = m.images, &labels = m.labels;
  auto take = [&] { return m.take(); };
  auto stats = [&] {
    std::vector<std::vector<float>> s;
    for (const auto& [name, t] : net->named_buffers())
      s.push_back(t.dtype() == DType::i64 ? std::vector<float>{float(t.item())}
                                          : t.to_vector<float>());
    return s;
  };
  Chain standard = net->chain(images, labels, true);
  const ChainProfile sprof = profile_chain(standard);
  net->zero_grad();
  const auto stats0 = stats();
  const StepResult ref = run_step(standard, sprof, make_plan(sprof, "none", kUnlimited));
  const auto ref_grads = take();
  const auto ref_stats = stats();

  EXPECT_NE(test_support::error_of([&] {
              net->chain(images, labels, true, 3);
            }).find("stem_groups 3 must be positive and divide the stem's 8 channels"),
            std::string::npos);
  Chain grouped = net->chain(images, labels, true, 4);
  const ChainProfile gprof = profile_chain(grouped);
  net->zero_grad();
  EXPECT_EQ(gprof.stages[0].internal_bytes, 0);  // the stem's record is its output alone
  EXPECT_LT(smallest_budget(gprof, "dtr"), smallest_budget(sprof, "dtr"));
  EXPECT_LT(smallest_budget(gprof, "ilp"), smallest_budget(sprof, "ilp"));
  Grads own;  // the grouped staging's plain gradients
  for (const char* policy : {"none", "ilp", "dtr"}) {
    const int64_t budget =
        std::string(policy) == "none" ? kUnlimited : smallest_budget(gprof, policy);
    SCOPED_TRACE(std::string(policy) + " budget " + std::to_string(budget));
    const Plan plan = make_plan(gprof, policy, budget);
    // Each step starts from the statistics the reference step started from.
    {
      size_t k = 0;
      for (const auto& [name, t] : net->named_buffers()) {
        if (t.dtype() == DType::i64)
          fill_(t, stats0[k][0]);
        else
          copy_(t, from_vector(stats0[k], t.shape()));
        ++k;
      }
    }
    check_restaged_step(grouped, gprof, plan, budget, ref.loss, ref_grads, own, take);
    EXPECT_EQ(stats(), ref_stats) << plan.describe();
  }
}

// A TSM (temporal shift in every residual branch, dropout in the head) restaged as resnet18 is
// for the study: blocks split and the stem replayed in channel groups. Every graph policy at
// its smallest budget meets it to the byte with its plain staging's gradients bit for bit, and
// that plain step's gradients are the standard chain's (conv1's weight to BLAS's rounding).
TEST(PlannerGraph, VideoModelsRestageLikeResNet) {
  Generator gen(7), data(8);
  models::VideoConfig cfg = models::tsm_r18();
  cfg.width = 8;
  cfg.segments = 4;
  auto net = std::make_shared<models::SegmentNet>(cfg, &gen);
  Tensor frames = randn({2, 4, 3, 32, 32}, DType::f32, &data);
  Tensor labels = from_vector(std::vector<int64_t>{2, 5}, {2});
  auto take = [&] {
    std::vector<std::vector<float>> g;
    for (const auto& p : net->parameters()) g.push_back(p.grad().to_vector<float>());
    net->zero_grad();
    return g;
  };
  Chain standard = net->chain(frames, labels);
  const ChainProfile sprof = profile_chain(standard);
  net->zero_grad();
  const RngState start = gen.state();
  const StepResult ref = run_step(standard, sprof, make_plan(sprof, "none", kUnlimited));
  const auto ref_grads = take();
  Chain staged = net->chain(frames, labels, true, 2);
  const ChainProfile prof = profile_chain(staged);
  net->zero_grad();
  ASSERT_FALSE(prof.is_chain());
  EXPECT_EQ(prof.stages[0].internal_bytes, 0);
  EXPECT_LT(smallest_budget(prof, "ilp"), smallest_budget(sprof, "ilp"));
  Grads own;
  for (const char* policy : {"none", "ilp", "dtr"}) {
    const int64_t budget =
        std::string(policy) == "none" ? kUnlimited : smallest_budget(prof, policy);
    SCOPED_TRACE(std::string(policy) + " budget " + std::to_string(budget));
    gen.set_state(start);  // the head's dropout draws as in the reference step
    const Plan plan = make_plan(prof, policy, budget);
    check_restaged_step(staged, prof, plan, budget, ref.loss, ref_grads, own, take);
  }
}
