// Running the spool command line from tests: its exit status and output, refusals, logs, and a
// fresh folder per test.
#pragma once
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace spool::test_support {

struct CliResult {
  int status;
  std::string output;  // stdout and stderr together
};

inline CliResult run_cli(const std::string& args) {
  std::string cmd = std::string(SPOOL_CLI) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

// The last line of a log (its final JSON object).
inline std::string final_line(const std::filesystem::path& log) {
  std::ifstream f(log);
  std::string line, last;
  while (std::getline(f, line)) last = line;
  return last;
}

// The step and loss of every logged step ("{"step": 3, "loss": 2.3"), in order.
inline std::vector<std::string> logged_losses(const std::filesystem::path& log) {
  std::ifstream f(log);
  std::vector<std::string> out;
  for (std::string line; std::getline(f, line);)
    if (line.find("\"step\"") != std::string::npos && line.find("final") == std::string::npos)
      out.push_back(line.substr(0, line.find(", \"lr\"")));
  return out;
}

// The command exits 2 with a message containing `message`.
inline void expect_refused(const std::string& args, const std::string& message) {
  const CliResult r = run_cli(args);
  EXPECT_EQ(r.status, 2) << args << "\n" << r.output;
  EXPECT_NE(r.output.find(message), std::string::npos) << args << "\n" << r.output;
}

inline int count_lines(const std::string& s) { return int(std::count(s.begin(), s.end(), '\n')); }

// A fresh folder for one test, removed when the test's scope ends (failed assertions included).
class TempDir : public std::filesystem::path {
 public:
  explicit TempDir(std::filesystem::path p) : std::filesystem::path(std::move(p)) {
    std::filesystem::remove_all(*this);
    std::filesystem::create_directories(*this);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(*this, ignored);
  }
};

// Named by the process and the test, so that runs side by side (two checkouts' suites, ctest's
// processes) never share one.
inline TempDir temp_dir() {
  const ::testing::TestInfo* t = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string(t->test_suite_name()) + "_" + t->name();
  std::replace(name.begin(), name.end(), '/', '_');  // parameterised tests' names
  return TempDir(std::filesystem::temp_directory_path() /
                 ("spool_cli_" + std::to_string(::getpid()) + "_" + name));
}

}  // namespace spool::test_support
