// `spool train --device cuda` against the same run on the cpu: the per-step losses of the log
// agree within 1e-5 relative. Runs wherever the CUDA backend does (a GPU or the emulated device);
// skipped, with the reason, elsewhere.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/backend.h"
#include "tests/support/cli.h"

namespace spool {
namespace {

using test_support::CliResult;
using test_support::run_cli;

#define REQUIRE_GPU()                                             \
  do {                                                            \
    std::string why_;                                             \
    if (!cuda_backend(&why_)) GTEST_SKIP() << "no GPU: " << why_; \
  } while (0)

// The losses of a log's step lines, in order.
std::vector<double> step_losses(const std::filesystem::path& log) {
  std::ifstream in(log);
  std::vector<double> out;
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("step") && j.contains("loss") && !j.contains("final"))
      out.push_back(j.at("loss").get<double>());
  }
  return out;
}

// The CPU runs take the CPU's im2col convolutions, whose summation order the device's im2col +
// GEMM kernels follow. oneDNN's convolutions (the CPU default) sum in another order, and AdamW's
// first step turns that into loss differences of the size the comparison tests: resnet18's step-1
// loss is 2.8552036 through im2col and 2.8552432 through oneDNN on the CPU (1.4e-5 apart,
// relative), 2.8552072 on the device.
void expect_same_losses(const std::string& args, size_t steps,
                        const std::filesystem::path& dir = test_support::temp_dir()) {
  const std::string cpu_log = (dir / "cpu.jsonl").string(), gpu_log = (dir / "gpu.jsonl").string();
  const char* had = std::getenv("SPOOL_CPU_CONV");
  const std::string saved = had ? had : "";
  setenv("SPOOL_CPU_CONV", "im2col", 1);
  const CliResult cpu = run_cli(args + " --log " + cpu_log);
  if (had)
    setenv("SPOOL_CPU_CONV", saved.c_str(), 1);
  else
    unsetenv("SPOOL_CPU_CONV");
  ASSERT_EQ(cpu.status, 0) << cpu.output;
  const CliResult gpu = run_cli(args + " --device cuda --log " + gpu_log);
  ASSERT_EQ(gpu.status, 0) << gpu.output;
  const std::vector<double> a = step_losses(cpu_log), b = step_losses(gpu_log);
  ASSERT_EQ(a.size(), steps) << cpu.output;
  ASSERT_EQ(b.size(), steps) << gpu.output;
  for (size_t i = 0; i < steps; ++i)
    EXPECT_NEAR(b[i], a[i], 1e-5 * std::fabs(a[i])) << "step " << i << " of: spool " << args;
}

// Both runs at --lr 1e-5. At the default 1e-3, AdamW's first steps move every weight by about
// +-lr whatever its gradient's size, so a gradient that is zero in exact arithmetic steps by the
// sign of its rounding noise: resnet18's losses then differ by 1e-4 at step 1 and 4e-3 at step 2
// between any two summation orders, two GEMMs of the same device included (docs/cuda.md). At
// 1e-5 the runs stay close enough for the 1e-5 comparison to test the device, not the chaos.
TEST(CudaTraining, GptTinyLossesOnTheDeviceMatchTheCpuRun) {
  REQUIRE_GPU();
  // One window a step keeps the emulated run short; the last step also runs the validation.
  expect_same_losses(
      "train --model gpt-tiny --steps 3 --batch 1 --lr 1e-5 --log-every 1 --eval-every 1000", 3);
}

TEST(CudaTraining, Resnet18LossesOnTheDeviceMatchTheCpuRun) {
  REQUIRE_GPU();
  expect_same_losses("train --model resnet18 --steps 3 --batch 4 --lr 1e-5 --log-every 1", 3);
}

