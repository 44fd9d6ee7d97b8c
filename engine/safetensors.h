// The safetensors format: an 8-byte little-endian header length, a JSON header naming each
// tensor's dtype, shape and byte range, then the raw little-endian data. Files move unchanged
// between spool and the Python ecosystem.
#pragma once
#include <map>
#include <string>
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
};

// Writes atomically: a temporary file in the same folder, flushed, then renamed over `path`.
// Non-contiguous tensors are written in row-major order. Names must be unique and not
// "__metadata__".
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads every tensor to the CPU. A missing, truncated or corrupt file, an unsupported dtype or
// inconsistent offsets raise spool::Error naming the file and the problem.
TensorFile load_safetensors(const std::string& path);

}  // namespace spool
