// The digits CSV from a hostile or careless source: fields that strtod would read as something
// other than the decimal they look like (hex, exponents, inf, nan), and files too small to split
// into training and test images. Each is a spool::Error naming the file (and the line and field).
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "data/digits.h"
#include "tests/support/cli.h"
#include "tests/support/helpers.h"

using namespace spool;
using spool::test_support::error_of;
using spool::test_support::run_cli;

namespace {

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// One digits line: 64 pixels (pixel `at` replaced by `field` when at >= 0) and label `label`.
std::string row(int at = -1, const std::string& field = "", const std::string& label = "3") {
  std::string r;
  for (int i = 0; i < 64; ++i) r += (i == at ? field : std::to_string(i % 17)) + ",";
  return r + label + "\n";
}

std::string write(const test_support::TempDir& dir, const std::string& name,
                  const std::string& text) {
  const std::string p = (dir / name).string();
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

}  // namespace

TEST(DigitsCsv, OnlyPlainDecimalFieldsAreNumbers) {
  const auto dir = test_support::temp_dir();
  Tensor x, y;
  // strtod reads 0x10 as 16, 1e1 as 10, 0x1p3 as 8, and inf / nan / infinity as such.
  for (const std::string bad : {"0x10", "0X1", "1e1", "1E0", "0x1p3", "inf", "-inf", "nan",
                                "infinity", "NAN(1)", "1.5.2", "--1", "+", ".", ""}) {
    const std::string p = write(dir, "bad.csv", row() + row(5, bad));
    const std::string msg = error_of([&] { data::load_digits(p, x, y); });
    EXPECT_TRUE(contains(msg, p + " line 2, pixel 5: '" + bad + "' is not a number")) << msg;
  }
  const std::string label = write(dir, "label.csv", row(-1, "", "0x5"));
  EXPECT_TRUE(contains(error_of([&] { data::load_digits(label, x, y); }),
                       label + " line 1, label: '0x5' is not a number"));
  // Plain decimals, signed or not, with spaces around them and a CRLF line end, are numbers;
  // their range is checked after.
  const std::string ok =
      write(dir, "ok.csv", row(0, " 16 ") + row(1, "+2.50") + row(2, ".5") + row(3, "3.", "9\r"));
  data::load_digits(ok, x, y);
  ASSERT_EQ(y.numel(), 4);
  EXPECT_EQ(x.at({0, 0}), 1.0);
  EXPECT_EQ(x.at({1, 1}), 2.5 / 16);
  EXPECT_EQ(x.at({2, 2}), 0.5 / 16);
  EXPECT_EQ(x.at({3, 3}), 3.0 / 16);
  EXPECT_EQ(y.at({3}), 9);
  const std::string negative = write(dir, "neg.csv", row(7, "-1"));
  EXPECT_TRUE(contains(error_of([&] { data::load_digits(negative, x, y); }),
                       "pixel 7 is -1, outside 0..16"));
}

TEST(DigitsCsv, AFileTooSmallForATestSplitIsRefused) {
  const auto dir = test_support::temp_dir();
  // Four images: the 80/20 split would leave no test image (accuracy 0 / 0).
  std::string four;
  for (int i = 0; i < 4; ++i) four += row();
  const std::string small = write(dir, "small.csv", four);
  const std::string msg = error_of([&] { data::digits_split(small); });
  EXPECT_TRUE(contains(msg, small)) << msg;
  EXPECT_TRUE(contains(msg, "4 images")) << msg;
  EXPECT_TRUE(contains(msg, "at least 5")) << msg;
  // Five give four training images and one test image.
  const data::Split five = data::digits_split(write(dir, "five.csv", four + row()));
  EXPECT_EQ(five.y_train.numel(), 4);
  EXPECT_EQ(five.y_test.numel(), 1);
  // Through the command line: refused before training, not "test accuracy -nan".
  const auto r = run_cli("train --model mlp --steps 1 --data " + small);
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(contains(r.output, small + " holds 4 images")) << r.output;
  EXPECT_FALSE(contains(r.output, "nan")) << r.output;
}
