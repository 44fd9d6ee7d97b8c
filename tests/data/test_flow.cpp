// Optical flow on disk (data/flow.h): the byte mapping, grayscale JPEGs read back as flow fields
// by the loader, the refusals, and the flip that negates horizontal motion.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "data/clips.h"
#include "data/flow.h"
#include "engine/error.h"
#include "engine/factory.h"
#include "ops/ops.h"

namespace spool::data {
namespace {

namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("spool_flow_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write_field(const fs::path& dir, int i, uint8_t x, uint8_t y, int64_t w = 12, int64_t h = 8) {
  char name[32];
  std::snprintf(name, sizeof name, "%05d.jpg", i);
  write_gray_jpeg((dir / (std::string("flow_x_") + name)).string(), w, h,
                  std::vector<uint8_t>(size_t(w * h), x));
  write_gray_jpeg((dir / (std::string("flow_y_") + name)).string(), w, h,
                  std::vector<uint8_t>(size_t(w * h), y));
}

TEST(Flow, BytesClipAtTwentyPixelsAndMapLinearly) {
  EXPECT_EQ(flow_byte(-20.0f), 0);
  EXPECT_EQ(flow_byte(20.0f), 255);
  EXPECT_EQ(flow_byte(-100.0f), 0);  // clipped
  EXPECT_EQ(flow_byte(100.0f), 255);
  EXPECT_EQ(flow_byte(0.0f), 128);   // 127.5 rounds up
  EXPECT_EQ(flow_byte(10.0f), 191);  // (10 + 20) * 255 / 40 = 191.25
  EXPECT_EQ(flow_byte(std::nanf("")), 128);
  EXPECT_FLOAT_EQ(flow_input(0), -1.0f);
  EXPECT_FLOAT_EQ(flow_input(255), 1.0f);
  // Back in pixels, a byte is within half a step (40 / 255 / 2) of the flow it stores.
  for (float v : {-19.3f, -3.1f, 0.4f, 7.7f, 18.2f})
    EXPECT_NEAR(flow_input(flow_byte(v)) * 20.0f, v, 20.0f / 255.0f + 1e-5f) << v;
}

TEST(Flow, TheLoaderReadsLConsecutiveFieldsAsXAndYChannels) {
  const fs::path dir = fresh_dir("load");
  for (int i = 1; i <= 6; ++i) write_field(dir, i, uint8_t(10 * i), uint8_t(200 - 10 * i));
  const auto [xs, ys] = flow_files(dir.string());
  ASSERT_EQ(xs.size(), 6u);
  VideoEntry e;
  e.path = dir.string();
  // 2 segments of 3 fields over 6 fields, offset 0: fields 0-2 and 3-5.
  const Tensor v = load_flow_entry(e, 0.0, 2, 4, 3);
  ASSERT_EQ(v.shape(), (Shape{6, 2, 4, 4}));
  const auto values = v.to_vector<float>();
  for (int f = 0; f < 6; ++f) {
    // A constant image compresses to its value exactly; each field keeps it after resizing.
    EXPECT_FLOAT_EQ(values[size_t(f * 32)], flow_input(uint8_t(10 * (f + 1)))) << f;
    EXPECT_FLOAT_EQ(values[size_t(f * 32 + 16)], flow_input(uint8_t(200 - 10 * (f + 1)))) << f;
  }
  fs::remove_all(dir);
}

TEST(Flow, AFolderWithoutMatchingXAndYImagesIsRefusedByName) {
  const fs::path dir = fresh_dir("bad");
  try {
    flow_files(dir.string());
    FAIL() << "an empty folder was read as flow";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("0 flow_x_*.jpg and 0 flow_y_*.jpg"), std::string::npos)
        << e.what();
  }
  write_field(dir, 1, 1, 2);
  fs::remove(dir / "flow_y_00001.jpg");
  EXPECT_THROW(flow_files(dir.string()), Error);
  EXPECT_THROW(flow_files((dir / "missing").string()), Error);
  fs::remove_all(dir);
}

TEST(Flow, AFlippedViewNegatesTheHorizontalComponent) {
  ViewSpec v;
  v.flow = true;
  v.length = 2;
  v.size = v.load_size = 3;
  // 2 fields of 3 x 3: x = column index, y = 5.
  std::vector<float> f;
  for (int field = 0; field < 2; ++field) {
    for (int p = 0; p < 9; ++p) f.push_back(float(p % 3));
    for (int p = 0; p < 9; ++p) f.push_back(5.0f);
  }
  const Tensor fields = from_vector(f, {2, 2, 3, 3});
  EXPECT_EQ(v.channels(), 4);
  const Tensor plain = finish_view(fields, v, false, nullptr);
  ASSERT_EQ(plain.shape(), (Shape{1, 4, 3, 3}));
  const auto flipped = finish_view(fields, v, true, nullptr).to_vector<float>();
  // Channel 0 (x of field 0): mirrored and negated, so column c holds -(2 - c).
  EXPECT_FLOAT_EQ(flipped[0], -2.0f);
  EXPECT_FLOAT_EQ(flipped[2], -0.0f);
  EXPECT_FLOAT_EQ(flipped[9], 5.0f);        // y keeps its sign
  EXPECT_FLOAT_EQ(flipped[18 + 1], -1.0f);  // x of field 1
}

}  // namespace
}  // namespace spool::data
