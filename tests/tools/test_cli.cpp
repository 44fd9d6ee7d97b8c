// The command-line contract: exit statuses, one-line errors, the JSONL log and the digits MLP.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "data/flow.h"
#include "data/video_io.h"
#include "tests/support/cli.h"

using namespace spool::test_support;

TEST(Cli, HelpListsTheCommandsAndExitsZero) {
  CliResult r = run_cli("--help");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.output.find("train"), std::string::npos);
  EXPECT_NE(r.output.find("info"), std::string::npos);
}

// Each command's --help is made by CLI11 from the declarations that parse its flags: it exits 0,
// and the flags it lists are accepted (all given at once with an unknown one, the parser names
// only the unknown one). The top level's help lists every command.
TEST(Cli, EveryCommandsHelpListsFlagsItAccepts) {
  const CliResult top = run_cli("--help");
  const std::regex listed("^ +(--[a-z0-9-]+)( VALUE)? ");
  for (const std::string cmd : {"info", "train", "grad", "generate", "bench", "memstudy",
                                "make-pairs", "make-videos", "extract-flow", "fuse", "rl", "sa"}) {
    EXPECT_NE(top.output.find("  " + cmd + " "), std::string::npos) << cmd << " in:\n"
                                                                    << top.output;
    const CliResult help = run_cli(cmd + " --help");
    EXPECT_EQ(help.status, 0) << cmd << ": " << help.output;
    EXPECT_NE(help.output.find("spool " + cmd), std::string::npos) << help.output;
    std::istringstream lines(help.output);
    std::string line, all;
    int flags = 0;
    for (std::smatch m; std::getline(lines, line);)
      if (std::regex_search(line, m, listed) && m[1] != "--help") {
        ++flags;
        all += " " + m[1].str() + (m[2].matched ? " x" : "");
      }
    // fuse has three (--scores, --weights, --out); every other command but info more.
    if (cmd != "info")
      EXPECT_GT(flags, cmd == "fuse" ? 2 : 3) << cmd << "'s help lists no flags:\n" << help.output;
    const CliResult r = run_cli(cmd + all + " --zz-unknown");
    EXPECT_EQ(r.status, 2) << cmd << all << ": " << r.output;
    EXPECT_NE(r.output.find("not expected: --zz-unknown ("), std::string::npos)
        << cmd << all << ": a listed flag was refused: " << r.output;
  }
  const CliResult train = run_cli("train --help");
  for (const char* flag : {"--checkpoint-policy", "--memory-budget", "--autocast", "--init-2d"})
    EXPECT_NE(train.output.find("  " + std::string(flag) + " "), std::string::npos) << flag;
}

TEST(Cli, InfoNamesVersionBackendsBlasAndThreads) {
  CliResult r = run_cli("info");
  EXPECT_EQ(r.status, 0);
  for (const char* key : {"spool ", "backends: cpu", "gpu: ", "blas: ", "cpu: ", "threads: "})
    EXPECT_NE(r.output.find(key), std::string::npos) << key << " missing in:\n" << r.output;
}

// On a CPU with AVX2, OpenBLAS's SSE3 kernels (what it falls back to on a model it does not know)
// are named, with the variable that selects the CPU's own; its own kernels are not.
TEST(Cli, InfoSaysWhenOpenblasRunsKernelsOlderThanTheCpu) {
  if (!__builtin_cpu_supports("avx2")) GTEST_SKIP() << "this CPU has no AVX2";
  const char* saved = std::getenv("OPENBLAS_CORETYPE");
  const std::string keep = saved ? saved : "";
  setenv("OPENBLAS_CORETYPE", "Prescott", 1);
  CliResult old = run_cli("info");
  setenv("OPENBLAS_CORETYPE", "Haswell", 1);
  CliResult own = run_cli("info");
  if (saved)
    setenv("OPENBLAS_CORETYPE", keep.c_str(), 1);
  else
    unsetenv("OPENBLAS_CORETYPE");
  EXPECT_EQ(old.status, 0);
  EXPECT_NE(old.output.find("note: OpenBLAS did not recognise this CPU and runs its Prescott"),
            std::string::npos)
      << old.output;
  EXPECT_NE(old.output.find("OPENBLAS_CORETYPE="), std::string::npos) << old.output;
  EXPECT_EQ(own.status, 0);
  EXPECT_EQ(own.output.find("note: OpenBLAS"), std::string::npos) << own.output;
}

TEST(Cli, UnknownCommandModelFlagAndBadValuesExitTwoWithOneLine) {
  const char* bad[] = {
      "frobnicate",
      "train --model nosuchmodel",
      "train --model mlp --nosuchflag 3",
      "train --model mlp --steps abc",
      "train --model mlp --steps -5",
      "train --model mlp --lr 0",
      "train --model mlp --device tpu",
      "train --model mlp --data /nonexistent/digits.csv",
      "train --model mlp --steps 5 --epochs 2",
      "train --model mlp --batch",
      "train",
  };
  for (const char* args : bad) {
    CliResult r = run_cli(args);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.output;
    EXPECT_EQ(count_lines(r.output), 1) << args << " printed:\n" << r.output;
    EXPECT_EQ(r.output.rfind("spool: ", 0), 0u) << r.output;
  }
}

TEST(Cli, ErrorMessagesNameTheCulprit) {
  EXPECT_NE(run_cli("train --model nosuchmodel").output.find("nosuchmodel"), std::string::npos);
  EXPECT_NE(run_cli("train --model mlp --nosuchflag 3").output.find("--nosuchflag"),
            std::string::npos);
  EXPECT_NE(run_cli("train --model mlp --steps abc").output.find("abc"), std::string::npos);
}

