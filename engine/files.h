// Output files. Every file spool writes (checkpoints, logs, CSVs, generated data, frames) goes
// through OutputFile, so every writer follows the same rules:
// - a path that does not exist yet, or names a regular file, is written atomically: the bytes go
//   to PATH.tmp.<pid>.<n> in the same folder (PATH's name shortened, with a hash, when that
//   would be longer than a file name may be), are flushed and fsync'd, and the temporary file is
//   renamed over PATH (then the folder is fsync'd). A reader never sees half a file, and a run
//   that fails or is killed leaves the old PATH as it was;
// - a character device or a FIFO (/dev/null, a named pipe) is written through plainly: it is
//   never renamed over or replaced;
// - a symbolic link, a directory, a block device and a socket are refused with an error naming
//   the flag and the path: spool never writes through a link or onto a disk;
// - the temporary file is removed on every error path and by the destructor of an uncommitted
//   file; one left by a killed run (its pid no longer running) is removed by the next write to the
//   same PATH, so they never accumulate.
#pragma once
#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>

namespace spool {

// Checks, before any work is done, that `path` can be written as an output: its folder exists,
// the path is of a kind written above (not a link, directory, block device or socket), and a file
// can be created in the folder (a probe file is created and removed). Throws spool::Error
// starting with `what` (e.g. "--save") otherwise. Cheap: call it for every output path before
// the first training step.
void check_output_path(const std::string& path, const std::string& what);

// Durability of a committed file. durable: fsync'd before the rename and the folder after it,
// so the new contents survive a power cut. replaceable: atomic (never half a file, the old one
// kept on failure) without the fsyncs, for bulk generated data that can be made again (the
// frames of make-videos: 1200 clips x 16 frames, each fsync'd, took a third longer).
enum class Sync { durable, replaceable };

class OutputFile {
 public:
  // Opens the temporary file (or the device) for writing; throws spool::Error as
  // check_output_path does.
  OutputFile(std::string path, std::string what, Sync sync = Sync::durable);
  ~OutputFile();  // an uncommitted file's temporary is removed; PATH is left untouched
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  void write(const void* data, size_t n);
  void write(std::string_view s) { write(s.data(), s.size()); }
  // Pushes buffered bytes to the temporary file, so it can be followed while a run goes on.
  void flush();
  // fsync, close, and rename into place (a device: close). Throws on any failure, leaving PATH
  // as it was.
  void commit();
  // Where the bytes are going now: the temporary file, or PATH itself for a device or FIFO.
  const std::string& writing_to() const { return writing_; }
  const std::string& path() const { return path_; }

 private:
  void abandon() noexcept;
  std::string path_, what_, writing_;
  std::FILE* f_ = nullptr;
  bool stream_ = false;  // a character device or FIFO, written through
  Sync sync_ = Sync::durable;
};

// Writes `bytes` to `path` through OutputFile.
void write_file(const std::string& path, std::string_view bytes, const std::string& what,
                Sync sync = Sync::durable);

}  // namespace spool
