// safetensors: round trips, the on-disk layout, and clear errors for damaged files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/factory.h"
#include "engine/safetensors.h"
#include "ops/shape.h"

using namespace spool;
using ::testing::HasSubstr;

namespace {

std::string tmp(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("spool_st_" + name)).string();
}

std::string load_error(const std::string& path) {
  try {
    load_safetensors(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& b) {
  std::ofstream(path, std::ios::binary) << b;
}

}  // namespace

TEST(Safetensors, RoundTripsEveryDtypeShapeAndMetadata) {
  const std::string p = tmp("roundtrip.safetensors");
  Tensor a = randn({2, 3}), b = randn({4}, DType::f64), c = arange(5), s = scalar(7, DType::i32);
  Tensor t = permute(randn({3, 2}), {1, 0});  // non-contiguous: written row-major
  save_safetensors(p, {{"a", a}, {"b", b}, {"c", c}, {"s", s}, {"t", t}}, {{"note", "hi"}});
  TensorFile f = load_safetensors(p);
  EXPECT_EQ(f.metadata.at("note"), "hi");
  ASSERT_EQ(f.tensors.size(), 5u);
  EXPECT_EQ(f.tensors[0].first, "a");
  EXPECT_EQ(f.at("a").to_vector<float>(), a.to_vector<float>());
  EXPECT_EQ(f.at("b").to_vector<double>(), b.to_vector<double>());
  EXPECT_EQ(f.at("c").to_vector<int64_t>(), c.to_vector<int64_t>());
  EXPECT_EQ(f.at("s").dim(), 0);
  EXPECT_EQ(f.at("s").item(), 7);
  EXPECT_EQ(f.at("t").shape(), (Shape{2, 3}));
  EXPECT_EQ(f.at("t").to_vector<float>(), t.to_vector<float>());
  std::filesystem::remove(p);
}

TEST(Safetensors, FileStartsWithHeaderLengthThenJsonAndAlignsData) {
  const std::string p = tmp("layout.safetensors");
  save_safetensors(p, {{"x", full({2}, 1.5)}});
  std::string raw = bytes_of(p);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(uint8_t(raw[size_t(i)])) << (8 * i);
  EXPECT_EQ(n % 8, 0u);
  std::string header = raw.substr(8, n);
  EXPECT_THAT(header, HasSubstr("\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"));
  float v;
  std::memcpy(&v, raw.data() + 8 + n, 4);
  EXPECT_EQ(v, 1.5f);
  EXPECT_EQ(raw.size(), 8 + n + 8);
  std::filesystem::remove(p);
}

TEST(Safetensors, DamagedFilesGiveErrorsNamingTheFileAndTheProblem) {
  const std::string good = tmp("good.safetensors"), bad = tmp("bad.safetensors");
  save_safetensors(good, {{"w", randn({16})}});
  const std::string raw = bytes_of(good);

  EXPECT_THAT(load_error(tmp("nope.safetensors")), HasSubstr("cannot open"));
  write_bytes(bad, raw.substr(0, 5));
  EXPECT_THAT(load_error(bad), HasSubstr("truncated"));
  write_bytes(bad, raw.substr(0, raw.size() - 10));
  EXPECT_THAT(load_error(bad), HasSubstr("byte range outside"));
  std::string corrupt = raw;
  corrupt[9] = '#';
  write_bytes(bad, corrupt);
  EXPECT_THAT(load_error(bad), HasSubstr("corrupt header"));
  std::string huge = raw;
  huge[7] = '\x7f';
  write_bytes(bad, huge);
  EXPECT_THAT(load_error(bad), HasSubstr("header length"));
  std::string bf16 = raw;
  bf16.replace(bf16.find("F32"), 3, "F16");
  write_bytes(bad, bf16);
  EXPECT_THAT(load_error(bad), HasSubstr("dtype F16"));
  EXPECT_THAT(load_error(bad), HasSubstr(bad));
  std::filesystem::remove(good);
  std::filesystem::remove(bad);
}

TEST(Safetensors, AFailedSaveLeavesTheExistingFileIntact) {
  const std::string p = tmp("keep.safetensors");
  save_safetensors(p, {{"w", full({3}, 2.0)}});
  EXPECT_THROW(save_safetensors(p, {{"w", zeros({1})}, {"w", zeros({1})}}), Error);
  EXPECT_EQ(load_safetensors(p).at("w").to_vector<float>(), std::vector<float>(3, 2.0f));
  EXPECT_THROW(save_safetensors("/nonexistent-dir/x.safetensors", {{"w", zeros({1})}}), Error);
  std::filesystem::remove(p);
}

TEST(Safetensors, ANumberThatIsNotAnIntegerIsShownAsWritten) {
  const std::string bad = tmp("float_dims.safetensors");
  const auto write_header = [&](const std::string& header, size_t data) {
    std::string len(8, '\0');
    for (int i = 0; i < 8; ++i) len[size_t(i)] = char((header.size() >> (8 * i)) & 0xff);
    write_bytes(bad, len + header + std::string(data, '\0'));
  };
  // nlohmann reads these as doubles; converted, 1e30 became -9223372036854775808 in messages.
  const std::pair<std::string, std::string> cases[] = {
      {"[1e30]", "dimension 1e+30"}, {"[1000000000000000000000000000000]", "dimension 1e+30"},
      {"[2.0]", "dimension 2.0"},    {"[\"2\"]", "dimension \"2\""},
      {"[[2]]", "dimension a list"}, {"[-3]", "dimension -3"},
  };
  for (const auto& [shape, want] : cases) {
    write_header("{\"a\":{\"dtype\":\"F32\",\"shape\":" + shape + ",\"data_offsets\":[0,8]}}", 8);
    const std::string msg = load_error(bad);
    EXPECT_THAT(msg, HasSubstr(bad + ": tensor 'a' has " + want)) << shape;
    EXPECT_THAT(msg, HasSubstr("which is not a 64-bit integer >= 0")) << shape;
    EXPECT_THAT(msg, ::testing::Not(HasSubstr("9223372036854775808"))) << shape;
  }
  write_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.0]}}", 8);
  EXPECT_THAT(load_error(bad), HasSubstr("tensor 'a' has data offset 8.0, which is not"));
  write_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-1e300,8]}}", 8);
  EXPECT_THAT(load_error(bad), HasSubstr("tensor 'a' has data offset -1e+300, which is not"));
  std::filesystem::remove(bad);
}