TEST(Cli, MalformedDataFileIsRejectedAndNoLogIsWritten) {
  auto dir = temp_dir();
  std::ofstream(dir / "bad.csv") << "1,2,3\n";
  auto log = dir / "log.jsonl";
  CliResult r =
      run_cli("train --model mlp --data " + (dir / "bad.csv").string() + " --log " + log.string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("65"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(log));
  EXPECT_FALSE(std::filesystem::exists(log.string() + ".tmp"));
}

TEST(Cli, DigitsMlpReachesNinetyFivePercentAndLogsJsonLines) {
  auto dir = temp_dir();
  auto log = dir / "run.jsonl";
  CliResult r = run_cli("train --model mlp --data digits --seed 3 --log " + log.string());
  ASSERT_EQ(r.status, 0) << r.output;
  std::ifstream in(log);
  std::string line, last;
  int steps = 0;
  while (std::getline(in, line)) {
    if (line.find("\"step\"") != std::string::npos && line.find("\"loss\"") != std::string::npos)
      ++steps;
    last = line;
  }
  EXPECT_GT(steps, 10);
  ASSERT_NE(last.find("\"final\": true"), std::string::npos) << last;
  auto at = last.find("\"test_acc\": ");
  ASSERT_NE(at, std::string::npos) << last;
  double acc = std::stod(last.substr(at + 12));
  EXPECT_GE(acc, 0.95) << last;
}

TEST(Cli, TrainingIsReproducibleForAFixedSeed) {
  CliResult a = run_cli("train --model mlp --steps 40 --seed 11");
  CliResult b = run_cli("train --model mlp --steps 40 --seed 11");
  ASSERT_EQ(a.status, 0) << a.output;
  // Everything but the elapsed time, which follows the last "), ".
  auto stable = [](const std::string& s) { return s.substr(0, s.rfind("), ")); };
  EXPECT_NE(a.output.find("final loss"), std::string::npos) << a.output;
  EXPECT_EQ(stable(a.output), stable(b.output));
}

TEST(Cli, ResumedTrainingReproducesTheUninterruptedLossesBitForBit) {
  auto dir = temp_dir();
  auto run_ok = [&](const std::string& args) {
    CliResult r = run_cli("train --model resnet18 --batch 4 --seed 5 --log-every 1 " + args);
    ASSERT_EQ(r.status, 0) << args << "\n" << r.output;
  };
  const std::string d = dir.string() + "/";
  run_ok("--steps 12 --log " + d + "straight.jsonl");
  run_ok("--steps 6 --save " + d + "ck.safetensors --log " + d + "first.jsonl");
  run_ok("--steps 12 --resume " + d + "ck.safetensors --log " + d + "second.jsonl");
  auto step_lines = [](const std::filesystem::path& p) {
    std::ifstream in(p);
    std::vector<std::string> out;
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("{\"step\"", 0) == 0) out.push_back(line);
    return out;
  };
  auto straight = step_lines(dir / "straight.jsonl");
  auto pieces = step_lines(dir / "first.jsonl");
  for (auto& l : step_lines(dir / "second.jsonl")) pieces.push_back(l);
  ASSERT_EQ(straight.size(), 12u);
  EXPECT_EQ(pieces, straight);
}

TEST(Cli, ResumeRefusesAnotherModelsCheckpointAndMissingFiles) {
  auto dir = temp_dir();
  const std::string ck = (dir / "mlp.safetensors").string();
  ASSERT_EQ(run_cli("train --model mlp --steps 2 --save " + ck).status, 0);
  CliResult r = run_cli("train --model resnet18 --steps 3 --resume " + ck);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("holds a 'mlp' model"), std::string::npos) << r.output;
  EXPECT_EQ(run_cli("train --model mlp --resume " + (dir / "none").string()).status, 2);
}

TEST(Cli, GradRefusesMissingFlagsFilesAndMismatchedWeights) {
  auto dir = temp_dir();
  const std::string fx = std::string(SPOOL_SOURCE_DIR) + "/tests/fixtures/";
  EXPECT_EQ(run_cli("grad --model resnet18").status, 2);
  CliResult r = run_cli("grad --model resnet18 --weights /nonexistent --batch /nonexistent --out " +
                        (dir / "g").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(count_lines(r.output), 1) << r.output;
  // mlp weights are not a ResNet: the error names the missing tensor.
  const std::string ck = (dir / "mlp.safetensors").string();
  ASSERT_EQ(run_cli("train --model mlp --steps 1 --save " + ck).status, 0);
  r = run_cli("grad --model resnet18 --weights " + ck + " --batch " + fx +
              "resnet18_w8_batch.safetensors --out " + (dir / "g").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("conv1.weight"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "g"));
  // Models outside the table, and the reward model (no grad path), are refused by name.
  for (const char* model : {"nosuchmodel", "reward-gpt-tiny"}) {
    r = run_cli(std::string("grad --model ") + model + " --weights " + ck + " --batch " + fx +
                "resnet18_w8_batch.safetensors --out " + (dir / "g").string());
    EXPECT_EQ(r.status, 2) << model;
    EXPECT_EQ(count_lines(r.output), 1) << r.output;
    EXPECT_NE(r.output.find(model), std::string::npos) << r.output;
    EXPECT_FALSE(std::filesystem::exists(dir / "g"));
  }
}

TEST(Cli, MemstudyWritesItsCsvWithEqualPeaksAndGradients) {
  const auto dir = temp_dir();
  CliResult r = run_cli(
      "memstudy --model mlp --batch 512 --policies none,dp,dtr --budgets 1,0.9 "
      "--steps 1 --no-plot --out " +
      dir.string());
  ASSERT_EQ(r.status, 0) << r.output;
  std::ifstream f(dir / "memstudy.csv");
  std::string header, line;
  std::getline(f, header);
  EXPECT_EQ(header,
            "model,policy,budget_bytes,predicted_peak_bytes,measured_peak_bytes,recompute_flops,"
            "step_ms,plan_ms,grads_equal,paired_plain_ms,step_ratio,peak_at");
  int rows = 0;
  while (std::getline(f, line)) {
    ++rows;
    std::vector<std::string> c;
    std::stringstream ss(line);
    for (std::string x; std::getline(ss, x, ',');) c.push_back(x);
    ASSERT_EQ(c.size(), 12u) << line;
    // Where the peak is: a stage's forward or backward (named), or the update.
    EXPECT_TRUE(c[11].rfind("backward of '", 0) == 0 || c[11].rfind("forward (", 0) == 0 ||
                c[11] == "the optimizer update")
        << line;
    EXPECT_EQ(c[0], "mlp");
    EXPECT_EQ(c[3], c[4]) << line;  // predicted peak == measured peak
    EXPECT_LE(std::stoll(c[4]), std::stoll(c[2])) << line;
    EXPECT_EQ(c[8], "true") << line;
    // The paired plain step was timed, and the ratio is the row's time over it.
    EXPECT_GT(std::stod(c[9]), 0) << line;
    // (the CSV rounds the times to 1 us and the ratio to 1e-4)
    EXPECT_NEAR(std::stod(c[10]) * std::stod(c[9]), std::stod(c[6]), 0.002 + 1e-3 * std::stod(c[6]))
        << line;
  }
  EXPECT_GE(rows, 3);
  // The memory timeline: one step per policy (the plain one, then dp and dtr at the smallest
  // budget both planned), each primitive's account against the allocator: live bytes after it
  // and the peak within it are the same numbers.
  std::ifstream t(dir / "timeline.csv");
  std::getline(t, header);
  EXPECT_EQ(header,
            "model,policy,budget_bytes,index,primitive,recompute,predicted_peak_bytes,"
            "measured_peak_bytes,predicted_live_bytes,measured_live_bytes");
  std::map<std::string, int> points;
  while (std::getline(t, line)) {
    std::vector<std::string> c;
    std::stringstream ss(line);
    for (std::string x; std::getline(ss, x, ',');) c.push_back(x);
    ASSERT_EQ(c.size(), 10u) << line;
    EXPECT_EQ(std::stoi(c[3]), points[c[1]]) << line;  // numbered from 0 in order
    ++points[c[1]];
    EXPECT_EQ(c[6], c[7]) << line;
    EXPECT_EQ(c[8], c[9]) << line;
    EXPECT_LE(std::stoll(c[8]), std::stoll(c[6])) << line;  // the peak within is at least the after
    if (c[1] != "none") EXPECT_GT(std::stoll(c[2]), 0) << line;
  }
  EXPECT_EQ(points.size(), 3u);
  EXPECT_GT(points["none"], 3);
  std::smatch m;
  static const std::regex said(
      R"(mlp +timeline: the plain step and 2 policies at budget \S+ \(\d+ B\), (\d+) primitives; )"
      R"(predicted = measured \(live after and peak within\) at (\d+) of them)");
  ASSERT_TRUE(std::regex_search(r.output, m, said)) << r.output;
  EXPECT_EQ(m[1], m[2]);
  EXPECT_EQ(std::stoi(m[1]), points["none"] + points["dp"] + points["dtr"]);
}

TEST(Cli, MemstudyRejectsUnknownPoliciesAndBadBudgets) {
  CliResult r = run_cli("memstudy --model mlp --policies revolve");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("unknown checkpoint policy 'revolve'"), std::string::npos) << r.output;
  r = run_cli("memstudy --model mlp --budgets lots");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("budget 'lots'"), std::string::npos) << r.output;
  r = run_cli("memstudy --model resnet18,gpt-tiny --stem-groups 4");
  EXPECT_EQ(r.status, 2);
  // The restaged models come from the table: resnet18 and the 2-D video models whose blocks are
  // the ResNet's (not ECO's 3-D stages, not TDN's graph).
  EXPECT_NE(r.output.find("--stem-groups restages the 2-D ResNets (resnet18, tsn-r18, tsm-r18, "
                          "trn-r18, tea-r18, stm-r18, tsn-r50"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("eco-r18, "), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("tdn-r18, "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("not 'gpt-tiny'"), std::string::npos) << r.output;
  r = run_cli("memstudy --model i3d-r18 --split-blocks");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("not 'i3d-r18'"), std::string::npos) << r.output;
  r = run_cli("memstudy --model tsn-r18 --stem-groups 5");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("--stem-groups 5 must divide"), std::string::npos) << r.output;
  r = run_cli("memstudy --model mlp,gpt-tiny --recompute-gelu");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("--recompute-gelu applies to the GPT models (gpt-tiny, gpt2-124m, "
                          "dpo-gpt-tiny), not 'mlp'"),
            std::string::npos)
      << r.output;
}

