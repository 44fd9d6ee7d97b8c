// PNG figures drawn with cairo (Debian: libcairo2-dev): line charts and the grid world's values
// and greedy actions. Each function returns the PNG's bytes, for spool::write_file.
#pragma once
#include <string>
#include <vector>

#include "rl/grid_world.h"

namespace spool::cli {

struct Series {
  std::string label;
  std::vector<double> x, y;
};

struct Chart {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  bool log_y = false;              // points with y <= 0 are left out
  std::vector<double> horizontal;  // reference lines (dashed), e.g. a root or a target
};

std::string chart_png(const Chart& chart, int width = 720, int height = 480);

// The grid (forbidden cells shaded, the target outlined) with each cell's value and an arrow
// for its greedy action (a circle for "stay"; none for -1), beside `curve`.
std::string grid_png(const rl::GridWorld& g, const std::vector<double>& values,
                     const std::vector<int>& actions, const Chart& curve);

}  // namespace spool::cli
