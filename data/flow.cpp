#include "data/flow.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "engine/error.h"
#include "engine/factory.h"
#include "ops/ops.h"

namespace spool::data {

namespace fs = std::filesystem;

uint8_t flow_byte(float v) {
  const double b = kFlowBound;
  const double c = std::isnan(v) ? 0.0 : std::clamp(double(v), -b, b);
  return uint8_t(std::lround((c + b) * 255.0 / (2 * b)));
}

float flow_input(uint8_t b) { return float((double(b) - 127.5) / 127.5); }

std::pair<std::vector<std::string>, std::vector<std::string>> flow_files(const std::string& dir) {
  std::error_code ec;
  SPOOL_CHECK(fs::is_directory(dir, ec), "flow: ", dir, " is not a folder of flow images");
  std::vector<std::string> x, y;
  fs::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code kind;
    if (!it->is_regular_file(kind) || name.size() < 4 || name.substr(name.size() - 4) != ".jpg")
      continue;
    if (name.rfind("flow_x_", 0) == 0) x.push_back(it->path().string());
    if (name.rfind("flow_y_", 0) == 0) y.push_back(it->path().string());
  }
  SPOOL_CHECK(!ec, "flow: cannot list ", dir, ": ", ec.message());
  std::sort(x.begin(), x.end());
  std::sort(y.begin(), y.end());
  SPOOL_CHECK(!x.empty() && x.size() == y.size(), "flow: ", dir, " holds ", x.size(),
              " flow_x_*.jpg and ", y.size(),
              " flow_y_*.jpg images; a flow folder (spool extract-flow) holds equal, non-zero "
              "counts");
  return {std::move(x), std::move(y)};
}

Tensor load_flow_entry(const VideoEntry& e, double offset, int64_t segments, int64_t size,
                       int64_t length) {
  const auto [xs, ys] = flow_files(e.path);
  Tensors out;
  for (int64_t f : segment_frames(int64_t(xs.size()), segments, length, offset)) {
    const Image ix = read_jpeg(xs[size_t(f)], size), iy = read_jpeg(ys[size_t(f)], size);
    SPOOL_CHECK(ix.width == iy.width && ix.height == iy.height, "flow: ", xs[size_t(f)], " (",
                ix.width, " x ", ix.height, ") and ", ys[size_t(f)], " (", iy.width, " x ",
                iy.height, ") differ in size");
    const int64_t h = ix.height, w = ix.width;
    std::vector<float> v(size_t(2 * h * w));
    for (int64_t p = 0; p < h * w; ++p) {  // grayscale: the decoder's R = G = B
      v[size_t(p)] = flow_input(ix.rgb[size_t(p * 3)]);
      v[size_t(h * w + p)] = flow_input(iy.rgb[size_t(p * 3)]);
    }
    out.push_back(crop_resize(from_vector(v, {1, 2, h, w}), {0, 0, double(w), double(h)}, size));
  }
  return cat(out, 0);
}

}  // namespace spool::data