// --time-limit stops gpt-tiny when the time is spent, with a validation loss in the final line;
// --beta2 sets AdamW's second-moment decay and belongs to language-model training.
TEST(Cli, GptTrainingStopsAtItsTimeLimit) {
  const auto dir = temp_dir();
  CliResult r =
      run_cli("train --model gpt-tiny --time-limit 1 --beta2 0.99 --eval-every 1000 --log " +
              (dir / "t.jsonl").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string last = final_line(dir / "t.jsonl");
  EXPECT_NE(last.find("\"final\": true"), std::string::npos) << last;
  EXPECT_NE(last.find("\"val_loss\""), std::string::npos) << last;
  EXPECT_EQ(last.find("\"val_loss\": null"), std::string::npos) << last;
  const auto at = last.find("\"steps\": ");
  ASSERT_NE(at, std::string::npos) << last;
  const long steps = std::stol(last.substr(at + 9));
  EXPECT_GE(steps, 1);
  EXPECT_LT(steps, 100) << "a 1 s budget is a few steps";
  expect_refused("train --model mlp --beta2 0.99", "--beta2 applies to gpt-tiny");
  expect_refused("train --model resnet18 --recompute-gelu", "--recompute-gelu applies to gpt-tiny");
  expect_refused("train --model gpt-tiny --beta2 1", "--beta2 must be below 1");
}

// A video run bounded by time reads its whole schedule by the share of the time done: with
// --steps 1000000 its warm-up is 50,000 steps, so counting steps, step t could have a learning
// rate of at most lr (t + 1) / 50,000. Read by the share of time, any step after the first
// (which starts at share 0) is far above that, however many steps the machine's load allows:
// the check holds for one logged step after the first.
TEST(Cli, VideoTrainingUnderATimeLimitWarmsUpAndDecaysByTheTime) {
  const auto dir = temp_dir();
  CliResult r = run_cli(
      "train --model tsn-r18 --steps 1000000 --time-limit 3 --size 32 --width 4 --test-clips 2 "
      "--lr 0.01 --log-every 1 --log " +
      (dir / "v.jsonl").string());
  ASSERT_EQ(r.status, 0) << r.output;
  std::ifstream in(dir / "v.jsonl");
  int lines = 0;
  bool above_step_warmup = false;
  for (std::string line; std::getline(in, line);) {
    const auto at = line.find("\"lr\": "), st = line.find("\"step\": ");
    if (at == std::string::npos || st == std::string::npos) continue;
    const double lr = std::stod(line.substr(at + 6));
    const long step = std::stol(line.substr(st + 8));
    if (step >= 1 && lr > 2 * 0.01 * double(step + 1) / 50000) above_step_warmup = true;
    ++lines;
  }
  // The schedule's arithmetic is Optim.CosineScheduleByShareReadsWarmUpAndCosineAtTheShareOfTheRun;
  // this checks that video training uses it.
  if (lines < 2) GTEST_SKIP() << "one step in 3 s on this loaded machine: nothing to compare";
  EXPECT_TRUE(above_step_warmup) << lines << " logged steps, every one inside a step-counted "
                                 << "warm-up";
}

// bf16 autocast: losses within bf16's rounding of the f32 run's (not equal to them), and a
// checkpoint plan under autocast repeats the autocast run bit for bit (replays run in bf16 too).
TEST(Cli, AutocastBf16TrainsGptTinyNearTheF32LossesAndPlansRepeatIt) {
  const auto dir = temp_dir();
  const std::string common = "train --model gpt-tiny --steps 2 --log-every 1 --eval-every 1000 ";
  CliResult f32 = run_cli(common + "--log " + (dir / "f32.jsonl").string());
  CliResult bf = run_cli(common + "--autocast bf16 --log " + (dir / "bf.jsonl").string());
  CliResult planned =
      run_cli(common + "--autocast bf16 --checkpoint-policy dp --memory-budget 1/2 " + "--log " +
              (dir / "planned.jsonl").string());
  ASSERT_EQ(f32.status, 0) << f32.output;
  ASSERT_EQ(bf.status, 0) << bf.output;
  ASSERT_EQ(planned.status, 0) << planned.output;
  const auto a = logged_losses(dir / "f32.jsonl"), b = logged_losses(dir / "bf.jsonl");
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 2u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_NE(a[i], b[i]) << i;
    const auto loss = [](const std::string& l) {
      return std::stod(l.substr(l.find("\"loss\": ") + 8));
    };
    EXPECT_NEAR(loss(b[i]), loss(a[i]), 0.01 * loss(a[i])) << a[i] << " / " << b[i];
  }
  EXPECT_NE(planned.output.find("checkpoint plan (dp"), std::string::npos) << planned.output;
  EXPECT_EQ(logged_losses(dir / "planned.jsonl"), b);
  expect_refused("train --model gpt-tiny --autocast fp8", "not a precision autocast has");
  expect_refused("train --model resnet18 --autocast bf16", "--autocast applies to gpt-tiny");
}

