#include "engine/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "engine/error.h"

namespace spool {

namespace {

namespace fs = std::filesystem;

std::string folder_of(const std::string& path) {
  const fs::path dir = fs::path(path).parent_path();
  return dir.empty() ? std::string(".") : dir.string();
}

std::string base_of(const std::string& path) { return fs::path(path).filename().string(); }

enum class Kind { absent, regular, stream };

// What `path` is, or an error naming `what` for the kinds spool does not write.
Kind classify(const std::string& path, const std::string& what) {
  SPOOL_CHECK(!path.empty(), what, ": the output path is empty");
  SPOOL_CHECK(path.back() != '/', what, ": ", path, " names a folder, not a file");
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    SPOOL_CHECK(errno == ENOENT, what, ": cannot check ", path, ": ", std::strerror(errno));
    const std::string dir = folder_of(path);
    struct stat d;
    SPOOL_CHECK(stat(dir.c_str(), &d) == 0, what, ": folder ", dir, " does not exist (for ", path,
                ")");
    SPOOL_CHECK(S_ISDIR(d.st_mode), what, ": ", dir, " is not a folder (for ", path, ")");
    return Kind::absent;
  }
  if (S_ISLNK(st.st_mode)) {
    std::error_code ec;
    const fs::path target = fs::read_symlink(path, ec);
    fail(what, ": ", path, " is a symbolic link", ec ? "" : " to " + target.string(),
         "; spool does not write through links: give the path it should write");
  }
  SPOOL_CHECK(!S_ISDIR(st.st_mode), what, ": ", path, " is a folder; give a file name");
  SPOOL_CHECK(!S_ISBLK(st.st_mode), what, ": ", path,
              " is a block device; spool refuses to write onto a disk");
  SPOOL_CHECK(!S_ISSOCK(st.st_mode), what, ": ", path, " is a socket");
  if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) return Kind::stream;
  SPOOL_CHECK(S_ISREG(st.st_mode), what, ": ", path, " is not a regular file");
  return Kind::regular;
}

// The name of the temporaries of `path` up to their <pid>.<n>: FILE.tmp. in FILE's folder, with
// FILE shortened to a prefix and a hash of the whole name when the result would pass NAME_MAX
// (255 bytes on Linux), so that a valid long file name can still be written atomically.
std::string temp_prefix(const std::string& path) {
  const std::string base = base_of(path);
  constexpr size_t kNameMax = 255, kSuffix = 5 + 20 + 1 + 20;  // ".tmp." pid "." counter
  if (base.size() + kSuffix <= kNameMax) return base + ".tmp.";
  uint64_t h = 1469598103934665603ull;  // FNV-1a of the whole name
  for (unsigned char c : base) h = (h ^ c) * 1099511628211ull;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return base.substr(0, kNameMax - kSuffix - 17) + "~" + hex + ".tmp.";
}

// Removes FILE.tmp.<pid>[.<n>] files of `path` left by runs that are no longer running.
void sweep_stale(const std::string& path) {
  const std::string dir = folder_of(path), prefix = temp_prefix(path);
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    std::string digits = name.substr(prefix.size());
    if (const size_t dot = digits.find('.'); dot != std::string::npos) {
      const std::string n = digits.substr(dot + 1);
      if (n.empty() || n.size() > 19 || n.find_first_not_of("0123456789") != std::string::npos)
        continue;
      digits.resize(dot);
    }
    if (digits.empty() || digits.size() > 9 ||
        digits.find_first_not_of("0123456789") != std::string::npos)
      continue;
    const long pid = std::stol(digits);
    if (pid <= 0 || pid == long(getpid())) continue;
    if (kill(pid_t(pid), 0) == 0 || errno != ESRCH) continue;  // alive, or not ours to judge
    const std::string full = (fs::path(dir) / name).string();
    struct stat st;
    if (lstat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode)) unlink(full.c_str());
  }
  closedir(d);
}

// FILE.tmp.<pid>.<n>: unique within the process too, so two writers of one file (a log and a
// checkpoint given the same path in two spellings) never remove each other's temporaries.
std::string temp_name(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  const fs::path dir = fs::path(path).parent_path();
  return (dir / (temp_prefix(path) + std::to_string(getpid()) + "." +
                 std::to_string(counter.fetch_add(1))))
      .string();
}

