#include "data/digits.h"

#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <vector>

#include "engine/factory.h"
#include "engine/rng.h"

namespace spool::data {

std::string find_digits() {
  if (const char* env = std::getenv("SPOOL_DIGITS")) return env;
  const char* candidates[] = {
      "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz",
      "/usr/local/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz",
  };
  for (const char* c : candidates)
    if (std::filesystem::exists(c)) return c;
  fail(
      "digits: cannot find digits.csv.gz; install Debian's python3-sklearn "
      "(apt-get install python3-sklearn), set SPOOL_DIGITS, or pass --data PATH");
}

namespace {

std::string read_maybe_gzipped(const std::string& path) {
  std::error_code ec;
  SPOOL_CHECK(std::filesystem::is_regular_file(path, ec), "digits: no such file: ", path);
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files as they are
  SPOOL_CHECK(f, "digits: cannot open ", path);
  std::string text;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) {
    text.append(buf, size_t(n));
    if (text.size() > kMaxDigitsBytes) {
      gzclose(f);
      fail("digits: ", path, " expands past ", kMaxDigitsBytes >> 20,
           " MiB of text; a digits CSV is far smaller (scikit-learn's is 0.3 MiB), so this is "
           "not one (a gzip bomb?)");
    }
  }
  int err = 0;
  const char* msg = gzerror(f, &err);
  std::string why = msg ? msg : "";
  gzclose(f);
  SPOOL_CHECK(n == 0 && err == Z_OK, "digits: ", path, " is not a readable gzip or text file (",
              why, ")");
  return text;
}

// A plain decimal: an optional sign, digits with at most one point, spaces or tabs around it.
// strtod alone reads much more (0x10 as 16, 1e1 as 10, inf, nan), none of which a digits CSV
// holds.
bool parse_decimal(const std::string& field, double& out) {
  size_t b = field.find_first_not_of(" \t\r"), e = field.find_last_not_of(" \t\r");
  if (b == std::string::npos) return false;
  const std::string s = field.substr(b, e - b + 1);
  size_t i = (s[0] == '+' || s[0] == '-') ? 1 : 0, digits = 0, points = 0;
  for (; i < s.size(); ++i) {
    if (s[i] >= '0' && s[i] <= '9')
      ++digits;
    else if (s[i] == '.' && points == 0)
      ++points;
    else
      return false;
  }
  if (digits == 0) return false;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

}  // namespace

void load_digits(const std::string& path, Tensor& images, Tensor& labels) {
  std::istringstream in(read_maybe_gzipped(path));
  std::vector<float> pixels;
  std::vector<int64_t> ys;
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line == "\r") continue;
    std::vector<double> values;
    std::stringstream ls(line);
    std::string field;
    while (std::getline(ls, field, ',')) {
      double v = 0;
      const size_t at = values.size();
      SPOOL_CHECK(parse_decimal(field, v), "digits: ", path, " line ", line_no, ", ",
                  at < 64    ? "pixel " + std::to_string(at)
                  : at == 64 ? "label"
                             : "field " + std::to_string(at + 1),
                  ": '", field.substr(0, 40),
                  "' is not a number (fields are plain decimals such as 12 or 0.5)");
      values.push_back(v);
    }
    SPOOL_CHECK(values.size() == 65, "digits: ", path, " line ", line_no, " has ", values.size(),
                " fields, expected 65 (64 pixels and a label)");
    for (int i = 0; i < 64; ++i) {
      SPOOL_CHECK(values[size_t(i)] >= 0 && values[size_t(i)] <= 16, "digits: ", path, " line ",
                  line_no, ": pixel ", i, " is ", values[size_t(i)], ", outside 0..16");
      pixels.push_back(float(values[size_t(i)] / 16.0));
    }
    const double y = values[64];
    SPOOL_CHECK(y >= 0 && y <= 9 && y == double(int64_t(y)), "digits: ", path, " line ", line_no,
                ": label ", y, " is not a digit 0..9");
    ys.push_back(int64_t(y));
  }
  SPOOL_CHECK(!ys.empty(), "digits: ", path, " holds no images");
  images = from_vector(pixels, {int64_t(ys.size()), 64});
  labels = from_vector(ys);
}

Split digits_split(const std::string& path) {
  Tensor x, y;
  load_digits(path, x, y);
  const int64_t n = y.numel(), n_test = n / 5;
  SPOOL_CHECK(n_test > 0, "digits: ", path, " holds ", n, n == 1 ? " image" : " images",
              "; at least 5 are needed to hold out a fifth of them as test images");
  // Fisher-Yates with a fixed stream.
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
  RngState s{20240613, 0};
  for (int64_t i = n - 1; i > 0; --i) {
    int64_t j = int64_t(uniform_at(s, n - 1 - i) * double(i + 1));
    std::swap(order[size_t(i)], order[size_t(j)]);
  }
  const float* px = x.data<float>();
  const int64_t* py = y.data<int64_t>();
  auto take = [&](int64_t from, int64_t to, Tensor& xs, Tensor& ys) {
    std::vector<float> xv;
    std::vector<int64_t> yv;
    for (int64_t k = from; k < to; ++k) {
      int64_t r = order[size_t(k)];
      xv.insert(xv.end(), px + r * 64, px + (r + 1) * 64);
      yv.push_back(py[r]);
    }
    xs = from_vector(xv, {to - from, 64});
    ys = from_vector(yv);
  };
  Split sp;
  take(0, n - n_test, sp.x_train, sp.y_train);
  take(n - n_test, n, sp.x_test, sp.y_test);
  return sp;
}

}  // namespace spool::data
