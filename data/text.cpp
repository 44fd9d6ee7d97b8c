#include "data/text.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/factory.h"

namespace spool::data {

namespace fs = std::filesystem;

std::string default_corpus_path() {
  const char* path = "/usr/share/games/fortunes";
  SPOOL_CHECK(fs::is_directory(path), "text: the default corpus ", path,
              " is missing; install Debian's fortunes package (apt-get install fortunes) or pass "
              "--data PATH");
  return path;
}

namespace {

// Offset of the first byte that breaks UTF-8, or -1.
int64_t invalid_utf8_at(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int extra = c < 0x80           ? 0
                : (c >> 5) == 0x6  ? 1
                : (c >> 4) == 0xE  ? 2
                : (c >> 3) == 0x1E ? 3
                                   : -1;
    if (extra < 0 || i + size_t(extra) >= s.size() + (extra == 0 ? 1 : 0)) return int64_t(i);
    for (int k = 1; k <= extra; ++k)
      if ((static_cast<unsigned char>(s[i + size_t(k)]) >> 6) != 0x2) return int64_t(i);
    i += size_t(extra) + 1;
  }
  return -1;
}

void split_documents(const std::string& text, std::vector<std::string>& out) {
  std::istringstream in(text);
  std::string line, doc;
  bool separated = false;
  while (std::getline(in, line)) {
    if (line == "%") {
      separated = true;
      if (!doc.empty()) out.push_back(doc);
      doc.clear();
      continue;
    }
    doc += line + "\n";
  }
  if (!doc.empty()) out.push_back(doc);
  (void)separated;
}

void read_file(const fs::path& p, std::vector<std::string>& docs) {
  std::ifstream in(p, std::ios::binary);
  SPOOL_CHECK(in, "text: cannot read ", p.string());
  std::string text((std::istreambuf_iterator<char>(in)), {});
  SPOOL_CHECK(!text.empty(), "text: ", p.string(), " is empty");
  const int64_t bad = invalid_utf8_at(text);
  SPOOL_CHECK(bad < 0, "text: ", p.string(), " is not UTF-8 text (invalid byte at offset ", bad,
              ")");
  split_documents(text, docs);
}

}  // namespace

TextCorpus load_text(const std::string& path) {
  // Error codes throughout: an overlong path, a loop of links or an unreadable folder is an
  // error naming it, not a std::filesystem exception; a FIFO or device is refused, never read
  // (a FIFO would block the run forever).
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  SPOOL_CHECK(!ec && fs::exists(st), "text: no such file or folder: ", path,
              ec ? " (" + ec.message() + ")" : std::string());
  std::vector<std::string> docs;
  if (fs::is_directory(st)) {
    std::vector<fs::path> files;
    fs::recursive_directory_iterator it(path, fs::directory_options::skip_permission_denied, ec),
        end;
    for (; !ec && it != end; it.increment(ec)) {
      std::error_code e2;
      if (it->is_symlink(e2) || !it->is_regular_file(e2) || it->path().extension() == ".dat")
        continue;
      files.push_back(it->path());
    }
    SPOOL_CHECK(!ec, "text: cannot list ", path, ": ", ec.message());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) read_file(f, docs);
  } else {
    SPOOL_CHECK(fs::is_regular_file(st), "text: ", path,
                " is neither a file nor a folder (a device or pipe is not read)");
    read_file(path, docs);
  }
  SPOOL_CHECK(docs.size() >= 2, "text: ", path, " holds ", docs.size(),
              " document(s); at least 2 are needed (one is held out for validation)");
  TextCorpus c;
  for (size_t i = 0; i < docs.size(); ++i) {
    const bool val = i % 20 == 19 || (docs.size() < 20 && i + 1 == docs.size());
    (val ? c.val : c.train).push_back(std::move(docs[i]));
    (val ? c.val_bytes : c.train_bytes) += int64_t((val ? c.val : c.train).back().size());
  }
  return c;
}

namespace {
struct Rows {
  std::vector<int64_t> idx, tgt, pos, seg;
  int64_t real = 0;
  LmBatch finish(int64_t batch, int64_t t, bool packed) {
    LmBatch b;
    b.idx = from_vector(idx, {batch, t});
    b.targets = from_vector(tgt, {batch, t});
    if (packed) {
      b.positions = from_vector(pos, {batch, t});
      b.segments = from_vector(seg, {batch, t});
    }
    b.real_targets = real;
    return b;
  }
};
int64_t byte(char c) { return int64_t(static_cast<unsigned char>(c)); }
}  // namespace

TextStream::TextStream(const std::vector<std::string>& docs) {
  for (const auto& d : docs) bytes_ += d;
}

LmBatch TextStream::sample(int64_t batch, int64_t t, RngState state) const {
  const std::string& joined = bytes_;
  SPOOL_CHECK(int64_t(joined.size()) > t + 1, "text: the corpus has ", joined.size(),
              " bytes, fewer than one window of ", t + 1);
  Rows r;
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t start = int64_t(uniform_at(state, b) * double(int64_t(joined.size()) - t - 1));
    for (int64_t i = 0; i < t; ++i) {
      r.idx.push_back(byte(joined[size_t(start + i)]));
      r.tgt.push_back(byte(joined[size_t(start + i + 1)]));
    }
  }
  r.real = batch * t;
  return r.finish(batch, t, false);
}

LmBatch packed_batch(const std::vector<std::string>& docs, int64_t batch, int64_t t,
                     size_t& cursor) {
  Rows r;
  size_t offset = 0;  // bytes of docs[cursor] already used by the previous row
  for (int64_t b = 0; b < batch; ++b) {
    int64_t filled = 0;
    while (filled < t) {
      const std::string& d = docs[cursor % docs.size()];
      const int64_t take = std::min<int64_t>(int64_t(d.size() - offset), t - filled);
      for (int64_t i = 0; i < take; ++i) {
        const size_t at = offset + size_t(i);
        r.idx.push_back(byte(d[at]));
        const bool last = i + 1 == take;  // no target crosses into the next document or row
        r.tgt.push_back(last ? -100 : byte(d[at + 1]));
        r.pos.push_back(i);
        r.seg.push_back(filled);
        if (!last) ++r.real;
      }
      filled += take;
      offset += size_t(take);
      if (offset >= d.size()) {
        offset = 0;
        ++cursor;
      }
    }
  }
  return r.finish(batch, t, true);
}

LmBatch padded_batch(const std::vector<std::string>& docs, int64_t batch, int64_t t,
                     size_t& cursor) {
  Rows r;
  for (int64_t b = 0; b < batch; ++b) {
    const std::string& d = docs[cursor++ % docs.size()];
    const int64_t n = std::min<int64_t>(int64_t(d.size()), t);
    for (int64_t i = 0; i < t; ++i) {
      r.idx.push_back(i < n ? byte(d[size_t(i)]) : 0);
      r.tgt.push_back(i + 1 < n ? byte(d[size_t(i + 1)]) : -100);
    }
    r.real += std::max<int64_t>(n - 1, 0);
  }
  return r.finish(batch, t, false);
}

}  // namespace spool::data
