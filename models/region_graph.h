// The space-time region graph of Wang and Gupta ("Videos as Space-Time Region Graphs", ECCV
// 2018) on a 3-D backbone's last feature map [N, C, T, H, W]. Regions: on every frame of the map,
// a 3 x 3 grid of overlapping windows, each half the map's width and height at a stride of a
// quarter (the fixed grid the issue gives real video; neighbouring windows overlap by a third).
// Each region's feature is RoIAlign's 2 x 2 bins (2 x 2 points a bin) max-pooled, C values: M = 9
// T nodes a clip. Two graphs join them: the similarity graph, softmax over j of phi(x_i) .
// phi'(x_j) / sqrt(C) (`phi`, `phi2`: Linear(C, C) without bias), from the input features; and
// the spatial-temporal graph, whose forward edges join each region of frame t to the regions of
// frame t + 1 with weight their IoU, each row normalised to sum 1 (`front`), and its backward
// edges the same towards frame t - 1 (`back`). Each of `layers` GCN layers (`layers.<l>.{sim,
// front,back}`: Linear(C, C) without bias) maps X to ReLU(G_sim X W_sim + G_front X W_front +
// G_back X W_back); the graph feature is the mean over the nodes, [N, C].
#pragma once
#include <array>
#include <memory>
#include <vector>

#include "nn/container.h"
#include "nn/linear.h"

namespace spool::models {

class RegionGraph : public nn::Module {
 public:
  RegionGraph(int64_t channels, int64_t layers, Generator* gen);
  std::string type_name() const override { return "RegionGraph"; }
  Tensor forward(const Tensor& h) override;  // [N, C, T, H, W] -> [N, C]
  // The regions of an H x W map, (x1, y1, x2, y2) in its pixels (edges at integers).
  static std::vector<std::array<double, 4>> grid_regions(int64_t height, int64_t width);
  // The spatial-temporal graph of T frames of these regions: [M, M] rows normalised, M = T R;
  // step 1 joins frame t to t + 1 (front), -1 to t - 1 (back).
  static Tensor overlap_graph(const std::vector<std::array<double, 4>>& regions, int64_t frames,
                              int64_t step);

 private:
  std::shared_ptr<nn::Linear> phi_, phi2_;
  struct Layer {
    std::shared_ptr<nn::Linear> sim, front, back;
  };
  std::vector<Layer> layers_;
  int64_t channels_;
};

}  // namespace spool::models