TEST(CudaTraining, VideoModelsLossesOnTheDeviceMatchTheCpuRun) {
  REQUIRE_GPU();
  // Generated clips of 32 x 32, a ResNet of width 8; dropout draws the same masks on both.
  for (const char* model : {"tsn-r18", "tsm-r18", "trn-r18", "i3d-r18"})
    expect_same_losses(std::string("train --model ") + model +
                           " --size 32 --width 8 --batch 2 --steps 3 --test-clips 4 --lr 1e-5"
                           " --log-every 1",
                       3);
}

TEST(CudaTraining, DpoLossesOnTheDeviceMatchTheCpuRun) {
  REQUIRE_GPU();
  test_support::TempDir dir = test_support::temp_dir();
  const std::string pairs = (dir / "pairs.jsonl").string();
  const CliResult made = run_cli("make-pairs --pairs 40 --out " + pairs);
  ASSERT_EQ(made.status, 0) << made.output;
  // The policy and its frozen reference on the device; the pairs' log-probabilities, the DPO
  // loss and AdamW's steps there too.
  expect_same_losses("train --model dpo-gpt-tiny --data " + pairs +
                         " --steps 3 --batch 1 --eval-every 1000 --lr 1e-5 --log-every 1",
                     3, dir);
}

// --checkpoint-policy on the device: the planned run's losses are the plain device run's, bit for
// bit, and so is its checkpoint, byte for byte (BatchNorm's running statistics included: the
// profile step and the replays change neither them nor the generators).
TEST(CudaTraining, ACheckpointPlanOnTheDeviceGivesThePlainDeviceRun) {
  REQUIRE_GPU();
  test_support::TempDir dir = test_support::temp_dir();
  const std::string video =
      "train --device cuda --model tsm-r18 --steps 3 --size 32 --width 4 "
      "--test-clips 2 --log-every 1";
  auto run = [&](const std::string& name, const std::string& extra) {
    const CliResult r = run_cli(video + " --log " + (dir / (name + ".jsonl")).string() +
                                " --save " + (dir / (name + ".safetensors")).string() + extra);
    EXPECT_EQ(r.status, 0) << r.output;
    return r.output;
  };
  run("plain", "");
  EXPECT_THAT(run("sqrt", " --checkpoint-policy sqrt"),
              ::testing::HasSubstr("checkpoint plan (sqrt"));
  run("dp", " --checkpoint-policy dp --memory-budget 1");
  auto bytes = [](const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  EXPECT_EQ(step_losses(dir / "plain.jsonl").size(), 3u);
  for (const char* planned : {"sqrt", "dp"}) {
    EXPECT_EQ(step_losses(dir / "plain.jsonl"),
              step_losses(dir / (std::string(planned) + ".jsonl")))
        << planned;
    EXPECT_TRUE(bytes(dir / "plain.safetensors") ==
                bytes(dir / (std::string(planned) + ".safetensors")))
        << planned << ": the checkpoints differ";
  }
}

// The memory planner on the CUDA caching allocator: profiles, plans and measured peaks all in
// its bytes; every plan's predicted peak is the measured one, and its gradients the plain step's.
TEST(CudaTraining, MemstudyPredictsTheDeviceAllocatorsPeaksExactly) {
  REQUIRE_GPU();
  test_support::TempDir dir = test_support::temp_dir();
  // sqrt recomputes (its plan replays stages); mlp keeps the emulated run to seconds.
  const CliResult r = run_cli(
      "memstudy --model mlp --device cuda --policies none,sqrt,greedy,dp --budgets 1 --steps 1 "
      "--no-plot --out " +
      dir.string());
  ASSERT_EQ(r.status, 0) << r.output;
  std::ifstream csv(dir / "memstudy.csv");
  std::string line;
  std::getline(csv, line);  // the header
  int rows = 0;
  while (std::getline(csv, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) f.push_back(cell);
    ASSERT_GE(f.size(), 9u) << line;
    EXPECT_EQ(f[3], f[4]) << "predicted and measured peaks differ: " << line;
    EXPECT_EQ(f[8], "true") << "gradients differ from the plain step's: " << line;
    ++rows;
  }
  EXPECT_GE(rows, 4) << r.output;
}

}  // namespace
}  // namespace spool