TEST(Cli, TrainingUnderACheckpointPlanGivesThePlainLosses) {
  const auto dir = temp_dir();
  const std::string common = "train --model gpt-tiny --steps 3 --log-every 1 --eval-every 1000 ";
  CliResult plain = run_cli(common + "--log " + (dir / "plain.jsonl").string());
  CliResult planned = run_cli(common + "--checkpoint-policy dp --memory-budget 1/3 --log " +
                              (dir / "planned.jsonl").string());
  ASSERT_EQ(plain.status, 0) << plain.output;
  ASSERT_EQ(planned.status, 0) << planned.output;
  EXPECT_NE(planned.output.find("checkpoint plan (dp"), std::string::npos) << planned.output;
  const auto a = logged_losses(dir / "plain.jsonl"), b = logged_losses(dir / "planned.jsonl");
  EXPECT_EQ(a.size(), 3u);
  EXPECT_EQ(a, b);
  // GELU recompute under the same plan: the same losses again, bit for bit.
  CliResult lean = run_cli(common + "--recompute-gelu --checkpoint-policy dp --memory-budget 1/3 " +
                           "--log " + (dir / "lean.jsonl").string());
  ASSERT_EQ(lean.status, 0) << lean.output;
  EXPECT_EQ(logged_losses(dir / "lean.jsonl"), a);
  // ResNet-18 (BatchNorm): the planned run leaves the same checkpoint, byte for byte, as the
  // plain one: the profile step changes neither the running statistics nor the generators.
  const std::string rn = "train --model resnet18 --steps 2 --batch 8 ";
  CliResult rplain = run_cli(rn + "--save " + (dir / "plain.safetensors").string());
  CliResult rplanned = run_cli(rn + "--checkpoint-policy dp --memory-budget 1 --save " +
                               (dir / "planned.safetensors").string());
  ASSERT_EQ(rplain.status, 0) << rplain.output;
  ASSERT_EQ(rplanned.status, 0) << rplanned.output;
  auto bytes = [](const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  EXPECT_EQ(bytes(dir / "plain.safetensors"), bytes(dir / "planned.safetensors"));
  // Blocks staged as a graph: sqrt's segments (replays holding the skip inputs they read) leave
  // the checkpoint the same staging leaves with every stage kept. (At this size no plan gets
  // below the plain peak: the stem's BatchNorm backward sets it.)
  CliResult gnone = run_cli(rn + "--split-blocks --checkpoint-policy none --save " +
                            (dir / "graph_none.safetensors").string());
  CliResult gsqrt = run_cli(rn + "--split-blocks --checkpoint-policy sqrt --save " +
                            (dir / "graph_sqrt.safetensors").string());
  ASSERT_EQ(gnone.status, 0) << gnone.output;
  ASSERT_EQ(gsqrt.status, 0) << gsqrt.output;
  EXPECT_NE(gsqrt.output.find("checkpoint plan (sqrt"), std::string::npos) << gsqrt.output;
  EXPECT_NE(gsqrt.output.find("D5"), std::string::npos) << gsqrt.output;
  EXPECT_EQ(bytes(dir / "graph_none.safetensors"), bytes(dir / "graph_sqrt.safetensors"));
  // The stem replayed in channel groups, at a third of the standard step's activations: the
  // losses are the plain run's (to the rounding of conv1's weight gradient, which each group
  // sums with a smaller GEMM; on this machine they are equal bit for bit).
  CliResult grp = run_cli(rn + "--split-blocks --stem-groups 4 --checkpoint-policy dtr " +
                          "--memory-budget 1/3 --log " + (dir / "groups.jsonl").string() +
                          " --save " + (dir / "groups.safetensors").string());
  CliResult rlog = run_cli(rn + "--log " + (dir / "rplain.jsonl").string());
  ASSERT_EQ(grp.status, 0) << grp.output;
  ASSERT_EQ(rlog.status, 0) << rlog.output;
  EXPECT_NE(grp.output.find("checkpoint plan (dtr"), std::string::npos) << grp.output;
  const auto gl = logged_losses(dir / "groups.jsonl"), pl = logged_losses(dir / "rplain.jsonl");
  ASSERT_EQ(gl.size(), pl.size());
  auto loss_of = [](const std::string& line) {
    return std::stod(line.substr(line.find("\"loss\": ") + 8));
  };
  for (size_t k = 0; k < gl.size(); ++k)
    EXPECT_NEAR(loss_of(gl[k]), loss_of(pl[k]), 1e-5 * std::abs(loss_of(pl[k]))) << gl[k];
  expect_refused("train --model resnet18 --stem-groups 3 --checkpoint-policy dtr",
                 "--stem-groups 3 must divide the stem's 64 channels");
  expect_refused("train --model mlp --stem-groups 4 --checkpoint-policy dtr",
                 "it needs --model resnet18 and --checkpoint-policy");
  expect_refused("train --model mlp --split-blocks --checkpoint-policy ilp",
                 "--split-blocks stages resnet18's blocks");
  expect_refused("train --model resnet18 --split-blocks", "it needs --model resnet18 and");
  expect_refused("train --model resnet18 --split-blocks --checkpoint-policy dp",
                 "which dp does not plan");
  CliResult bad = run_cli("train --model mlp --memory-budget 5");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.output.find("--memory-budget needs --checkpoint-policy"), std::string::npos);
}

namespace {

// A small English text for make-pairs (ASCII, several hundred bytes).
std::string small_corpus(const std::filesystem::path& dir) {
  const auto p = dir / "text.txt";
  std::ofstream f(p);
  for (int i = 0; i < 6; ++i)
    f << "The committee met again on Tuesday to discuss the new bridge over the river. "
         "Everyone agreed that the old one was too narrow for the traffic of the town.\n%\n";
  return p.string();
}

}  // namespace

