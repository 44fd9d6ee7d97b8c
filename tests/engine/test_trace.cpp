// Traces (engine/trace.h) and the op profile (tools/profile.h): the files parse as the Chrome
// trace format, spans nest, the counter tracks are the allocator's own figures, the planner's
// account lies on them, and the profile's rows account for the step.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/factory.h"
#include "engine/trace.h"
#include "nn/optim.h"
#include "ops/ops.h"
#include "tests/support/cli.h"

using namespace spool;
using namespace spool::test_support;
using json = nlohmann::json;

namespace {

json load(const std::filesystem::path& p) {
  std::ifstream f(p);
  return json::parse(f);  // throws on anything that is not JSON
}

// Every complete span has the fields Perfetto reads, and on each thread any two spans are
// disjoint or one holds the other. Returns the spans by category.
std::map<std::string, int> check_spans(const json& doc) {
  std::map<std::string, int> cats;
  std::map<int, std::vector<std::pair<double, double>>> by_tid;
  EXPECT_TRUE(doc.contains("traceEvents"));
  for (const json& e : doc["traceEvents"]) {
    EXPECT_TRUE(e.contains("ph") && e.contains("pid") && e.contains("tid") && e.contains("name"));
    if (e["ph"] != "X") continue;
    EXPECT_TRUE(e.contains("ts") && e.contains("dur") && e.contains("cat") && e.contains("args"));
    EXPECT_GE(e["dur"].get<double>(), 0);
    ++cats[e["cat"].get<std::string>()];
    by_tid[e["tid"].get<int>()].push_back(
        {e["ts"].get<double>(), e["ts"].get<double>() + e["dur"].get<double>()});
  }
  for (auto& [tid, spans] : by_tid) {
    std::sort(spans.begin(), spans.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first < b.first : a.second > b.second;
    });
    std::vector<std::pair<double, double>> open;
    for (const auto& s : spans) {
      while (!open.empty() && s.first >= open.back().second) open.pop_back();
      if (!open.empty())
        EXPECT_LE(s.second, open.back().second)
            << "a span [" << s.first << ", " << s.second << "] crosses the end of ["
            << open.back().first << ", " << open.back().second << "] on thread " << tid;
      open.push_back(s);
    }
  }
  return cats;
}

// A counter track's values in time order.
std::vector<std::pair<double, double>> track(const json& doc, const std::string& name) {
  std::vector<std::pair<double, double>> out;
  for (const json& e : doc["traceEvents"])
    if (e["ph"] == "C" && e["name"] == name)
      out.push_back({e["ts"].get<double>(), e["args"]["bytes"].get<double>()});
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

}  // namespace

