#include "rl/grid_world.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/error.h"

namespace spool::rl {

const char* action_name(int a) {
  static const char* const names[kActions] = {"up", "right", "down", "left", "stay"};
  SPOOL_CHECK(a >= 0 && a < kActions, "grid world: action ", a, " is not 0..4");
  return names[a];
}

Outcome GridWorld::move(int64_t s, int a) const {
  static const int dr[kActions] = {-1, 0, 1, 0, 0}, dc[kActions] = {0, 1, 0, -1, 0};
  const int64_t r = s / cols + dr[a], c = s % cols + dc[a];
  if (r < 0 || r >= rows || c < 0 || c >= cols) return {1.0, s, r_boundary};
  const int64_t next = r * cols + c;
  if (next == target) return {1.0, next, r_target};
  if (forbidden[size_t(next)]) return {1.0, next, r_forbidden};
  return {1.0, next, r_other};
}

std::vector<Outcome> GridWorld::outcomes(int64_t s, int a) const {
  if (slip == 0) return {move(s, a)};
  std::vector<Outcome> out;
  for (int b = 0; b < kActions; ++b) {
    Outcome o = move(s, b);
    o.p = b == a ? 1 - slip : slip / (kActions - 1);
    if (o.p > 0) out.push_back(o);
  }
  return out;
}

double GridWorld::expected_reward(int64_t s, int a) const {
  double r = 0;
  for (const Outcome& o : outcomes(s, a)) r += o.p * o.reward;
  return r;
}

void GridWorld::check() const {
  SPOOL_CHECK(rows >= 1 && cols >= 1 && rows <= 1000 && cols <= 1000, "grid world: ", rows, " x ",
              cols, " cells; each side must be 1 to 1000");
  SPOOL_CHECK(int64_t(forbidden.size()) == rows * cols, "grid world: ", forbidden.size(),
              " forbidden flags for ", rows * cols, " cells");
  SPOOL_CHECK(target >= 0 && target < rows * cols, "grid world: the target ", target,
              " is outside the ", rows * cols, " cells");
  SPOOL_CHECK(gamma >= 0 && gamma < 1, "grid world: gamma ", gamma,
              " must be in [0, 1) for the values to be finite");
  SPOOL_CHECK(slip >= 0 && slip <= 1, "grid world: slip ", slip, " is not a probability");
  for (double r : {r_boundary, r_forbidden, r_target, r_other})
    SPOOL_CHECK(std::isfinite(r), "grid world: a reward is not finite");
}

GridWorld standard_grid() {
  return parse_grid(
      ".....\n"
      ".##..\n"
      "..#..\n"
      ".#T#.\n"
      ".#...\n",
      "the standard grid");
}

GridWorld parse_grid(const std::string& text, const std::string& where) {
  GridWorld g;
  std::istringstream in(text);
  std::string line;
  std::vector<std::string> rows;
  int64_t targets = 0, number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '%') continue;
    if (line.find_first_not_of(".#T") != std::string::npos) {
      SPOOL_CHECK(rows.empty(), where, " line ", number,
                  ": settings come before the grid's rows, whose cells are '.', '#' or 'T'");
      std::istringstream kv(line);
      std::string key, value, extra;
      kv >> key >> value;
      SPOOL_CHECK(!value.empty() && !(kv >> extra), where, " line ", number,
                  ": expected 'key value', got '", line, "'");
      char* end = nullptr;
      const double v = std::strtod(value.c_str(), &end);
      SPOOL_CHECK(*end == '\0' && std::isfinite(v), where, " line ", number, ": '", value,
                  "' is not a number");
      if (key == "gamma")
        g.gamma = v;
      else if (key == "slip")
        g.slip = v;
      else if (key == "r_boundary")
        g.r_boundary = v;
      else if (key == "r_forbidden")
        g.r_forbidden = v;
      else if (key == "r_target")
        g.r_target = v;
      else if (key == "r_other")
        g.r_other = v;
      else
        SPOOL_CHECK(false, where, " line ", number, ": unknown setting '", key,
                    "' (gamma, slip, r_boundary, r_forbidden, r_target, r_other)");
      continue;
    }
    SPOOL_CHECK(rows.empty() || line.size() == rows[0].size(), where, " line ", number,
                ": a row of ", line.size(), " cells after rows of ", rows[0].size());
    SPOOL_CHECK(rows.size() < 1000 && line.size() <= 1000, where,
                ": grids are at most 1000 x 1000 cells");
    for (size_t c = 0; c < line.size(); ++c)
      if (line[c] == 'T') {
        ++targets;
        g.target = int64_t(rows.size() * line.size() + c);
      }
    rows.push_back(line);
  }
  SPOOL_CHECK(!rows.empty(), where, ": no grid rows ('.', '#', 'T')");
  SPOOL_CHECK(targets == 1, where, ": ", targets, " target cells ('T'); exactly one is needed");
  g.rows = int64_t(rows.size());
  g.cols = int64_t(rows[0].size());
  for (const auto& r : rows)
    for (char ch : r) g.forbidden.push_back(ch == '#');
  g.check();
  return g;
}

GridWorld load_grid(const std::string& path) {
  if (path == "standard") return standard_grid();
  std::error_code ec;
  SPOOL_CHECK(std::filesystem::is_regular_file(path, ec), "grid world: ", path,
              " is not 'standard' nor a regular file");
  const auto bytes = std::filesystem::file_size(path, ec);
  // 1000 rows of 1000 cells and their settings fit easily.
  SPOOL_CHECK(!ec && bytes <= (uint64_t(1) << 22), "grid world: ", path,
              " is larger than 4 MiB; a grid file holds at most 1000 x 1000 cells");
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  SPOOL_CHECK(in.good() || in.eof(), "grid world: cannot read ", path);
  return parse_grid(text.str(), path);
}

}  // namespace spool::rl