TEST(Cli, PreferencePairsSftDpoRewardModelAndPpoTrainAndLogTheirMetrics) {
  const auto dir = temp_dir();
  const std::string pairs = (dir / "pairs.jsonl").string();
  CliResult made = run_cli("make-pairs --out " + pairs + " --pairs 30 --data " + small_corpus(dir));
  ASSERT_EQ(made.status, 0) << made.output;
  const std::string common = " --data " + pairs + " --steps 2 --batch 2 --eval-every 1 ";
  const std::string sft = (dir / "sft.safetensors").string(),
                    rm = (dir / "rm.safetensors").string(),
                    ppo = (dir / "ppo.safetensors").string();
  CliResult sft_run = run_cli("train --model gpt-tiny --sft" + common + "--save " + sft +
                              " --log " + (dir / "sft.jsonl").string());
  ASSERT_EQ(sft_run.status, 0) << sft_run.output;
  EXPECT_NE(final_line(dir / "sft.jsonl").find("\"eval_loss\""), std::string::npos);
  // DPO from the SFT weights, with the reference live and then precomputed: the same numbers.
  const std::string dpo = "train --model dpo-gpt-tiny" + common + "--init " +
                          (dir / "sft.safetensors").string() + " --log ";
  CliResult live = run_cli(dpo + (dir / "live.jsonl").string());
  CliResult pre = run_cli(dpo + (dir / "pre.jsonl").string() + " --precompute-ref");
  ASSERT_EQ(live.status, 0) << live.output;
  ASSERT_EQ(pre.status, 0) << pre.output;
  const std::string a = final_line(dir / "live.jsonl"), b = final_line(dir / "pre.jsonl");
  for (const char* key : {"\"rewards/chosen\"", "\"rewards/rejected\"", "\"rewards/accuracies\"",
                          "\"rewards/margins\"", "\"logps/chosen\"", "\"logps/rejected\"",
                          "\"loss\"", "\"eval_rewards/accuracies\""})
    EXPECT_NE(a.find(key), std::string::npos) << key << " missing in " << a;
  EXPECT_EQ(a.substr(0, a.find("\"seconds\"")), b.substr(0, b.find("\"seconds\"")));
  CliResult rm_run = run_cli("train --model reward-gpt-tiny" + common + "--log " +
                             (dir / "rm.jsonl").string() + " --save " + rm);
  ASSERT_EQ(rm_run.status, 0) << rm_run.output;
  EXPECT_NE(final_line(dir / "rm.jsonl").find("\"eval_accuracy\""), std::string::npos);
  // PPO from the SFT model against that reward model: it trains, logs the rollout's and the
  // update's metrics and the held-out score and KL, and saves a policy that generate reads.
  CliResult ppo_run =
      run_cli("train --model ppo-gpt-tiny" + common + "--init " + sft + " --reward " + rm +
              " --minibatches 1 --ppo-epochs 2 --tokens 8 --log " + (dir / "ppo.jsonl").string() +
              " --save " + ppo);
  ASSERT_EQ(ppo_run.status, 0) << ppo_run.output;
  const std::string p = final_line(dir / "ppo.jsonl");
  for (const char* key :
       {"\"objective/score\"", "\"objective/kl\"", "\"policy/loss\"", "\"value/loss\"",
        "\"policy/clip_fraction\"", "\"eval_score\"", "\"eval_kl\""})
    EXPECT_NE(p.find(key), std::string::npos) << key << " missing in " << p;
  CliResult too_long =
      run_cli("train --model ppo-gpt-tiny" + common + "--reward " + rm + " --tokens 200");
  EXPECT_EQ(too_long.status, 2);
  EXPECT_NE(too_long.output.find("exceed the context of 128"), std::string::npos)
      << too_long.output;
  // Samples for held-out prompts, scored for spelling, by the reward model, for their KL to the
  // reference and against another model's samples.
  CliResult gen = run_cli("generate --weights " + ppo + " --prompts " + pairs +
                          " --samples 4 --tokens 16 --words-from " + small_corpus(dir) +
                          " --reward " + rm + " --ref " + sft + " --against " + sft);
  ASSERT_EQ(gen.status, 0) << gen.output;
  for (const char* key : {"\"property_rate\"", "\"reward_mean\"", "\"kl_to_ref\"", "\"win_rate\"",
                          "\"against_reward_mean\""})
    EXPECT_NE(gen.output.find(key), std::string::npos) << key << " missing in " << gen.output;
  // The SFT model against itself with the same draws: the same samples, every one a tie.
  CliResult self = run_cli("generate --weights " + sft + " --prompts " + pairs +
                           " --samples 4 --tokens 16 --words-from " + small_corpus(dir) +
                           " --reward " + rm + " --ref " + sft + " --against " + sft);
  ASSERT_EQ(self.status, 0) << self.output;
  EXPECT_NE(self.output.find("\"kl_to_ref\": 0,"), std::string::npos) << self.output;
  EXPECT_NE(self.output.find("\"win_rate\": 0.5"), std::string::npos) << self.output;
}

TEST(Cli, PreferenceTrainingRefusesBadFlagsAndFiles) {
  const auto dir = temp_dir();
  // A GPT without a reward model's head.
  const std::string fixture_gpt =
      std::string(SPOOL_SOURCE_DIR) + "/tests/fixtures/dpo_policy.safetensors";
  const std::string bad_file = (dir / "bad.jsonl").string();
  std::ofstream(bad_file) << R"({"prompt": "a", "chosen": "b", "rejected": "c"})"
                          << "\n"
                          << R"({"prompt": "a", "chosen": "b"})"
                          << "\n";
  const std::pair<std::string, std::string> cases[] = {
      {"train --model dpo-gpt-tiny", "needs --data"},
      {"train --model dpo-gpt-tiny --data " + bad_file, "bad.jsonl:2: no \"rejected\" field"},
      {"train --model dpo-gpt-tiny --data x --loss kto", "unknown DPO loss 'kto'"},
      {"train --model dpo-gpt-tiny --data x --label-smoothing 0.1", "add --loss cdpo"},
      {"train --model gpt-tiny --beta 0.2", "--beta applies to --model dpo-gpt-tiny"},
      {"train --model mlp --sft", "--sft fine-tunes gpt-tiny"},
      {"train --model dpo-gpt-tiny --data x --init /nonexistent", "--init: no such file"},
      {"train --model tsm-r18 --beta 0.5", "--beta applies to --model dpo-gpt-tiny"},
      {"train --model tsm-r18 --pack", "--pack does not apply to the video models"},
      {"train --model dpo-gpt-tiny --data x --memory-budget 1/2", "--memory-budget does not apply"},
      {"train --model tsn-r18 --data /some/list.txt",
       "neither 'synthetic', 'synthetic-motion' nor an annotation list"},
      {"train --model mlp --time-limit 5", "--time-limit applies to the video models"},
      {"train --model tea-r18 --width 8", "--width 8: tea-r18's motion module divides"},
      {"train --model ppo-gpt-tiny --data x", "needs --reward"},
      {"train --model ppo-gpt-tiny --data x --reward " + fixture_gpt, "holds no reward head"},
      {"train --model dpo-gpt-tiny --data x --reward " + fixture_gpt,
       "--reward applies to --model ppo-gpt-tiny"},
      {"train --model gpt-tiny --kl-coef 0.1", "--kl-coef applies to --model ppo-gpt-tiny"},
      {"train --model ppo-gpt-tiny --data x --beta 0.1", "--beta applies to --model dpo-gpt-tiny"},
      {"generate --weights " + fixture_gpt + " --prompts x --against " + fixture_gpt,
       "add --reward"},
      {"generate --weights " + fixture_gpt + " --prompts x --ref " + fixture_gpt +
           " --temperature 0.5",
       "--ref estimates KL"},
      {"generate --weights " + fixture_gpt + " --reward " + fixture_gpt,
       "--reward goes with --prompts"},
  };
  for (const auto& [args, want] : cases) {
    CliResult r = run_cli(args);
    EXPECT_EQ(r.status, 2) << args;
    EXPECT_NE(r.output.find(want), std::string::npos) << args << " gave: " << r.output;
  }
}

