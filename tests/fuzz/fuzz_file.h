// What every fuzz target shares. libFuzzer hands a target bytes and spool's loaders read paths,
// so each input is written to a file of the target's own process (in $TMPDIR, else /dev/shm, else
// /tmp; the same path every call, removed at exit) and the real loader reads it from there. A
// hostile file may only end in spool::Error: another exception escaping, a crash, a leak or a
// sanitizer report is a finding (docs/testing.md).
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace spool::fuzz {

inline std::string scratch_dir() {
  if (const char* t = std::getenv("TMPDIR"); t && *t) return t;
  std::error_code ec;
  if (std::filesystem::is_directory("/dev/shm", ec) && access("/dev/shm", W_OK) == 0)
    return "/dev/shm";
  return "/tmp";
}

// The input as the file `spool-fuzz-<pid><suffix>` (the suffix for loaders that look at it).
inline const std::string& input_file(const uint8_t* data, size_t size, const char* suffix) {
  static const std::string path = [&] {
    std::string p = scratch_dir() + "/spool-fuzz-" + std::to_string(getpid()) + suffix;
    static std::string removed_at_exit;
    removed_at_exit = p;
    std::atexit([] { std::remove(removed_at_exit.c_str()); });
    return p;
  }();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || (size && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
    std::perror(path.c_str());
    std::abort();  // the harness, not the loader, failed: stop rather than fuzz nothing
  }
  return path;
}

}  // namespace spool::fuzz
