#include "engine/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "engine/backend.h"
#include "engine/checked.h"
#include "engine/factory.h"
#include "engine/files.h"

namespace spool {

namespace {

const char* st_dtype(DType t) {
  switch (t) {
    case DType::f32:
      return "F32";
    case DType::f64:
      return "F64";
    case DType::i32:
      return "I32";
    case DType::i64:
      return "I64";
    case DType::b8:
      return "BOOL";
    case DType::bf16:
      return "BF16";
  }
  return "?";
}

bool parse_dtype(const std::string& s, DType& out) {
  static const std::pair<const char*, DType> table[] = {{"F32", DType::f32}, {"F64", DType::f64},
                                                        {"I32", DType::i32}, {"I64", DType::i64},
                                                        {"BOOL", DType::b8}, {"BF16", DType::bf16}};
  for (const auto& [n, t] : table)
    if (s == n) {
      out = t;
      return true;
    }
  return false;
}

// A header value for a message: a number or string as JSON writes it (a number nlohmann read as
// a double, such as 1e30 or 2.0, is written as one: 1e+30, 2.0), at most 40 characters; a list or
// object only by its kind (a nested value could be deep enough to overflow the stack when
// printed).
std::string json_value(const nlohmann::json& v) {
  if (v.is_array()) return "a list";
  if (v.is_object()) return "an object";
  std::string s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return s.size() <= 40 ? s : s.substr(0, 37) + "...";
}

}  // namespace

bool TensorFile::has(const std::string& name) const {
  if (!index.empty()) return index.count(name) > 0;
  return std::any_of(tensors.begin(), tensors.end(),
                     [&](const auto& p) { return p.first == name; });
}

const Tensor& TensorFile::at(const std::string& name) const {
  if (!index.empty()) {
    auto it = index.find(name);
    if (it != index.end()) return tensors[it->second].second;
  } else {
    for (const auto& [n, t] : tensors)
      if (n == name) return t;
  }
  fail("safetensors: ", path, " has no tensor named '", name, "'");
}

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<Tensor> host;
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    SPOOL_CHECK(name != "__metadata__" && !header.contains(name), "safetensors: cannot save ", path,
                ": tensor name '", name, "' is reserved or repeated");
    SPOOL_CHECK(t.defined(), "safetensors: cannot save ", path, ": tensor '", name,
                "' is undefined");
    Tensor c = t.detach();
    if (!c.is_contiguous() || c.device().type != DeviceType::cpu) {
      Tensor copy = empty(c.shape(), c.dtype());
      copy_across(c, copy);
      c = copy;
    }
    host.push_back(c);
    header[name] = {{"dtype", st_dtype(c.dtype())},
                    {"shape", c.shape()},
                    {"data_offsets", {offset, offset + c.nbytes()}}};
    offset += c.nbytes();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data starts 8-byte aligned

  OutputFile out(path, "safetensors: saving " + path);
  uint64_t n = text.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  out.write(len, 8);
  out.write(text);
  for (const Tensor& t : host) out.write(t.raw(), t.nbytes());
  out.commit();
}