TEST(Safetensors, AShapeOfManyDimensionsIsShortenedInMessages) {
  const std::string bad = tmp("rank1000.safetensors");
  std::string dims;
  for (int i = 0; i < 1000; ++i) dims += std::string(i ? "," : "") + "4294967296";
  const std::string header =
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[" + dims + "],\"data_offsets\":[0,8]}}";
  std::string len(8, '\0');
  for (int i = 0; i < 8; ++i) len[size_t(i)] = char((header.size() >> (8 * i)) & 0xff);
  write_bytes(bad, len + header + std::string(8, '\0'));
  const std::string msg = load_error(bad);
  EXPECT_THAT(msg, HasSubstr("[4294967296, 4294967296, 4294967296, 4294967296, 4294967296, "
                             "4294967296, 4294967296, 4294967296, ... (1000 dims)]"));
  EXPECT_LT(msg.size(), 400u) << msg;
  std::filesystem::remove(bad);
  // Shapes of up to 16 dims are written out whole.
  EXPECT_EQ(str(Shape(16, 1)), "[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]");
  EXPECT_EQ(str(Shape(17, 1)), "[1, 1, 1, 1, 1, 1, 1, 1, ... (17 dims)]");
  EXPECT_EQ(describe(zeros(Shape(20, 1))), "f32[1, 1, 1, 1, 1, 1, 1, 1, ... (20 dims)]");
}
