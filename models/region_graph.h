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
//
// Given the objects' boxes (forward's `objects`, the generated clips' known boxes, in the map's
// pixels), each frame's regions are its object's box and then the grid, R = 10 a frame: the box
// stands for the paper's detector proposals on the object, the grid for the rest of the scene.
// The overlap graphs then differ clip by clip ([N, M, M]); a region overlapping nothing in the
// next frame has no front edges (its row is zero).
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
  using Box = std::array<double, 4>;         // (x1, y1, x2, y2)
  Tensor forward(const Tensor& h) override;  // [N, C, T, H, W] -> [N, C]
  // With each frame's object box, `objects` [N, T, 4] in the map's pixels (x1 <= x2, y1 <= y2,
  // finite; checked).
  Tensor forward(const Tensor& h, const Tensor& objects);
  // The regions of an H x W map, (x1, y1, x2, y2) in its pixels (edges at integers).
  static std::vector<Box> grid_regions(int64_t height, int64_t width);
  // The spatial-temporal graph of T frames of these regions: [M, M] rows normalised, M = T R;
  // step 1 joins frame t to t + 1 (front), -1 to t - 1 (back).
  static Tensor overlap_graph(const std::vector<Box>& regions, int64_t frames, int64_t step);
  // The same for regions that differ frame by frame (frames[t], R each): [M, M] f64.
  static Tensor overlap_graph(const std::vector<std::vector<Box>>& frames, int64_t step);

 private:
  std::shared_ptr<nn::Linear> phi_, phi2_;
  struct Layer {
    std::shared_ptr<nn::Linear> sim, front, back;
  };
  std::vector<Layer> layers_;
  // The graph on the regions `regions` ([N T R] boxes, frame by frame) of h with overlap graphs
  // front and back ([M, M] shared or [N, M, M]).
  Tensor run(const Tensor& h, const std::vector<Box>& regions, int64_t per_frame,
             const Tensor& front, const Tensor& back);
  int64_t channels_;
};

}  // namespace spool::models
