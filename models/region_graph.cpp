#include "models/region_graph.h"

#include <algorithm>
#include <cmath>

#include "engine/autograd.h"
#include "engine/factory.h"
#include "ops/ops.h"

namespace spool::models {

namespace {
// One GCN layer's three weights, under layers.<l>.
class GraphLayer : public nn::Module {
 public:
  std::string type_name() const override { return "GraphLayer"; }
  using nn::Module::register_module;
};
}  // namespace

RegionGraph::RegionGraph(int64_t channels, int64_t layers, Generator* gen) : channels_(channels) {
  SPOOL_CHECK(channels > 0 && layers > 0, "RegionGraph: channels ", channels, " and layers ",
              layers, " must be positive");
  phi_ = register_module("phi", std::make_shared<nn::Linear>(channels, channels, false, gen));
  phi2_ = register_module("phi2", std::make_shared<nn::Linear>(channels, channels, false, gen));
  auto list = register_module("layers", std::make_shared<nn::ModuleList>());
  for (int64_t l = 0; l < layers; ++l) {
    auto layer = std::make_shared<GraphLayer>();
    Layer w;
    w.sim =
        layer->register_module("sim", std::make_shared<nn::Linear>(channels, channels, false, gen));
    w.front = layer->register_module("front",
                                     std::make_shared<nn::Linear>(channels, channels, false, gen));
    w.back = layer->register_module("back",
                                    std::make_shared<nn::Linear>(channels, channels, false, gen));
    list->push_back(layer);
    layers_.push_back(w);
  }
}

std::vector<RegionGraph::Box> RegionGraph::grid_regions(int64_t height, int64_t width) {
  std::vector<Box> out;
  const double h = double(height), w = double(width);
  for (int iy = 0; iy < 3; ++iy)
    for (int ix = 0; ix < 3; ++ix)
      out.push_back({ix * w / 4, iy * h / 4, ix * w / 4 + w / 2, iy * h / 4 + h / 2});
  return out;
}

Tensor RegionGraph::overlap_graph(const std::vector<std::vector<Box>>& frames, int64_t step) {
  const int64_t t_n = int64_t(frames.size()), r = t_n ? int64_t(frames[0].size()) : 0, m = t_n * r;
  std::vector<double> g(size_t(m * m), 0.0);
  auto iou = [](const Box& a, const Box& b) {
    const double iw = std::max(0.0, std::min(a[2], b[2]) - std::max(a[0], b[0]));
    const double ih = std::max(0.0, std::min(a[3], b[3]) - std::max(a[1], b[1]));
    const double inter = iw * ih;
    const double uni = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    return uni > 0 ? inter / uni : 0.0;
  };
  for (int64_t t = 0; t < t_n; ++t) {
    SPOOL_CHECK(int64_t(frames[size_t(t)].size()) == r, "RegionGraph: frame ", t, " has ",
                frames[size_t(t)].size(), " regions, frame 0 ", r);
    const int64_t u = t + step;
    if (u < 0 || u >= t_n) continue;  // the clip's edge frame has no such neighbour
    const auto &here = frames[size_t(t)], &there = frames[size_t(u)];
    for (int64_t i = 0; i < r; ++i) {
      double total = 0;
      for (int64_t j = 0; j < r; ++j) total += iou(here[size_t(i)], there[size_t(j)]);
      if (total == 0) continue;  // overlaps nothing there: no edges
      for (int64_t j = 0; j < r; ++j)
        g[size_t((t * r + i) * m + u * r + j)] = iou(here[size_t(i)], there[size_t(j)]) / total;
    }
  }
  return from_vector(g, {m, m});
}

Tensor RegionGraph::overlap_graph(const std::vector<Box>& regions, int64_t frames, int64_t step) {
  return overlap_graph(std::vector<std::vector<Box>>(size_t(frames), regions), step);
}

Tensor RegionGraph::forward(const Tensor& h) {
  SPOOL_CHECK(h.dim() == 5 && h.size(1) == channels_, "RegionGraph: features ", describe(h),
              " must be [N, ", channels_, ", T, H, W]");
  const int64_t n = h.size(0), t = h.size(2);
  const auto grid = grid_regions(h.size(3), h.size(4));
  std::vector<Box> regions;
  for (int64_t f = 0; f < n * t; ++f) regions.insert(regions.end(), grid.begin(), grid.end());
  auto graph = [&](int64_t step) {
    return spool::to(spool::to(overlap_graph(grid, t, step), h.dtype()), h.device());
  };
  return run(h, regions, int64_t(grid.size()), graph(1), graph(-1));
}

Tensor RegionGraph::forward(const Tensor& h, const Tensor& objects) {
  SPOOL_CHECK(h.dim() == 5 && h.size(1) == channels_, "RegionGraph: features ", describe(h),
              " must be [N, ", channels_, ", T, H, W]");
  const int64_t n = h.size(0), t = h.size(2);
  SPOOL_CHECK(
      objects.dim() == 3 && objects.size(0) == n && objects.size(1) == t && objects.size(2) == 4,
      "RegionGraph: object boxes ", describe(objects), " must be [", n, ", ", t,
      ", 4], a box for each frame of the features ", describe(h));
  const auto b = spool::to(spool::to(objects, Device::cpu()), DType::f64).to_vector<double>();
  const auto grid = grid_regions(h.size(3), h.size(4));
  const int64_t r = int64_t(grid.size()) + 1;
  std::vector<Box> regions;
  std::vector<std::vector<Box>> clip(static_cast<size_t>(t));
  Tensors front, back;
  for (int64_t c = 0; c < n; ++c) {
    for (int64_t f = 0; f < t; ++f) {
      const double* o = &b[size_t((c * t + f) * 4)];
      SPOOL_CHECK(std::isfinite(o[0]) && std::isfinite(o[1]) && std::isfinite(o[2]) &&
                      std::isfinite(o[3]) && o[0] <= o[2] && o[1] <= o[3],
                  "RegionGraph: the object box of clip ", c, ", frame ", f, " is (", o[0], ", ",
                  o[1], ", ", o[2], ", ", o[3],
                  ") in the map's pixels; it must be finite with x1 <= x2, y1 <= y2");
      auto& fr = clip[size_t(f)];
      fr.assign(1, Box{o[0], o[1], o[2], o[3]});
      fr.insert(fr.end(), grid.begin(), grid.end());
      regions.insert(regions.end(), fr.begin(), fr.end());
    }
    front.push_back(overlap_graph(clip, 1));
    back.push_back(overlap_graph(clip, -1));
  }
  auto place = [&](const Tensors& g) {
    return spool::to(spool::to(stack(g, 0), h.dtype()), h.device());
  };
  return run(h, regions, r, place(front), place(back));
}

Tensor RegionGraph::run(const Tensor& h, const std::vector<Box>& regions, int64_t r,
                        const Tensor& front, const Tensor& back) {
  const int64_t n = h.size(0), c = h.size(1), t = h.size(2), hh = h.size(3), ww = h.size(4);
  const int64_t m = t * r;
  // Every frame of every clip as a 2-D map, and its regions.
  const Tensor frames = reshape(contiguous(permute(h, {0, 2, 1, 3, 4})), {n * t, c, hh, ww});
  std::vector<double> boxes;
  for (size_t i = 0; i < regions.size(); ++i) {
    const auto& b = regions[i];
    boxes.insert(boxes.end(), {double(int64_t(i) / r), b[0], b[1], b[2], b[3]});
  }
  const Tensor rois =
      spool::to(spool::to(from_vector(boxes, {n * t * r, 5}), h.dtype()), h.device());
  RoiAlignOptions o;
  o.out_h = o.out_w = 2;
  const Tensor feats = max(roi_align(frames, rois, o), {2, 3});  // [N T R, C]
  Tensor x = reshape(feats, {n, m, c});
  const Tensor sim = softmax(
      matmul(phi_->forward(x), transpose(phi2_->forward(x), 1, 2)) * (1.0 / std::sqrt(double(c))),
      2);
  for (const Layer& l : layers_)
    x = relu(matmul(sim, l.sim->forward(x)) + matmul(front, l.front->forward(x)) +
             matmul(back, l.back->forward(x)));
  return mean(x, {1});
}

}  // namespace spool::models