namespace {

// Reads exactly n bytes at `offset`, or fails naming the file.
void read_at(int fd, void* dst, uint64_t n, uint64_t offset, const std::string& path) {
  auto* p = static_cast<char*>(dst);
  while (n > 0) {
    const ssize_t got =
        pread(fd, p, size_t(std::min<uint64_t>(n, uint64_t(1) << 30)), off_t(offset));
    if (got < 0 && errno == EINTR) continue;
    SPOOL_CHECK(got > 0, "safetensors: ", path, ": reading failed",
                got < 0 ? std::string(": ") + std::strerror(errno) : std::string(" (file shrank)"));
    p += got;
    n -= uint64_t(got);
    offset += uint64_t(got);
  }
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

TensorFile load_safetensors(const std::string& path) {
  Fd file_fd;
  file_fd.fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  SPOOL_CHECK(file_fd.fd >= 0, "safetensors: cannot open ", path, ": ", std::strerror(errno));
  const int fd = file_fd.fd;
  struct stat st;
  SPOOL_CHECK(fstat(fd, &st) == 0 && S_ISREG(st.st_mode), "safetensors: ", path,
              " is not a regular file");
  const uint64_t size = uint64_t(st.st_size);
  SPOOL_CHECK(size >= 8, "safetensors: ", path, " is truncated (", size,
              " bytes, shorter than the 8-byte header length)");
  unsigned char len[8];
  read_at(fd, len, 8, 0, path);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(len[i]) << (8 * i);
  SPOOL_CHECK(n <= size - 8, "safetensors: ", path, " is truncated or corrupt (header length ", n,
              " exceeds the ", size - 8, " bytes that follow)");
  // The format's own limit (safetensors refuses headers over 100 MB).
  SPOOL_CHECK(n <= kMaxSafetensorsHeader, "safetensors: ", path, " declares a header of ", n,
              " bytes, over the format's limit of ", kMaxSafetensorsHeader);
  std::string text(n, '\0');
  read_at(fd, text.data(), n, 8, path);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    fail("safetensors: ", path, " has a corrupt header: ", e.what());
  }
  SPOOL_CHECK(header.is_object(), "safetensors: ", path, " has a header that is not an object");
  const uint64_t data_size = size - 8 - n;
  TensorFile file;
  file.path = path;
  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    uint64_t begin, end;
  };
  std::vector<Entry> entries;
  entries.reserve(header.size());
  try {
    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "__metadata__") {
        SPOOL_CHECK(it->is_object(), "safetensors: ", path, ": __metadata__ is not an object");
        for (auto m = it->begin(); m != it->end(); ++m) {
          // The format's metadata is a map of strings; anything else (a nested value could be
          // deep enough to overflow the stack when printed) is refused.
          SPOOL_CHECK(m->is_string(), "safetensors: ", path, ": metadata '", m.key().substr(0, 60),
                      "' is not a string");
          file.metadata[m.key()] = m->get<std::string>();
        }
        continue;
      }
      const auto& v = it.value();
      Entry e;
      e.name = it.key();
      SPOOL_CHECK(v.is_object(), "safetensors: ", path, ": entry '", e.name, "' is not an object");
      std::string dt = v.at("dtype").get<std::string>();
      SPOOL_CHECK(parse_dtype(dt, e.dtype), "safetensors: ", path, ": tensor '", e.name,
                  "' has dtype ", dt, ", which spool does not load (F32, F64, I32, I64, BOOL)");
      // Integers only, checked before conversion: a number beyond 64 bits is stored as a double,
      // whose conversion to an integer is undefined.
      const auto& shape = v.at("shape");
      SPOOL_CHECK(shape.is_array(), "safetensors: ", path, ": tensor '", e.name,
                  "' has a shape that is not a list");
      for (const auto& d : shape) {
        const bool fits = d.is_number_unsigned() ? d.get<uint64_t>() <= uint64_t(INT64_MAX)
                                                 : d.is_number_integer() && d.get<int64_t>() >= 0;
        SPOOL_CHECK(fits, "safetensors: ", path, ": tensor '", e.name, "' has dimension ",
                    json_value(d), ", which is not a 64-bit integer >= 0");
        e.shape.push_back(d.is_number_unsigned() ? int64_t(d.get<uint64_t>()) : d.get<int64_t>());
      }
      const auto& offsets = v.at("data_offsets");
      std::vector<uint64_t> off;
      SPOOL_CHECK(offsets.is_array(), "safetensors: ", path, ": tensor '", e.name,
                  "' has data_offsets that are not a list");
      for (const auto& o : offsets) {
        SPOOL_CHECK(o.is_number_unsigned() || (o.is_number_integer() && o.get<int64_t>() >= 0),
                    "safetensors: ", path, ": tensor '", e.name, "' has data offset ",
                    json_value(o), ", which is not a 64-bit integer >= 0");
        off.push_back(o.get<uint64_t>());
      }
      SPOOL_CHECK(off.size() == 2 && off[0] <= off[1] && off[1] <= data_size, "safetensors: ", path,
                  ": tensor '", e.name, "' has byte range outside the ", data_size,
                  " data bytes (file truncated or corrupt)");
      e.begin = off[0];
      e.end = off[1];
      // The byte count the shape needs, computed without wrapping: a shape whose product
      // overflows is refused here, before anything is sized from it.
      const std::string what =
          "safetensors: " + path + ": tensor '" + e.name + "' of shape " + str(e.shape);
      const int64_t elems = checked_product(e.shape, what.c_str());
      const int64_t bytes = checked_mul(elems, int64_t(itemsize(e.dtype)), what.c_str());
      SPOOL_CHECK(e.end - e.begin == uint64_t(bytes), "safetensors: ", path, ": tensor '", e.name,
                  "' has ", e.end - e.begin, " bytes for shape ", str(e.shape), " of ", dt, " (",
                  bytes, " expected)");
      entries.push_back(std::move(e));
    }
  } catch (const nlohmann::json::exception& e) {
    fail("safetensors: ", path, " has a malformed header entry: ", e.what());
  }
  // File order is data order; overlapping byte ranges mean a corrupt or crafted file.
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  uint64_t reach = 0;
  const Entry* reached_by = nullptr;
  for (const Entry& e : entries) {
    SPOOL_CHECK(e.begin >= reach || e.begin == e.end, "safetensors: ", path, ": tensors '",
                reached_by ? reached_by->name : "", "' and '", e.name, "' overlap (file corrupt)");
    if (e.end > reach) {
      reach = e.end;
      reached_by = &e;
    }
  }
  file.tensors.reserve(entries.size());
  for (const Entry& e : entries) {
    Tensor t = empty(e.shape, e.dtype);
    read_at(fd, t.raw(), e.end - e.begin, 8 + n + e.begin, path);
    file.index.emplace(e.name, file.tensors.size());
    file.tensors.emplace_back(e.name, t);
  }
  return file;
}

std::string first_nonfinite(const TensorFile& file) {
  for (const auto& [name, t] : file.tensors) {
    if (t.dtype() != DType::f32 && t.dtype() != DType::f64 && t.dtype() != DType::bf16) continue;
    const int64_t n = t.numel();
    int64_t bad = 0, first = -1;
    if (t.dtype() == DType::bf16) {
      const uint16_t* p = static_cast<const uint16_t*>(t.raw());
      for (int64_t i = 0; i < n; ++i)  // exponent all ones: an infinity or a NaN
        if ((p[i] & 0x7f80u) == 0x7f80u && bad++ == 0) first = i;
    } else if (t.dtype() == DType::f32) {
      const float* p = static_cast<const float*>(t.raw());
      for (int64_t i = 0; i < n; ++i)
        if (!std::isfinite(p[i]) && bad++ == 0) first = i;
    } else {
      const double* p = static_cast<const double*>(t.raw());
      for (int64_t i = 0; i < n; ++i)
        if (!std::isfinite(p[i]) && bad++ == 0) first = i;
    }
    if (bad)
      return cat_str("tensor '", name, "' ", str(t.shape()), " holds ", bad,
                     " NaN or infinite value", bad > 1 ? "s" : "", " (the first at flat index ",
                     first, ")");
  }
  return "";
}

}  // namespace spool