TEST(Trace, SpansNestAndTheCounterTrackIsTheAllocatorsFigure) {
  Generator gen(3);
  Tensor w = randn({16, 8}, DType::f32, &gen).requires_grad_();
  Tensor x = randn({4, 16}, DType::f32, &gen);
  nn::AdamW opt(Tensors{w}, {.lr = 1e-3});
  reset_peak();
  const int64_t live0 = memory_stats().live_bytes;
  trace::start();
  {
    trace::Span step("step", "step 0");
    Tensor loss = sum(relu(matmul(x, w)));
    backward(loss);
    trace::Span update("phase", "optimizer");
    opt.step();
  }
  trace::stop();
  const MemoryStats stats = memory_stats();
  const int64_t events = trace::events();
  // Off: nothing more is recorded.
  Tensor more = sum(relu(matmul(x, w)));
  EXPECT_EQ(trace::events(), events);

  auto dir = temp_dir();
  trace::write((dir / "t.json").string());
  const json doc = load(dir / "t.json");
  const auto cats = check_spans(doc);
  EXPECT_EQ(cats.at("step"), 1);
  EXPECT_GE(cats.at("op"), 3);  // matmul, relu, sum
  EXPECT_GE(cats.at("backward"), 3);
  EXPECT_GE(cats.at("kernel"), 6);
  // The forward matmul's span: its kernel's shapes and FLOPs (2 x 4 x 8 x 16).
  bool found = false;
  for (const json& e : doc["traceEvents"])
    if (e["ph"] == "X" && e["cat"] == "kernel" && e["name"] == "matmul" && !found) {
      EXPECT_EQ(e["args"]["flops"].get<double>(), 2.0 * 4 * 8 * 16);
      EXPECT_EQ(e["args"]["bytes_read"].get<int64_t>(), (4 * 16 + 16 * 8) * 4);
      EXPECT_EQ(e["args"]["bytes_written"].get<int64_t>(), 4 * 8 * 4);
      found = true;
    }
  EXPECT_TRUE(found);
  // The matmul's backward node: the gradient it got ([4, 8]), the two tensors it saved, the one
  // gradient it returned (w's: x needs none) and the FLOPs of that product (x^T g: 2 x 16 x 4 x 8).
  found = false;
  for (const json& e : doc["traceEvents"])
    if (e["ph"] == "X" && e["cat"] == "backward" && e["name"] == "matmul") {
      const json& a = e["args"];
      EXPECT_EQ(a["inputs"], "[4, 8]");
      EXPECT_EQ(a["saved"], "[4, 16] [16, 8]");
      EXPECT_EQ(a["outputs"], "undefined [16, 8]");
      EXPECT_EQ(a["dtype"], "f32");
      EXPECT_EQ(a["device"], "cpu");
      EXPECT_EQ(a["bytes_read"].get<int64_t>(), (4 * 8 + 4 * 16 + 16 * 8) * 4);
      EXPECT_EQ(a["bytes_written"].get<int64_t>(), 16 * 8 * 4);
      EXPECT_EQ(a["flops"].get<double>(), 2.0 * 16 * 4 * 8);
      found = true;
    }
  EXPECT_TRUE(found);
  // The live-bytes track: its first value is the live bytes the trace started with, its last the
  // allocator's live bytes when the trace stopped, and its highest the allocator's peak.
  const auto live = track(doc, "cpu live bytes");
  ASSERT_FALSE(live.empty());
  EXPECT_EQ(int64_t(live.front().second), live0);
  EXPECT_EQ(int64_t(live.back().second), stats.live_bytes);
  double highest = 0;
  for (const auto& [t, v] : live) highest = std::max(highest, v);
  EXPECT_EQ(int64_t(highest), stats.peak_bytes);
  // The optimizer made AdamW's two moments inside the trace: the track ends above its start.
  EXPECT_GE(int64_t(live.back().second), live0 + 2 * 16 * 8 * 4);
}

TEST(Trace, IsBoundedAndWrittenOnlyWhereOutputsMayGo) {
  Generator gen(3);
  Tensor x = randn({64}, DType::f32, &gen);
  trace::start(10);
  for (int i = 0; i < 20; ++i) x = relu(x);
  trace::stop();
  EXPECT_EQ(trace::events(), 10);
  EXPECT_GT(trace::dropped(), 0);
  auto dir = temp_dir();
  trace::write((dir / "t.json").string());
  const json doc = load(dir / "t.json");
  EXPECT_EQ(doc["otherData"]["dropped_events"].get<int64_t>(), trace::dropped());
  // A symbolic link is refused, and what it points at is left alone.
  std::ofstream(dir / "target") << "kept";
  std::filesystem::create_symlink(dir / "target", dir / "link.json");
  EXPECT_THROW(trace::write((dir / "link.json").string()), Error);
  std::ifstream f(dir / "target");
  std::string kept;
  f >> kept;
  EXPECT_EQ(kept, "kept");
  EXPECT_THROW(trace::start(0), Error);
}

// The highest and the last value of a counter track.
std::pair<int64_t, int64_t> highest_and_last(const std::vector<std::pair<double, double>>& t) {
  double highest = 0;
  for (const auto& [ts, v] : t) highest = std::max(highest, v);
  return {int64_t(highest), t.empty() ? -1 : int64_t(t.back().second)};
}

// A number field of bench's JSON line.
int64_t field(const std::string& output, const std::string& key) {
  std::smatch m;
  const std::regex re("\"" + key + "\": (\\d+)");
  if (!std::regex_search(output, m, re)) {
    ADD_FAILURE() << "no " << key << " in " << output;
    return -1;
  }
  return std::stoll(m[1]);
}

