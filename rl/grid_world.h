// The grid world of the RL textbooks: an n x m grid of cells, five actions (up, right, down,
// left, stay). A move off the grid leaves the agent in place with reward r_boundary; entering
// (or staying in) a forbidden cell gives r_forbidden, and the cell can be entered; entering or
// staying in the target gives r_target; every other move gives 0. With slip probability p the
// chosen action is replaced, with probability p, by one of the other four drawn uniformly.
// States are cells numbered row-major from the top-left: s = row * cols + col (0-based).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace spool::rl {

enum Action : int { kUp = 0, kRight = 1, kDown = 2, kLeft = 3, kStay = 4 };
constexpr int kActions = 5;
const char* action_name(int a);  // "up", "right", "down", "left", "stay"

// One possible result of an action: probability, next state, reward.
struct Outcome {
  double p;
  int64_t next;
  double reward;
};

struct GridWorld {
  int64_t rows = 0, cols = 0;
  int64_t target = 0;           // the target cell's state
  std::vector<bool> forbidden;  // [rows * cols]
  double r_boundary = -1, r_forbidden = -1, r_target = 1, r_other = 0;
  double gamma = 0.9;
  double slip = 0;  // probability the action is replaced by another one

  int64_t states() const { return rows * cols; }
  // The deterministic result of action a in state s, and its reward.
  Outcome move(int64_t s, int a) const;
  // The model: every result of a in s with its probability (one with p = 1 without slip).
  std::vector<Outcome> outcomes(int64_t s, int a) const;
  // Expected reward and transition row of a in s.
  double expected_reward(int64_t s, int a) const;
  // Throws spool::Error naming what is wrong (sizes, the target's place, probabilities, gamma).
  void check() const;
};

// `--grid standard`: 5 x 5, target at row 4, column 3 (1-indexed, row 1 at the top), forbidden
// cells (2,2) (2,3) (3,3) (4,2) (4,4) (5,2), r_boundary = r_forbidden = -1, r_target = 1,
// gamma = 0.9, no slip.
GridWorld standard_grid();

// A layout from text: one line a row of '.' (ordinary), '#' (forbidden) and 'T' (the target,
// exactly one), all rows the same length; before them, optional "key value" lines setting
// gamma, slip, r_boundary, r_forbidden, r_target, r_other; '%' starts a comment line. Errors
// name `where` and the line.
GridWorld parse_grid(const std::string& text, const std::string& where);
GridWorld load_grid(const std::string& path);  // "standard" or a file as parse_grid reads

}  // namespace spool::rl