void fsync_folder(const std::string& path) {
  const int fd = open(folder_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  fsync(fd);  // best effort: some file systems refuse fsync on folders
  close(fd);
}

}  // namespace

void check_output_path(const std::string& path, const std::string& what) {
  if (classify(path, what) == Kind::stream) return;
  // Root passes every permission check, so create the file the write would create.
  const std::string probe = temp_name(path);
  const int fd = open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    if (err == EEXIST) return;  // this process is writing it already
    fail(what, ": cannot create a file in ", folder_of(path), " (for ", path,
         "): ", std::strerror(err));
  }
  close(fd);
  unlink(probe.c_str());
}

OutputFile::OutputFile(std::string path, std::string what, Sync sync)
    : path_(std::move(path)), what_(std::move(what)), sync_(sync) {
  const Kind kind = classify(path_, what_);
  if (kind == Kind::stream) {
    stream_ = true;
    writing_ = path_;
    // Non-blocking open: a FIFO nobody reads is refused at once (ENXIO) instead of blocking
    // the run forever; writes then block as usual.
    const int fd = open(path_.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    SPOOL_CHECK(fd >= 0, what_, ": cannot write ", path_, ": ",
                errno == ENXIO ? std::string("a FIFO with no reader") : std::strerror(errno));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    f_ = fdopen(fd, "wb");
    if (!f_) {
      close(fd);
      fail(what_, ": cannot write ", path_);
    }
    return;
  }
  sweep_stale(path_);
  writing_ = temp_name(path_);
  unlink(writing_.c_str());  // a leftover of a dead process that had our pid; the name is ours
  const int fd = open(writing_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  SPOOL_CHECK(fd >= 0, what_, ": cannot create ", writing_, ": ", std::strerror(errno));
  f_ = fdopen(fd, "wb");
  if (!f_) {
    close(fd);
    unlink(writing_.c_str());
    fail(what_, ": cannot write ", writing_);
  }
}

OutputFile::~OutputFile() { abandon(); }

void OutputFile::abandon() noexcept {
  if (!f_) return;
  std::fclose(f_);
  f_ = nullptr;
  if (!stream_) unlink(writing_.c_str());
}

void OutputFile::write(const void* data, size_t n) {
  SPOOL_CHECK(f_, what_, ": ", path_, " is already closed");
  if (n == 0) return;
  if (std::fwrite(data, 1, n, f_) != n) {
    const int err = errno;
    abandon();
    fail(what_, ": writing ", path_, " failed: ", std::strerror(err));
  }
}

void OutputFile::flush() {
  if (f_ && std::fflush(f_) != 0) {
    const int err = errno;
    abandon();
    fail(what_, ": writing ", path_, " failed: ", std::strerror(err));
  }
}

void OutputFile::commit() {
  SPOOL_CHECK(f_, what_, ": ", path_, " is already closed");
  bool ok = std::fflush(f_) == 0;
  int err = ok ? 0 : errno;
  if (ok && !stream_ && sync_ == Sync::durable && fsync(fileno(f_)) != 0) {
    ok = false;
    err = errno;
  }
  if (std::fclose(f_) != 0 && ok) {
    ok = false;
    err = errno;
  }
  f_ = nullptr;
  if (stream_) {
    SPOOL_CHECK(ok, what_, ": writing ", path_, " failed: ", std::strerror(err));
    return;
  }
  if (ok) {
    // The path may have changed kind since the file was opened (say, replaced by a link): check
    // again so that the rename never replaces one.
    try {
      if (classify(path_, what_) == Kind::stream) fail(what_, ": ", path_, " became a device");
    } catch (...) {
      unlink(writing_.c_str());
      throw;
    }
    if (std::rename(writing_.c_str(), path_.c_str()) != 0) {
      ok = false;
      err = errno;
    }
  }
  if (!ok) {
    unlink(writing_.c_str());
    fail(what_, ": writing ", path_, " failed: ", std::strerror(err));
  }
  if (sync_ == Sync::durable) fsync_folder(path_);
}

void write_file(const std::string& path, std::string_view bytes, const std::string& what,
                Sync sync) {
  OutputFile f(path, what, sync);
  f.write(bytes);
  f.commit();
}

}  // namespace spool
