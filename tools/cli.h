// Command-line plumbing shared by the spool commands: flag parsing with clear errors, a progress
// bar, and a JSON-lines log written atomically.
#pragma once
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/files.h"
#include "engine/safetensors.h"

namespace spool::cli {

// Bad usage: printed as one line, exit status 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// `spool <command> --help`: the command's generated help, printed on stdout with status 0.
class HelpRequested : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One flag of a command: the declaration its parser and its help are both made from.
struct FlagSpec {
  std::string name;  // without the leading dashes
  bool takes_value;
  std::string help;   // one sentence for --help
  std::string group;  // the --help section it is listed under (empty: the command's flags)
};

class Args {
 public:
  // Parses argv[first..] against the allowed flags with CLI11 (tools/cli.cpp): "--flag value"
  // and "--flag=value" both work; an unknown flag, a missing value, a flag given twice or a bare
  // argument is a UsageError naming it; --help throws HelpRequested with the help CLI11 makes
  // from `allowed` and the command's summary (tools/commands.h).
  Args(int argc, char** argv, int first, const std::vector<FlagSpec>& allowed,
       const std::string& command);
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string str(const std::string& name, const std::string& fallback) const;
  int64_t positive_int(const std::string& name, int64_t fallback) const;
  uint64_t seed(const std::string& name, uint64_t fallback) const;
  double positive_double(const std::string& name, double fallback) const;
  double nonnegative_double(const std::string& name, double fallback) const;  // 0 allowed

 private:
  std::string command_;
  std::map<std::string, std::string> values_;
};

// Redraws one line on a terminal (stderr); silent when stderr is not a terminal.
class Progress {
 public:
  explicit Progress(int64_t total);
  void update(int64_t done, const std::string& status);
  void finish();

 private:
  int64_t total_;
  bool tty_;
  double start_;
};

// Lines written atomically (the JSON-lines logs; memstudy's CSV), through engine/files.h's
// OutputFile: lines go to PATH.tmp.<pid> (flushed, so a run can be followed), renamed to PATH by
// commit(); an unfinished run leaves PATH as it was and the destructor removes the temporary
// file. A character device or FIFO (/dev/null) is written through. `what` names the file in
// error messages.
class LineLog {
 public:
  explicit LineLog(const std::optional<std::string>& path, std::string what = "--log");
  ~LineLog();
  void write(const std::string& line);
  void commit();

 private:
  std::string what_;
  std::unique_ptr<OutputFile> f_;
};

// A training step's loss that is NaN or infinite ends the run: the log gets the step (loss null,
// "diverged": true) and is committed, nothing is saved (a checkpoint of NaN weights would replace
// a good one), and spool::Error says at which step, so the run exits 2 instead of printing
// "final loss nan" with status 0.
void check_diverged(LineLog& log, int64_t step, double loss);

// Whether `path` names a regular file (following links); false, never a throw, for paths the
// file system refuses (too long, a loop of links).
bool is_file(const std::string& path);

// Refuses (UsageError naming the flag) an output path that cannot be written: a missing folder,
// a folder, a link, a block device, an unwritable place. Called for every output before the
// first step of any command, so no work is lost to a bad path.
void check_output(const std::optional<std::string>& path, const std::string& flag);

// Refuses (UsageError naming `what` and the tensor) a loaded file that holds NaN or infinite
// floats, or with `allow` prints a warning and goes on (the --allow-nonfinite flag).
void check_finite(const TensorFile& file, const std::string& what, bool allow);

// Refuses (UsageError) a request whose memory, estimated from its flags before anything is
// allocated, exceeds this machine's physical memory: `flags` names them ("train: --batch
// 1000000000"), `bytes` is a lower bound of what they need (a double, so no product overflows),
// `of` says for what ("the batch's clips"). Without it such a flag grows memory a vector at a
// time until the system kills the process. SPOOL_MEMORY_LIMIT (bytes) replaces the physical
// memory as the bound, for machines shared with others and for tests.
void check_memory(const std::string& flags, double bytes, const std::string& of);
double memory_bound_bytes();  // the bound check_memory uses

// A flat JSON object, keys in the order added: the log lines' format (`"key": value`, numbers as
// %.9g, non-finite numbers as null). nlohmann::json escapes the keys and strings; its own dump
// would reorder keys or drop the spaces the documented log lines have.
class Json {
 public:
  Json& add(const std::string& key, double v);
  Json& add(const std::string& key, int64_t v);
  Json& add(const std::string& key, bool v);
  Json& add(const std::string& key, const std::string& v);
  Json& add(const std::string& key, const char* v) { return add(key, std::string(v)); }
  std::string str() const { return "{" + body_ + "}"; }

 private:
  void key(const std::string& k);
  std::string body_;
};

double now_seconds();

// "cpu" or "cuda" / "cuda:0"; a usage error for anything else. A CUDA device that this build or
// machine lacks is refused by the first use, with the reason.
Device parse_device(const std::string& s);

}  // namespace spool::cli
