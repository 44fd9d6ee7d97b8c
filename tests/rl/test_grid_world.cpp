// The grid world: the standard layout, its rewards, slips, and layouts from text.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/error.h"
#include "rl/grid_world.h"
#include "tests/support/helpers.h"

using spool::test_support::error_of;
using ::testing::HasSubstr;

namespace spool::rl {
namespace {

int64_t cell(int64_t row, int64_t col) { return (row - 1) * 5 + (col - 1); }  // 1-indexed

TEST(GridWorld, TheStandardGridIsFiveByFiveWithItsTargetAndForbiddenCells) {
  const GridWorld g = standard_grid();
  EXPECT_EQ(g.rows, 5);
  EXPECT_EQ(g.cols, 5);
  EXPECT_EQ(g.target, cell(4, 3));
  std::vector<int64_t> forbidden;
  for (int64_t s = 0; s < g.states(); ++s)
    if (g.forbidden[size_t(s)]) forbidden.push_back(s);
  EXPECT_EQ(forbidden, (std::vector<int64_t>{cell(2, 2), cell(2, 3), cell(3, 3), cell(4, 2),
                                             cell(4, 4), cell(5, 2)}));
  EXPECT_EQ(g.gamma, 0.9);
  EXPECT_EQ(g.r_boundary, -1);
  EXPECT_EQ(g.r_forbidden, -1);
  EXPECT_EQ(g.r_target, 1);
}

TEST(GridWorld, MovesFollowTheRewardRules) {
  const GridWorld g = standard_grid();
  auto expect = [&](int64_t s, int a, int64_t next, double reward) {
    const Outcome o = g.move(s, a);
    EXPECT_EQ(o.next, next) << "state " << s << " action " << action_name(a);
    EXPECT_EQ(o.reward, reward) << "state " << s << " action " << action_name(a);
  };
  expect(cell(1, 1), kUp, cell(1, 1), -1);  // off the grid: stays, r_boundary
  expect(cell(1, 1), kLeft, cell(1, 1), -1);
  expect(cell(1, 2), kDown, cell(2, 2), -1);  // into a forbidden cell: entered, r_forbidden
  expect(cell(2, 2), kStay, cell(2, 2), -1);  // staying in it too
  expect(cell(3, 3), kDown, cell(4, 3), 1);   // into the target
  expect(cell(4, 3), kStay, cell(4, 3), 1);   // staying in it
  expect(cell(1, 1), kRight, cell(1, 2), 0);  // any other move
  expect(cell(5, 5), kDown, cell(5, 5), -1);
  expect(cell(1, 4), kStay, cell(1, 4), 0);
}

TEST(GridWorld, ASlipSpreadsItsProbabilityOverTheOtherActions) {
  GridWorld g = standard_grid();
  g.slip = 0.2;
  const auto outs = g.outcomes(cell(1, 1), kRight);
  ASSERT_EQ(outs.size(), 5u);
  double total = 0;
  for (const auto& o : outs) total += o.p;
  EXPECT_NEAR(total, 1.0, 1e-15);
  EXPECT_NEAR(outs[kRight].p, 0.8, 1e-15);
  EXPECT_NEAR(outs[kUp].p, 0.05, 1e-15);
  // Expected reward: up and left bump the boundary (-1 each, 0.05 each), the rest give 0.
  EXPECT_NEAR(g.expected_reward(cell(1, 1), kRight), -0.1, 1e-15);
}

TEST(GridWorld, LayoutsFromTextAndTheirErrors) {
  const GridWorld g = parse_grid("% a corridor\ngamma 0.5\nr_other -0.1\n..T\n#..\n", "test");
  EXPECT_EQ(g.rows, 2);
  EXPECT_EQ(g.cols, 3);
  EXPECT_EQ(g.target, 2);
  EXPECT_TRUE(g.forbidden[3]);
  EXPECT_EQ(g.gamma, 0.5);
  EXPECT_EQ(g.move(0, kRight).reward, -0.1);
  EXPECT_THAT(error_of([] { parse_grid("..T\n.T.\n", "two"); }), HasSubstr("2 target cells"));
  EXPECT_THAT(error_of([] { parse_grid("..T\n..\n", "ragged"); }),
              HasSubstr("ragged line 2: a row of 2 cells after rows of 3"));
  EXPECT_THAT(error_of([] { parse_grid("speed 3\n..T\n", "f"); }),
              HasSubstr("unknown setting 'speed'"));
  EXPECT_THAT(error_of([] { parse_grid("gamma 1\n..T\n", "f"); }), HasSubstr("gamma 1"));
  EXPECT_THAT(error_of([] { parse_grid("gamma x\n..T\n", "f"); }),
              HasSubstr("'x' is not a number"));
  EXPECT_THAT(error_of([] { parse_grid("..T\ngamma 0.5\n", "f"); }),
              HasSubstr("settings come before the grid's rows"));
  EXPECT_THAT(error_of([] { parse_grid("", "empty"); }), HasSubstr("no grid rows"));
  EXPECT_THAT(error_of([] { load_grid("/nonexistent/grid.txt"); }),
              HasSubstr("not 'standard' nor a regular file"));
}

}  // namespace
}  // namespace spool::rl