// The motion set: 14 classes, the last four scored apart as motion_only_acc (4 of 14 test
// clips); its flag for lists is refused on generated data.
TEST(Cli, TheMotionSetTrainsAndScoresItsMotionOnlyClassesApart) {
  const auto dir = temp_dir();
  const auto log = dir / "m.jsonl";
  CliResult r = run_cli(
      "train --model tsn-r18 --data synthetic-motion --steps 2 --size 32 "
      "--width 4 --test-clips 14 --log " +
      log.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("14 classes"), std::string::npos) << r.output;
  const std::string last = final_line(log);
  EXPECT_NE(last.find("\"motion_only_acc\": "), std::string::npos) << last;
  EXPECT_NE(last.find("\"motion_only_clips\": 4"), std::string::npos) << last;
  CliResult plain = run_cli("train --model tsn-r18 --steps 1 --size 32 --width 4 --test-clips 4");
  ASSERT_EQ(plain.status, 0) << plain.output;
  EXPECT_EQ(plain.output.find("motion_only_acc"), std::string::npos) << plain.output;
  CliResult bad = run_cli("train --model tsn-r18 --motion-only-from 10 --steps 1");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.output.find("--motion-only-from goes with --data LIST"), std::string::npos)
      << bad.output;
}

TEST(Cli, VideoListsTrainThroughTheFrameLoaderSkipCorruptVideosAndNameMissingOnes) {
  const auto dir = temp_dir();
  const std::string out = (dir / "vids").string();
  CliResult made = run_cli("make-videos --out " + out + " --clips 12 --test-clips 4 --size 32");
  ASSERT_EQ(made.status, 0) << made.output;
  // A frame of the first test clip is not a JPEG: that clip is skipped, named and counted.
  std::ofstream(out + "/val/clip_000000/img_00005.jpg") << "not a jpeg";
  const auto log = dir / "v.jsonl";
  CliResult r = run_cli("train --model tsn-r18 --data " + out +
                        "/train.txt --steps 2 --size 32 "
                        "--width 4 --log " +
                        log.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("warning: skipping " + out + "/val/clip_000000"), std::string::npos)
      << r.output;
  const std::string last = final_line(log);
  EXPECT_NE(last.find("\"skipped_videos\": 1"), std::string::npos) << last;
  EXPECT_NE(last.find("\"test_clips\": 3"), std::string::npos) << last;
  // Missing folders stop the run before training, all of them listed.
  std::ofstream(out + "/val.txt", std::ios::app) << "val/gone_1 16 3\nval/gone_2 4\n";
  CliResult missing = run_cli("train --model tsn-r18 --data " + out + "/train.txt --steps 2");
  EXPECT_EQ(missing.status, 2);
  EXPECT_NE(missing.output.find("2 of 6 videos are missing"), std::string::npos) << missing.output;
  EXPECT_NE(missing.output.find("val/gone_2 (line 6)"), std::string::npos) << missing.output;
  std::ofstream(out + "/bad.txt") << "train/clip_000000 sixteen 3\n";
  CliResult bad =
      run_cli("train --model tsn-r18 --data " + out + "/bad.txt --test-list " + out + "/bad.txt");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.output.find("bad.txt:1: num_frames 'sixteen'"), std::string::npos) << bad.output;
}

