// The safetensors format: an 8-byte little-endian header length, a JSON header naming each
// tensor's dtype, shape and byte range, then the raw little-endian data. Files move unchanged
// between spool and the Python ecosystem.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace spool {

struct TensorFile {
  std::vector<std::pair<std::string, Tensor>> tensors;  // in file order
  std::map<std::string, std::string> metadata;          // the header's "__metadata__"
  bool has(const std::string& name) const;
  // Throws naming the file's path and the missing tensor.
  const Tensor& at(const std::string& name) const;
  std::string path;
  // name -> position in `tensors`, filled by load_safetensors (has() and at() fall back to a
  // scan when it is empty, as for a TensorFile built by hand).
  std::unordered_map<std::string, size_t> index;
};

// The largest header load_safetensors reads (the format's limit).
constexpr uint64_t kMaxSafetensorsHeader = uint64_t(100) << 20;

// Writes through OutputFile (engine/files.h): atomically to a regular or new path, plainly to a
// character device or FIFO, never over a link, folder or block device.
// Non-contiguous tensors are written in row-major order. Names must be unique and not
// "__metadata__".
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads every tensor to the CPU. A missing, truncated or corrupt file, an unsupported dtype,
// a shape whose size overflows, a byte range that does not match its shape, overlapping tensors
// or a header over kMaxSafetensorsHeader raise spool::Error naming the file and the problem,
// before any tensor is allocated. Tensors are in data order; loading is O(n log n) in their
// number.
TensorFile load_safetensors(const std::string& path);

// "" when every f32 and f64 tensor of `file` is finite; otherwise a description of the first
// tensor that holds a NaN or an infinity (its name, shape, how many and where the first is).
std::string first_nonfinite(const TensorFile& file);

}  // namespace spool
