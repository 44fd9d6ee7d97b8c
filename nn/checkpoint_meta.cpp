#include "nn/checkpoint_meta.h"

#include <cerrno>
#include <cstdlib>
#include <limits>

namespace spool::nn {

namespace {

const std::string& field(const TensorFile& file, const std::string& key) {
  auto it = file.metadata.find(key);
  SPOOL_CHECK(it != file.metadata.end(), "checkpoint: ", file.path,
              " is not a spool training checkpoint (no '", key, "' in its metadata)");
  return it->second;
}

// Plain decimal digits, optionally with a leading '-' when `negative_ok`; nothing else (no
// spaces, signs, exponents or hex).
bool decimal(const std::string& s, bool negative_ok) {
  size_t i = (negative_ok && !s.empty() && s[0] == '-') ? 1 : 0;
  if (i == s.size() || s.size() - i > 20) return false;
  for (; i < s.size(); ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

}  // namespace

int64_t metadata_int(const TensorFile& file, const std::string& key, int64_t lo, int64_t hi) {
  const std::string& v = field(file, key);
  errno = 0;
  char* end = nullptr;
  const long long x = decimal(v, true) ? std::strtoll(v.c_str(), &end, 10) : 0;
  SPOOL_CHECK(decimal(v, true) && errno == 0 && end && *end == '\0', "checkpoint: ", file.path,
              ": metadata field '", key, "' is '", v.substr(0, 40), "', not an integer");
  SPOOL_CHECK(x >= lo && x <= hi, "checkpoint: ", file.path, ": metadata field '", key, "' is ",
              x, ", outside ", lo, " .. ", hi);
  return x;
}

uint64_t metadata_u64(const TensorFile& file, const std::string& key) {
  const std::string& v = field(file, key);
  errno = 0;
  char* end = nullptr;
  const unsigned long long x = decimal(v, false) ? std::strtoull(v.c_str(), &end, 10) : 0;
  SPOOL_CHECK(decimal(v, false) && errno == 0 && end && *end == '\0', "checkpoint: ", file.path,
              ": metadata field '", key, "' is '", v.substr(0, 40),
              "', not a non-negative 64-bit integer");
  return x;
}

CheckpointMeta read_checkpoint_meta(const TensorFile& file) {
  const std::string& format = field(file, "format");
  SPOOL_CHECK(format == "spool-checkpoint-1", "checkpoint: ", file.path, " has unknown format '",
              format.substr(0, 40), "' (this spool reads spool-checkpoint-1)");
  CheckpointMeta m;
  m.model = field(file, "model");
  const int64_t big = std::numeric_limits<int64_t>::max();
  m.step = metadata_int(file, "step", 0, big);
  m.seed = metadata_u64(file, "seed");
  m.batch = metadata_int(file, "batch", 1, big);
  m.rng_seed = metadata_u64(file, "rng_seed");
  m.rng_offset = metadata_u64(file, "rng_offset");
  return m;
}

}  // namespace spool::nn