// The two-stream pipeline on generated clips written to disk: extract-flow writes TV-L1 flow the
// loader reads (a clip moving right has rightward flow, one moving left leftward), resumes a
// finished run, trains the temporal stream on it, and fuse combines its test scores with the RGB
// stream's.
TEST(Cli, ExtractFlowTrainsTheTemporalStreamResumesAndFusesWithRgb) {
  const auto dir = temp_dir();
  const std::string out = (dir / "vids").string(), flow = (dir / "flow").string();
  ASSERT_EQ(run_cli("make-videos --out " + out + " --clips 6 --test-clips 4 --size 32").status, 0);
  CliResult x = run_cli("extract-flow --data " + out + "/train.txt --out " + flow + " --jobs 2");
  ASSERT_EQ(x.status, 0) << x.output;
  EXPECT_NE(x.output.find("\"extracted\": 6, \"resumed\": 0, \"failed\": 0, \"frames\": 96, "
                          "\"fields\": 90"),
            std::string::npos)
      << x.output;
  ASSERT_EQ(run_cli("extract-flow --data " + out + "/val.txt --out " + flow).status, 0);
  std::ifstream list(flow + "/train.txt");
  std::string first;
  std::getline(list, first);
  EXPECT_EQ(first, "train/clip_000000 15 0");
  // make-videos' training clip 0 has label 0 (right), clip 3 label 1 (left): the mean
  // horizontal flow has their signs.
  auto mean_x = [&](const std::string& clip) {
    double sum = 0;
    int64_t n = 0;
    for (int i = 1; i <= 15; ++i) {
      char name[64];
      std::snprintf(name, sizeof name, "/train/%s/flow_x_%05d.jpg", clip.c_str(), i);
      const spool::data::Image img = spool::data::read_jpeg(flow + name);
      for (size_t p = 0; p < img.rgb.size(); p += 3, ++n)
        sum += spool::data::flow_input(img.rgb[p]);
    }
    return sum / double(n) * spool::data::kFlowBound;  // pixels a frame
  };
  EXPECT_GT(mean_x("clip_000000"), 0.1);
  EXPECT_LT(mean_x("clip_000003"), -0.1);
  // A finished run is skipped; an entry without its marker runs again.
  std::filesystem::remove(flow + "/train/clip_000002/flow.done");
  CliResult again = run_cli("extract-flow --data " + out + "/train.txt --out " + flow);
  EXPECT_NE(again.output.find("\"extracted\": 1, \"resumed\": 5"), std::string::npos)
      << again.output;
  const std::string rgb = (dir / "rgb.safetensors").string(),
                    fl = (dir / "flow.safetensors").string();
  CliResult t = run_cli("train --model tsn-r18 --modality flow --data " + flow +
                        "/train.txt --steps 2 --size 32 --width 4 --scores " + fl);
  ASSERT_EQ(t.status, 0) << t.output;
  EXPECT_NE(t.output.find("test scores of 4 clips written"), std::string::npos) << t.output;
  ASSERT_EQ(run_cli("train --model tsn-r18 --data " + out +
                    "/train.txt --steps 2 --size 32 --width 4 --scores " + rgb)
                .status,
            0);
  CliResult f = run_cli("fuse --scores " + rgb + "," + fl + " --weights 1,1.5");
  ASSERT_EQ(f.status, 0) << f.output;
  EXPECT_NE(f.output.find("\"clips\": 4, \"top1\": "), std::string::npos) << f.output;
  // Refusals, each naming what is wrong.
  auto refused = [](const std::string& cmd, const std::string& why) {
    CliResult r = run_cli(cmd);
    EXPECT_EQ(r.status, 2) << cmd << ": " << r.output;
    EXPECT_NE(r.output.find(why), std::string::npos) << cmd << ": " << r.output;
  };
  refused("train --model tsn-r18 --modality flow --steps 1", "spool make-videos, extract");
  refused("train --model i3d-r18 --modality flow --data " + flow + "/train.txt",
          "--modality flow is for the 2-D models");
  refused("train --model tsn-r18 --flow-frames 3", "--flow-frames goes with --modality flow");
  refused("extract-flow --data " + out + "/train.txt --out " + out, "would write the flow list");
  refused("extract-flow --data " + out + "/train.txt --out " + flow + " --algorithm lk",
          "'lk' is not tvl1 or farneback");
  refused("fuse --scores " + rgb + "," + fl + " --weights 1", "1 values for 2 files");
  refused("fuse --scores " + rgb + "," + fl + " --weights 1,-2", "'-2' is not a non-negative");
  refused("fuse --scores " + rgb, "fewer than two files");
}

TEST(Cli, I3dStartsFromTwoDimensionalWeightsInflated) {
  const auto dir = temp_dir();
  const std::string ckpt = (dir / "tsn.safetensors").string();
  CliResult tsn = run_cli(
      "train --model tsn-r18 --steps 2 --size 32 --width 4 --test-clips 2 "
      "--save " +
      ckpt);
  ASSERT_EQ(tsn.status, 0) << tsn.output;
  CliResult i3d = run_cli(
      "train --model i3d-r18 --steps 2 --size 32 --width 4 --test-clips 2 "
      "--init-2d " +
      ckpt);
  ASSERT_EQ(i3d.status, 0) << i3d.output;
  EXPECT_NE(i3d.output.find("inflated to 3-D"), std::string::npos) << i3d.output;
  expect_refused("train --model i3d-r18 --steps 2 --size 32 --width 8 --init-2d " + ckpt,
                 "--init-2d: " + ckpt);
  // RGB differences of 5 frames take 12 channels: the RGB kernels, averaged and repeated.
  CliResult diff = run_cli(
      "train --model tsn-r18 --modality rgbdiff --crop --steps 2 --size 32 --width 4 "
      "--test-clips 2 --init-2d " +
      ckpt);
  ASSERT_EQ(diff.status, 0) << diff.output;
  EXPECT_NE(diff.output.find("\"final\": true"), std::string::npos) << diff.output;
}

// Video models train under a memory plan with the plain run's losses, step for step (the TSM
// shift and BatchNorm's running statistics replay exactly; batches are made between steps).
TEST(Cli, VideoTrainingUnderACheckpointPlanGivesThePlainLosses) {
  const auto dir = temp_dir();
  const std::string common =
      "train --model tsm-r18 --steps 3 --size 32 --width 4 --test-clips 2 --log-every 1 ";
  CliResult plain = run_cli(common + "--log " + (dir / "plain.jsonl").string());
  CliResult planned =
      run_cli(common + "--checkpoint-policy sqrt --log " + (dir / "planned.jsonl").string());
  ASSERT_EQ(plain.status, 0) << plain.output;
  ASSERT_EQ(planned.status, 0) << planned.output;
  EXPECT_NE(planned.output.find("checkpoint plan (sqrt"), std::string::npos) << planned.output;
  const auto a = logged_losses(dir / "plain.jsonl"), b = logged_losses(dir / "planned.jsonl");
  EXPECT_EQ(a.size(), 3u);
  EXPECT_EQ(a, b);
  expect_refused("train --model tsn-r18 --memory-budget 1/2", "--memory-budget needs");
}

// NL I3D + GCN on the generated clips takes each frame's object box as a region by default (the
// grid on request), with the same losses under a memory plan as without; --regions is checked.
TEST(Cli, GcnTrainsOnTheGeneratedObjectBoxesAndRegionsAreChecked) {
  const auto dir = temp_dir();
  const std::string common =
      "train --model gcn-r18 --steps 3 --size 32 --width 4 --test-clips 2 --log-every 1 ";
  CliResult boxes = run_cli(common + "--log " + (dir / "boxes.jsonl").string());
  ASSERT_EQ(boxes.status, 0) << boxes.output;
  EXPECT_NE(boxes.output.find("regions: object boxes and grid"), std::string::npos) << boxes.output;
  CliResult planned =
      run_cli(common + "--checkpoint-policy sqrt --log " + (dir / "planned.jsonl").string());
  ASSERT_EQ(planned.status, 0) << planned.output;
  EXPECT_EQ(logged_losses(dir / "boxes.jsonl"), logged_losses(dir / "planned.jsonl"));
  CliResult grid = run_cli(common + "--regions grid --log " + (dir / "grid.jsonl").string());
  ASSERT_EQ(grid.status, 0) << grid.output;
  EXPECT_NE(grid.output.find("regions: grid"), std::string::npos) << grid.output;
  EXPECT_NE(logged_losses(dir / "boxes.jsonl"), logged_losses(dir / "grid.jsonl"));
  expect_refused("train --model tsm-r18 --regions grid", "--regions is for the region graph");
  expect_refused("train --model gcn-r18 --regions all", "--regions 'all' is not boxes or grid");
  const auto list = dir / "train.txt";
  std::ofstream(list) << "clip0 16 0\n";
  expect_refused("train --model gcn-r18 --regions boxes --data " + list.string(),
                 "--regions boxes needs the generated clips' object boxes");
}

