#include "tools/cli.h"
#include "engine/clock.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "tools/commands.h"

namespace spool::cli {

Args::Args(int argc, char** argv, int first, const std::vector<FlagSpec>& allowed,
           const std::string& command)
    : command_(command) {
  std::string summary;
  for (const Command& c : commands())
    if (command == c.name) summary = c.summary;
  CLI::App app(summary, "spool " + command);
  app.set_help_flag("-h,--help", "print this help and exit");
  app.get_formatter()->column_width(30);
  std::map<std::string, std::string> given;
  std::vector<std::pair<std::string, CLI::Option*>> options;
  for (const FlagSpec& f : allowed) {
    CLI::Option* o = f.takes_value ? app.add_option("--" + f.name, given[f.name], f.help)
                                   : app.add_flag("--" + f.name, f.help);
    if (f.takes_value) o->type_name("VALUE");
    if (!f.group.empty()) o->group(f.group);
    options.emplace_back(f.name, o);
  }
  try {
    // CLI11 takes argv[0] as the program's name: here the command's.
    app.parse(argc - first + 1, argv + first - 1);
  } catch (const CLI::CallForHelp&) {
    throw HelpRequested(app.help());
  } catch (const CLI::ExtrasError& e) {
    throw UsageError(command + ": " + e.what() + " (see spool " + command + " --help)");
  } catch (const CLI::ParseError& e) {
    throw UsageError(command + ": " + e.what());
  }
  for (const auto& [name, o] : options) {
    if (o->count() == 0) continue;
    if (o->count() > 1) throw UsageError(command + ": --" + name + " is given twice");
    values_[name] = given[name];
  }
}

std::string Args::str(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

int64_t Args::positive_int(const std::string& name, int64_t fallback) const {
  if (!has(name)) return fallback;
  const std::string& v = values_.at(name);
  char* end = nullptr;
  errno = 0;
  long long x = std::strtoll(v.c_str(), &end, 10);
  // Digits only: no spaces or signs, and nothing clamped (strtoll's ERANGE).
  if (v.empty() || *end != '\0' || x <= 0 || errno == ERANGE || !std::isdigit((unsigned char)v[0]))
    throw UsageError(command_ + ": --" + name + " '" + v + "' is not a positive integer");
  return x;
}

uint64_t Args::seed(const std::string& name, uint64_t fallback) const {
  if (!has(name)) return fallback;
  const std::string& v = values_.at(name);
  char* end = nullptr;
  errno = 0;
  unsigned long long x = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || !std::isdigit((unsigned char)v[0]) || errno == ERANGE)
    throw UsageError(command_ + ": --" + name + " '" + v + "' is not a non-negative integer");
  return x;
}

namespace {

// The flag's value as a finite number at or above its floor (above it when `strict`).
double bounded_double(const std::string& command, const std::string& name, const std::string& v,
                      bool strict) {
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !std::isfinite(x) || x < 0 || (strict && x == 0))
    throw UsageError(command + ": --" + name + " '" + v + "' is not a " +
                     (strict ? "positive" : "non-negative") + " number");
  return x;
}

}  // namespace

double Args::positive_double(const std::string& name, double fallback) const {
  return has(name) ? bounded_double(command_, name, values_.at(name), true) : fallback;
}

double Args::nonnegative_double(const std::string& name, double fallback) const {
  return has(name) ? bounded_double(command_, name, values_.at(name), false) : fallback;
}

double now_seconds() { return now_ms() * 1e-3; }

Device parse_device(const std::string& s) {
  if (s == "cpu") return Device::cpu();
  if (s == "cuda" || s == "cuda:0") return Device::cuda(0);
  throw UsageError("--device '" + s + "' is not cpu or cuda");
}

Progress::Progress(int64_t total) : total_(total), tty_(isatty(2)), start_(now_seconds()) {}