// spool bench --trace on gpt-tiny and tsm-r18: the files open as Chrome traces, their spans
// nest, each traced step holds forward, backward and the optimizer, and the live-bytes track
// is the allocator's figure: its highest value is the traced step's peak, its last the live
// bytes when the trace stopped (both in bench's JSON line, read from the allocator).
TEST(Trace, BenchTracesOfGptTinyAndTsmParseAndNest) {
  auto dir = temp_dir();
  for (const std::string model : {"gpt-tiny", "tsm-r18"}) {
    const auto path = dir / (model + ".json");
    CliResult r =
        run_cli("bench --model " + model + " --steps 1 --warmup 1 --trace " + path.string());
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("\"traced_steps\": 1"), std::string::npos) << r.output;
    const json doc = load(path);
    const auto cats = check_spans(doc);
    EXPECT_EQ(cats.at("step"), 1) << model;
    EXPECT_EQ(cats.at("phase"), 3) << model;  // forward, backward, optimizer
    EXPECT_GT(cats.at("op"), 10) << model;
    EXPECT_GT(cats.at("backward"), 10) << model;
    EXPECT_GT(cats.at("kernel"), 10) << model;
    // gpt-tiny's bench samples each step's batch; tsm-r18's steps on one clip batch made first.
    EXPECT_EQ(cats.count("data") ? cats.at("data") : 0, model == "gpt-tiny" ? 1 : 0) << model;
    const auto [highest, last] = highest_and_last(track(doc, "cpu live bytes"));
    EXPECT_EQ(highest, field(r.output, "traced_peak_bytes")) << model;
    EXPECT_EQ(last, field(r.output, "traced_end_live_bytes")) << model;
    EXPECT_GT(highest, last) << model;  // the step's activations came and went
    EXPECT_GE(highest_and_last(track(doc, "cpu reserved bytes")).first, highest) << model;
  }
  CliResult r = run_cli("bench --model gpt-tiny --steps 1 --trace-steps 2");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("--trace-steps needs --trace FILE or --profile"), std::string::npos);
}

// Under a plan, the planner's account ("planned live bytes", after each primitive) lies on the
// allocator's live bytes at that moment, and each primitive is a span.
TEST(Trace, ThePlannedLiveBytesLieOnTheAllocatorsInAMemstudyTrace) {
  auto dir = temp_dir();
  const auto path = dir / "m.json";
  CliResult r = run_cli(
      "memstudy --model gpt-tiny --policies sqrt,dtr --budgets 0.5 --steps 1 "
      "--no-plot --out " +
      (dir / "out").string() + " --trace " + path.string());
  ASSERT_EQ(r.status, 0) << r.output;
  const json doc = load(path);
  const auto cats = check_spans(doc);
  EXPECT_EQ(cats.at("step"), 2);  // one a row
  EXPECT_GT(cats.at("planner"), 10);
  const auto live = track(doc, "cpu live bytes"), planned = track(doc, "planned live bytes");
  ASSERT_GT(planned.size(), 10u);
  size_t j = 0;
  for (const auto& [t, v] : planned) {
    while (j + 1 < live.size() && live[j + 1].first <= t) ++j;
    ASSERT_LE(live[j].first, t);
    EXPECT_EQ(int64_t(v), int64_t(live[j].second)) << "at " << t;
  }
  bool replay = false;
  for (const json& e : doc["traceEvents"])
    if (e["ph"] == "X" && e["cat"] == "planner" &&
        e["name"].get<std::string>().rfind("replay", 0) == 0)
      replay = true;
  EXPECT_TRUE(replay);
}

namespace {
// A profile table's heading in `output`: `steps` traced steps, whose rows add up to at least
// `fraction` of the step and not more than it.
void expect_rows_add_up(const std::string& output, int steps, double fraction) {
  std::smatch m;
  const std::regex sums(
      "op profile of " + std::to_string(steps) +
      R"( traced step\(s\): ([0-9.]+) ms a step; the rows add up to ([0-9.]+) ms)");
  ASSERT_TRUE(std::regex_search(output, m, sums)) << output;
  const double step = std::stod(m[1]), rows = std::stod(m[2]);
  EXPECT_LE(rows, step);
  EXPECT_GE(rows, fraction * step) << output;
}
}  // namespace

