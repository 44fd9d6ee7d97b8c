#include "engine/safetensors.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/backend.h"
#include "engine/factory.h"

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
  }
  return "?";
}

bool parse_dtype(const std::string& s, DType& out) {
  static const std::pair<const char*, DType> table[] = {{"F32", DType::f32},
                                                        {"F64", DType::f64},
                                                        {"I32", DType::i32},
                                                        {"I64", DType::i64},
                                                        {"BOOL", DType::b8}};
  for (const auto& [n, t] : table)
    if (s == n) {
      out = t;
      return true;
    }
  return false;
}

}  // namespace

bool TensorFile::has(const std::string& name) const {
  return std::any_of(tensors.begin(), tensors.end(),
                     [&](const auto& p) { return p.first == name; });
}

const Tensor& TensorFile::at(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
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

  namespace fs = std::filesystem;
  fs::path target(path);
  fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  SPOOL_CHECK(fs::is_directory(dir), "safetensors: cannot save ", path, ": folder ", dir.string(),
              " does not exist");
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  SPOOL_CHECK(f, "safetensors: cannot write ", tmp, ": ", std::strerror(errno));
  uint64_t n = text.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  bool ok = std::fwrite(len, 1, 8, f) == 8 && std::fwrite(text.data(), 1, n, f) == n;
  for (const Tensor& t : host)
    if (ok && t.nbytes() > 0) ok = std::fwrite(t.raw(), 1, t.nbytes(), f) == t.nbytes();
  ok = ok && std::fflush(f) == 0 && fsync(fileno(f)) == 0;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail("safetensors: writing ", path, " failed: ", std::strerror(errno));
  }
}

TensorFile load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  SPOOL_CHECK(in && std::filesystem::is_regular_file(path), "safetensors: cannot open ", path);
  const uint64_t size = std::filesystem::file_size(path);
  SPOOL_CHECK(size >= 8, "safetensors: ", path, " is truncated (", size,
              " bytes, shorter than the 8-byte header length)");
  unsigned char len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(len[i]) << (8 * i);
  SPOOL_CHECK(n <= size - 8, "safetensors: ", path, " is truncated or corrupt (header length ", n,
              " exceeds the ", size - 8, " bytes that follow)");
  std::string text(n, '\0');
  in.read(text.data(), std::streamsize(n));
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
  try {
    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "__metadata__") {
        for (auto m = it->begin(); m != it->end(); ++m)
          file.metadata[m.key()] = m->is_string() ? m->get<std::string>() : m->dump();
        continue;
      }
      const auto& v = it.value();
      Entry e;
      e.name = it.key();
      std::string dt = v.at("dtype").get<std::string>();
      SPOOL_CHECK(parse_dtype(dt, e.dtype), "safetensors: ", path, ": tensor '", e.name,
                  "' has dtype ", dt, ", which spool does not load (F32, F64, I32, I64, BOOL)");
      e.shape = v.at("shape").get<Shape>();
      for (int64_t s : e.shape)
        SPOOL_CHECK(s >= 0, "safetensors: ", path, ": tensor '", e.name, "' has shape ",
                    str(e.shape));
      auto off = v.at("data_offsets").get<std::vector<uint64_t>>();
      SPOOL_CHECK(off.size() == 2 && off[0] <= off[1] && off[1] <= data_size, "safetensors: ", path,
                  ": tensor '", e.name, "' has byte range outside the ", data_size,
                  " data bytes (file truncated or corrupt)");
      e.begin = off[0];
      e.end = off[1];
      SPOOL_CHECK(e.end - e.begin == uint64_t(numel(e.shape)) * itemsize(e.dtype),
                  "safetensors: ", path, ": tensor '", e.name, "' has ", e.end - e.begin,
                  " bytes for shape ", str(e.shape), " of ", dt);
      entries.push_back(e);
    }
  } catch (const nlohmann::json::exception& e) {
    fail("safetensors: ", path, " has a malformed header entry: ", e.what());
  }
  for (const Entry& e : entries) {
    Tensor t = empty(e.shape, e.dtype);
    in.seekg(std::streamoff(8 + n + e.begin));
    in.read(static_cast<char*>(t.raw()), std::streamsize(e.end - e.begin));
    SPOOL_CHECK(in || e.end == e.begin, "safetensors: ", path, ": reading tensor '", e.name,
                "' failed");
    file.tensors.emplace_back(e.name, t);
  }
  std::sort(file.tensors.begin(), file.tensors.end(), [&](const auto& a, const auto& b) {
    auto pos = [&](const std::string& nm) {
      for (const Entry& e : entries)
        if (e.name == nm) return e.begin;
      return uint64_t(0);
    };
    return pos(a.first) < pos(b.first);
  });
  return file;
}

}  // namespace spool