void Progress::update(int64_t done, const std::string& status) {
  if (!tty_) return;
  const int width = 30;
  int filled = total_ > 0 ? int(width * done / total_) : width;
  std::string bar(size_t(filled), '=');
  if (filled < width) bar += '>';
  bar.resize(size_t(width), ' ');
  double rate = done / std::max(1e-9, now_seconds() - start_);
  std::fprintf(stderr, "\r[%s] %lld/%lld %s %.1f it/s ", bar.c_str(), (long long)done,
               (long long)total_, status.c_str(), rate);
  std::fflush(stderr);
}

void Progress::finish() {
  if (tty_) std::fprintf(stderr, "\n");
}

LineLog::LineLog(const std::optional<std::string>& path, std::string what)
    : what_(std::move(what)) {
  if (!path) return;
  try {
    f_ = std::make_unique<OutputFile>(*path, what_);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
}

LineLog::~LineLog() = default;

void LineLog::write(const std::string& line) {
  if (!f_) return;
  f_->write(line);
  f_->write("\n");
  f_->flush();  // so the temporary file can be followed while the run goes on
}

void LineLog::commit() {
  if (!f_) return;
  f_->commit();
  f_.reset();
}

void check_diverged(LineLog& log, int64_t step, double loss) {
  if (std::isfinite(loss)) return;
  log.write(Json().add("step", step).add("loss", loss).add("diverged", true).str());
  log.commit();
  fail("train: the loss is ", loss, " at step ", step,
       ": training diverged and was stopped; nothing was saved (a smaller --lr may help)");
}

bool is_file(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

void check_output(const std::optional<std::string>& path, const std::string& flag) {
  if (!path) return;
  try {
    check_output_path(*path, flag);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
}

double memory_bound_bytes() {
  if (const char* env = std::getenv("SPOOL_MEMORY_LIMIT")) {
    char* end = nullptr;
    const double v = std::strtod(env, &end);
    if (end != env && *end == '\0' && std::isfinite(v) && v > 0) return v;
  }
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? double(pages) * double(page) : 1e300;
}

void check_memory(const std::string& flags, double bytes, const std::string& of) {
  const double bound = memory_bound_bytes();
  if (bytes <= bound) return;
  auto human = [](double b) {
    const char* units[] = {"bytes", "KB", "MB", "GB", "TB", "PB", "EB"};
    int u = 0;
    while (b >= 1000 && u < 6) b /= 1000, ++u;
    char buf[64];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
    return std::string(buf);
  };
  throw UsageError(flags + ": " + of + " alone would need " + human(bytes) +
                   ", more than this machine's " + human(bound) + " of memory");
}

void check_finite(const TensorFile& file, const std::string& what, bool allow) {
  const std::string bad = first_nonfinite(file);
  if (bad.empty()) return;
  if (!allow)
    throw UsageError(what + ": " + file.path + ": " + bad +
                     "; refusing to use it (--allow-nonfinite uses it anyway)");
  std::fprintf(stderr, "spool: warning: %s: %s: %s (used anyway: --allow-nonfinite)\n",
               what.c_str(), file.path.c_str(), bad.c_str());
}

void Json::key(const std::string& k) {
  if (!body_.empty()) body_ += ", ";
  body_ += nlohmann::json(k).dump() + ": ";
}

Json& Json::add(const std::string& k, double v) {
  key(k);
  if (!std::isfinite(v)) {
    body_ += "null";
    return *this;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);  // enough digits to round-trip a float
  body_ += buf;
  return *this;
}

Json& Json::add(const std::string& k, int64_t v) {
  key(k);
  body_ += std::to_string(v);
  return *this;
}

Json& Json::add(const std::string& k, bool v) {
  key(k);
  body_ += v ? "true" : "false";
  return *this;
}

Json& Json::add(const std::string& k, const std::string& v) {
  key(k);
  // Quotes, backslashes and control characters escaped; bytes that are not UTF-8 (sampled text
  // can hold any byte) become U+FFFD, so every line stays valid JSON.
  body_ += nlohmann::json(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return *this;
}

}  // namespace spool::cli