TEST(Cli, VideoModalityAndCropOptionsAreChecked) {
  expect_refused("train --model tsn-r18 --modality optical",
                 "--modality 'optical' is not rgb, rgbdiff or flow");
  expect_refused("train --model i3d-r18 --modality rgbdiff", "for the 2-D models");
  expect_refused("train --model tsn-r18 --modality rgbdiff --diff-frames 1",
                 "--diff-frames must be 2 to 16");
  expect_refused("train --model tsn-r18 --diff-frames 3",
                 "--diff-frames goes with --modality rgbdiff");
  expect_refused("train --model gpt-tiny --crop", "--crop applies to the video models");
}

TEST(Cli, VideoListsNameVideoFilesToo) {
  if (std::system("command -v ffmpeg > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "the ffmpeg program (Debian package ffmpeg) is needed to make test videos";
  const auto dir = temp_dir();
  std::ofstream list(dir / "train.txt");
  for (int i = 0; i < 4; ++i) {
    const std::string name = "v" + std::to_string(i) + ".mp4";
    const std::string cmd =
        "ffmpeg -y -loglevel error -f lavfi -i testsrc=size=48x48:rate=10 "
        "-frames:v " +
        std::to_string(9 + i) + " -pix_fmt yuv420p " + (dir / name).string();
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    list << name << " " << i % 2 << "\n";
  }
  list.close();
  const auto log = dir / "v.jsonl";
  CliResult r = run_cli("train --model tsm-r18 --data " + (dir / "train.txt").string() +
                        " --test-list " + (dir / "train.txt").string() +
                        " --steps 2 --size 32 --width 4 --log " + log.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("2 classes"), std::string::npos) << r.output;
  EXPECT_NE(final_line(log).find("\"test_clips\": 4"), std::string::npos) << final_line(log);
}

TEST(Cli, BenchRefusesADataFileThatRandomBatchesWouldNeverRead) {
  // The standard timing input is uniform random bytes: --data was silently ignored with it.
  for (const char* batching : {"", " --batching random"}) {
    const std::string args =
        std::string("bench --model gpt-tiny --steps 1 --warmup 1 --data /dev/null") + batching;
    expect_refused(args, "bench: --data is read only with --batching packed or padded");
    EXPECT_EQ(count_lines(run_cli(args).output), 1) << args;
  }
}

// spool rl writes the values, the policy, the curve and the figure; the standard grid's optimal
// values come out of value iteration (the target's 10 = 1 / (1 - 0.9), below it 1 + 0.9 x 10).
TEST(Cli, RlWritesValuesPolicyCurveAndFigure) {
  const auto dir = temp_dir();
  const std::string out = (dir / "vi").string();
  CliResult r = run_cli("rl --grid standard --algo value-iteration --out " + out);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("\"optimal_rate\": 1"), std::string::npos) << r.output;
  auto rows = [](const std::string& path) {
    std::ifstream in(path);
    std::vector<std::vector<std::string>> cells;
    for (std::string line; std::getline(in, line);) {
      cells.emplace_back();
      std::stringstream ss(line);
      for (std::string c; std::getline(ss, c, ',');) cells.back().push_back(c);
    }
    return cells;
  };
  const auto values = rows(out + "/values.csv"), policy = rows(out + "/policy.csv");
  ASSERT_EQ(values.size(), 5u);
  ASSERT_EQ(values[3].size(), 5u);
  EXPECT_EQ(values[3][2], "10.000000");
  EXPECT_EQ(values[4][2], "10.000000");
  EXPECT_EQ(policy[3][2], "stay");
  EXPECT_EQ(policy[4][2], "up");
  std::ifstream png(out + "/grid.png", std::ios::binary);
  std::string magic(8, '\0');
  png.read(magic.data(), 8);
  EXPECT_EQ(magic, "\x89PNG\r\n\x1a\n");
  const auto curve = rows(out + "/curve.csv");
  ASSERT_GT(curve.size(), 2u);
  EXPECT_EQ(curve[0][0], "iteration");
  // A model-free method through the same outputs; a bad algorithm and a bad grid are named.
  CliResult q = run_cli("rl --algo q-learning --episodes 200 --out " + (dir / "q").string());
  ASSERT_EQ(q.status, 0) << q.output;
  EXPECT_EQ(rows((dir / "q").string() + "/curve.csv")[0][0], "episode");
  CliResult bad = run_cli("rl --algo nope --out " + (dir / "x").string());
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.output.find("--algo 'nope' is not one of"), std::string::npos) << bad.output;
  // A tuning flag the algorithm does not take is refused, not ignored.
  CliResult unused =
      run_cli("rl --algo value-iteration --episodes 5 --out " + (dir / "u").string());
  EXPECT_EQ(unused.status, 2);
  EXPECT_NE(unused.output.find("--episodes does not apply to --algo value-iteration"),
            std::string::npos)
      << unused.output;
  CliResult pole =
      run_cli("rl --algo reinforce --env cartpole --gamma 0.5 --out " + (dir / "p").string());
  EXPECT_EQ(pole.status, 2);
  EXPECT_NE(pole.output.find("--gamma is the grid world's"), std::string::npos) << pole.output;
  std::ofstream(dir / "g.txt") << "..T\n.T.\n";
  CliResult grid = run_cli("rl --algo td0 --grid " + (dir / "g.txt").string() + " --out " +
                           (dir / "y").string());
  EXPECT_EQ(grid.status, 2);
  EXPECT_NE(grid.output.find("2 target cells"), std::string::npos) << grid.output;
}

TEST(Cli, SaRunsRobbinsMonroAndChecksItsStepSizes) {
  const auto dir = temp_dir();
  CliResult r = run_cli("sa --problem rm-cubic --iterations 10000 --out " + (dir / "rm").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("\"sum_a_diverges\": true, \"sum_a_squared_converges\": true"),
            std::string::npos)
      << r.output;
  const std::smatch m = [&] {
    std::smatch x;
    std::regex_search(r.output, x, std::regex("\"error\": ([0-9.e-]+)"));
    return x;
  }();
  ASSERT_FALSE(m.empty()) << r.output;
  EXPECT_LT(std::stod(m[1]), 1e-2) << r.output;
  EXPECT_TRUE(std::filesystem::exists(dir / "rm" / "plot.png"));
  CliResult bad = run_cli("sa --problem rm-tanh --step-size 1/j --out " + (dir / "b").string());
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.output.find("after '/' comes k"), std::string::npos) << bad.output;
}