// spool bench --profile: the table's rows add up to the traced step within 5 %.
TEST(Trace, TheProfileTablesRowsAddUpToTheStep) {
  CliResult r = run_cli("bench --model gpt-tiny --steps 1 --warmup 1 --profile");
  ASSERT_EQ(r.status, 0) << r.output;
  expect_rows_add_up(r.output, 3, 0.95);
  EXPECT_NE(r.output.find("backward  matmul"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("forward   matmul"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("optimizer adam_step"), std::string::npos) << r.output;
}

// spool train --trace: the steps asked for, each with its optimizer phase; bad ranges refused.
TEST(Trace, TrainTracesTheStepsAskedFor) {
  auto dir = temp_dir();
  const auto path = dir / "train.json";
  CliResult r =
      run_cli("train --model mlp --steps 5 --trace " + path.string() + " --trace-steps 2:4");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("trace: "), std::string::npos) << r.output;
  const json doc = load(path);
  const auto cats = check_spans(doc);
  EXPECT_EQ(cats.at("step"), 2);
  std::vector<std::string> steps;
  for (const json& e : doc["traceEvents"])
    if (e["ph"] == "X" && e["cat"] == "step") steps.push_back(e["name"]);
  std::sort(steps.begin(), steps.end());
  EXPECT_EQ(steps, (std::vector<std::string>{"step 2", "step 3"}));
  EXPECT_EQ(cats.at("phase"), 4);  // backward and the optimizer, once a step each
  EXPECT_EQ(cats.at("data"), 2);   // the batch, once a step
  EXPECT_GT(cats.at("backward"), 2);
  for (const std::string bad : {"3", "2:2", "a:4", "-1:3", "2:"}) {
    r = run_cli("train --model mlp --steps 5 --trace " + path.string() + " --trace-steps " + bad);
    EXPECT_EQ(r.status, 2) << bad;
    EXPECT_NE(r.output.find("--trace-steps '" + bad + "' is not A:B"), std::string::npos)
        << r.output;
  }
  r = run_cli("train --model mlp --steps 5 --trace-steps 1:2");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("--trace-steps needs --trace FILE or --profile"), std::string::npos)
      << r.output;
}

// spool memstudy --profile: each row's traced step as an op table, its replays (the plan's
// recompute) a pass of their own: none under the plain step, the dropped stage's ops under sqrt.
TEST(Trace, MemstudyProfilesEachRowWithItsReplaysApart) {
  auto dir = temp_dir();
  CliResult r = run_cli(
      "memstudy --model mlp --batch 512 --policies none,sqrt --budgets 1 --steps 1 --no-plot "
      "--profile --out " +
      dir.string());
  ASSERT_EQ(r.status, 0) << r.output;
  std::smatch m;
  static const std::regex none(R"(mlp none 1: replays ([0-9.]+) ms of a ([0-9.]+) ms step)"),
      sqrt(R"(mlp sqrt 1: replays ([0-9.]+) ms of a ([0-9.]+) ms step)");
  ASSERT_TRUE(std::regex_search(r.output, m, none)) << r.output;
  EXPECT_EQ(std::stod(m[1]), 0.0) << r.output;
  ASSERT_TRUE(std::regex_search(r.output, m, sqrt)) << r.output;
  EXPECT_GT(std::stod(m[1]), 0.0) << r.output;
  EXPECT_LT(std::stod(m[1]), std::stod(m[2])) << r.output;
  EXPECT_NE(r.output.find("replay    matmul"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("optimizer adam_step"), std::string::npos) << r.output;
}

// spool train --profile: the traced steps' op table, with the forward's ops, the backward's
// nodes, the optimizer and the batch apart; its rows add up to most of the step.
TEST(Trace, TrainProfilesTheStepsAskedFor) {
  CliResult r = run_cli("train --model resnet18 --steps 4 --batch 16 --profile --trace-steps 1:3");
  ASSERT_EQ(r.status, 0) << r.output;
  expect_rows_add_up(r.output, 2, 0.9);
  for (const char* row : {"forward   conv2d", "backward  conv2d", "optimizer ", "data      "})
    EXPECT_NE(r.output.find(row), std::string::npos) << row << " in\n" << r.output;
}
