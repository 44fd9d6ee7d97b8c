// The command-line contract: exit statuses, one-line errors, the JSONL log and the digits MLP.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

struct Run {
  int status;
  std::string output;  // stdout and stderr together
};

Run run_cli(const std::string& args) {
  std::string cmd = std::string(SPOOL_CLI) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

int count_lines(const std::string& s) { return int(std::count(s.begin(), s.end(), '\n')); }

std::filesystem::path temp_dir() {
  auto d = std::filesystem::temp_directory_path() /
           ("spool_cli_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

}  // namespace

TEST(Cli, HelpListsTheCommandsAndExitsZero) {
  Run r = run_cli("--help");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.output.find("train"), std::string::npos);
  EXPECT_NE(r.output.find("info"), std::string::npos);
}

TEST(Cli, InfoNamesVersionBackendsBlasAndThreads) {
  Run r = run_cli("info");
  EXPECT_EQ(r.status, 0);
  for (const char* key : {"spool ", "backends: cpu", "gpu: ", "blas: ", "threads: "})
    EXPECT_NE(r.output.find(key), std::string::npos) << key << " missing in:\n" << r.output;
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
    Run r = run_cli(args);
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
  Run r = run_cli("train --model mlp --data " + (dir / "bad.csv").string() + " --log " +
                  log.string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("65"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(log));
  EXPECT_FALSE(std::filesystem::exists(log.string() + ".tmp"));
  std::filesystem::remove_all(dir);
}

TEST(Cli, DigitsMlpReachesNinetyFivePercentAndLogsJsonLines) {
  auto dir = temp_dir();
  auto log = dir / "run.jsonl";
  Run r = run_cli("train --model mlp --data digits --seed 3 --log " + log.string());
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
  std::filesystem::remove_all(dir);
}

TEST(Cli, TrainingIsReproducibleForAFixedSeed) {
  Run a = run_cli("train --model mlp --steps 40 --seed 11");
  Run b = run_cli("train --model mlp --steps 40 --seed 11");
  ASSERT_EQ(a.status, 0) << a.output;
  // Everything but the elapsed time, which follows the last "), ".
  auto stable = [](const std::string& s) { return s.substr(0, s.rfind("), ")); };
  EXPECT_NE(a.output.find("final loss"), std::string::npos) << a.output;
  EXPECT_EQ(stable(a.output), stable(b.output));
}
