// Ops against PyTorch: each fixture in tests/fixtures/ (made by make_fixtures.py with torch 1.13)
// holds an op's inputs, an upstream gradient gy, torch's output y and torch's gradients. spool
// runs the same op in f32 with the parameters from the fixture's metadata, backpropagates gy, and
// every result must agree to a relative error of 1e-4, where the error of an element is
// |spool - torch| / max(|torch|, 1e-3). Each test records its worst error per tensor as a gtest
// property (visible with --gtest_output=xml).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>
#include <string>
#include <vector>

#include "engine/safetensors.h"
#include "ops/ops.h"

namespace spool {
namespace {

constexpr double kTolerance = 1e-4;
// Errors are measured relative to the tensor's scale (its largest magnitude), floored here: an
// element that is near zero holds rounding noise of the terms that cancelled into it, which is
// proportional to the tensor's scale, not to the element, so a per-element relative error would
// pass or fail by the machine's summation order.
constexpr double kFloor = 1e-3;

TensorFile load_fixture(const std::string& name) {
  return load_safetensors(std::string(SPOOL_SOURCE_DIR) + "/tests/fixtures/" + name +
                          ".safetensors");
}

// ---- metadata: JSON numbers, lists of ints and booleans, as strings --------------------------

const std::string& meta(const TensorFile& f, const std::string& key) {
  auto it = f.metadata.find(key);
  SPOOL_CHECK(it != f.metadata.end(), f.path, ": no metadata '", key, "'");
  return it->second;
}

std::vector<int64_t> meta_ints(const TensorFile& f, const std::string& key) {
  std::string s = meta(f, key);
  std::replace_if(
      s.begin(), s.end(), [](char c) { return c == '[' || c == ']' || c == ','; }, ' ');
  std::istringstream in(s);
  std::vector<int64_t> v;
  for (int64_t x; in >> x;) v.push_back(x);
  SPOOL_CHECK(!v.empty(), f.path, ": metadata '", key, "' is '", meta(f, key),
              "', not a list of integers");
  return v;
}

double meta_real(const TensorFile& f, const std::string& key) { return std::stod(meta(f, key)); }
bool meta_flag(const TensorFile& f, const std::string& key) { return meta(f, key) == "true"; }

// ---- comparison ------------------------------------------------------------------------------

std::string index_of(int64_t flat, const Shape& shape) {
  Shape index(shape.size());
  for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
    index[d] = flat % shape[d];
    flat /= shape[d];
  }
  return str(index);
}

// Compares spool's `actual` with torch's `expected` element by element, each difference
// relative to the tensor's scale; on failure names the tensor, its worst element and both values.
void expect_matches_torch(const std::string& name, const Tensor& actual, const Tensor& expected) {
  ASSERT_TRUE(actual.defined()) << name << ": spool produced no tensor";
  ASSERT_EQ(actual.shape(), expected.shape())
      << name << ": spool's shape " << str(actual.shape()) << ", torch's " << str(expected.shape());
  const std::vector<double> a = to(actual, DType::f64).to_vector<double>();
  const std::vector<double> b = to(expected, DType::f64).to_vector<double>();
  double scale = kFloor;
  for (double v : b) scale = std::max(scale, std::abs(v));
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double err = std::abs(a[i] - b[i]) / scale;
    if (std::isnan(err) || err > worst) {
      worst = std::isnan(err) ? INFINITY : err;  // a NaN is the worst mismatch and stays so
      at = i;
    }
  }
  std::ostringstream worst_text;
  worst_text << std::scientific << std::setprecision(2) << worst;
  ::testing::Test::RecordProperty("max_rel_err_" + name, worst_text.str());
  EXPECT_LE(worst, kTolerance) << name << ": worst relative error " << worst << " at "
                               << index_of(int64_t(at), expected.shape()) << ": spool " << a[at]
                               << ", torch " << b[at];
}

Tensor leaf(const TensorFile& f, const std::string& name) {
  Tensor t = clone(f.at(name));
  t.requires_grad_();
  return t;
}

// ---- convolution -----------------------------------------------------------------------------

void check_conv(const std::string& fixture) {
  const TensorFile f = load_fixture(fixture);
  ConvOptions o;
  o.stride = meta_ints(f, "stride");
  o.padding = meta_ints(f, "padding");
  o.dilation = meta_ints(f, "dilation");
  o.groups = std::stoll(meta(f, "groups"));
  const bool has_bias = meta_flag(f, "bias");
  Tensor x = leaf(f, "x"), w = leaf(f, "w");
  Tensor b = has_bias ? leaf(f, "b") : Tensor();

  Tensor y = conv(x, w, b, o);
  backward(y, f.at("gy"));

  expect_matches_torch("y", y, f.at("y"));
  expect_matches_torch("gx", x.grad(), f.at("gx"));
  expect_matches_torch("gw", w.grad(), f.at("gw"));
  if (has_bias) expect_matches_torch("gb", b.grad(), f.at("gb"));
}

// stride [2], padding [1], bias.
TEST(PyTorchOps, Conv1dMatchesTorch) { check_conv("conv1d"); }
// stride [2, 2], padding [1, 1], bias.
TEST(PyTorchOps, Conv2dMatchesTorch) { check_conv("conv2d"); }
// groups 2, dilation [2, 2], padding [2, 2], no bias.
TEST(PyTorchOps, Conv2dWithGroupsAndDilationMatchesTorch) { check_conv("conv2d_groups_dilation"); }
// stride [1, 2, 2], padding [1, 1, 1], bias.
TEST(PyTorchOps, Conv3dMatchesTorch) { check_conv("conv3d"); }

// ---- pooling ---------------------------------------------------------------------------------

enum class Pool { max, avg };

void check_pool(const std::string& fixture, Pool kind) {
  const TensorFile f = load_fixture(fixture);
  PoolOptions o;
  o.kernel = meta_ints(f, "kernel_size");
  o.stride = meta_ints(f, "stride");
  o.padding = meta_ints(f, "padding");
  o.ceil_mode = meta_flag(f, "ceil_mode");
  if (kind == Pool::max) o.dilation = meta_ints(f, "dilation");
  if (kind == Pool::avg) o.count_include_pad = meta_flag(f, "count_include_pad");
  Tensor x = leaf(f, "x");

  Tensor y = kind == Pool::max ? max_pool(x, o) : avg_pool(x, o);
  backward(y, f.at("gy"));

  expect_matches_torch("y", y, f.at("y"));
  expect_matches_torch("gx", x.grad(), f.at("gx"));
}

// kernel 3, stride 2, padding 1.
TEST(PyTorchOps, MaxPool2dMatchesTorch) { check_pool("max_pool2d", Pool::max); }
// kernel 3, stride 2, padding 1, count_include_pad.
TEST(PyTorchOps, AvgPool2dMatchesTorch) { check_pool("avg_pool2d", Pool::avg); }
// kernel 3, stride 2, padding 1, ceil_mode, padding not counted.
TEST(PyTorchOps, AvgPool2dCeilModeWithoutPaddingCountMatchesTorch) {
  check_pool("avg_pool2d_ceil_nopad", Pool::avg);
}
// kernel [1, 3, 3], stride [1, 2, 2], padding [0, 1, 1].
TEST(PyTorchOps, MaxPool3dMatchesTorch) { check_pool("max_pool3d", Pool::max); }
// kernel 2, stride 2.
TEST(PyTorchOps, AvgPool3dMatchesTorch) { check_pool("avg_pool3d", Pool::avg); }

// ---- region features -------------------------------------------------------------------------

void check_roi_align(const std::string& fixture) {
  const TensorFile f = load_fixture(fixture);
  Tensor x = leaf(f, "x");
  RoiAlignOptions o;
  o.out_h = meta_ints(f, "out_h")[0];
  o.out_w = meta_ints(f, "out_w")[0];
  o.spatial_scale = meta_real(f, "spatial_scale");
  o.sampling_ratio = meta_ints(f, "sampling_ratio")[0];
  o.aligned = meta_flag(f, "aligned");
  Tensor y = roi_align(x, f.at("rois"), o);
  backward(y, f.at("gy"));
  expect_matches_torch("y", y, f.at("y"));
  expect_matches_torch("gx", x.grad(), f.at("gx"));
}

// torchvision.ops.roi_align: 5 regions (inside, across the border, below a pixel, reversed, the
// whole map) to 3 x 4 bins; aligned with 2 x 2 points a bin at scale 1/2, and not aligned with
// the adaptive grid at scale 1.
TEST(PyTorchOps, RoiAlignMatchesTorchvision) { check_roi_align("roi_align"); }
TEST(PyTorchOps, RoiAlignUnalignedAdaptiveMatchesTorchvision) {
  check_roi_align("roi_align_adaptive");
}

// ---- normalisation ---------------------------------------------------------------------------

void check_batch_norm(const std::string& fixture) {
  const TensorFile f = load_fixture(fixture);
  const bool training = meta_flag(f, "training");
  Tensor x = leaf(f, "x"), weight = leaf(f, "weight"), bias = leaf(f, "bias");
  Tensor running_mean = clone(f.at("running_mean_in"));
  Tensor running_var = clone(f.at("running_var_in"));

  Tensor y = batch_norm(x, running_mean, running_var, weight, bias, training,
                        meta_real(f, "momentum"), meta_real(f, "eps"));
  backward(y, f.at("gy"));

  expect_matches_torch("y", y, f.at("y"));
  expect_matches_torch("gx", x.grad(), f.at("gx"));
  expect_matches_torch("gw", weight.grad(), f.at("gw"));
  expect_matches_torch("gb", bias.grad(), f.at("gb"));
  expect_matches_torch("running_mean", running_mean, f.at("running_mean_out"));
  expect_matches_torch("running_var", running_var, f.at("running_var_out"));
}

// momentum 0.1, eps 1e-5 for all three.
TEST(PyTorchOps, BatchNorm2dTrainingMatchesTorch) { check_batch_norm("batch_norm2d_train"); }
TEST(PyTorchOps, BatchNorm2dEvalMatchesTorch) { check_batch_norm("batch_norm2d_eval"); }
TEST(PyTorchOps, BatchNorm3dTrainingMatchesTorch) { check_batch_norm("batch_norm3d_train"); }

// x [3, 4, 8] normalised over the last dim, with weight and bias.
TEST(PyTorchOps, LayerNormMatchesTorch) {
  const TensorFile f = load_fixture("layer_norm");
  Tensor x = leaf(f, "x"), weight = leaf(f, "weight"), bias = leaf(f, "bias");

  Tensor y = layer_norm(x, meta_ints(f, "normalized_shape"), weight, bias, meta_real(f, "eps"));
  backward(y, f.at("gy"));

  expect_matches_torch("y", y, f.at("y"));
  expect_matches_torch("gx", x.grad(), f.at("gx"));
  expect_matches_torch("gw", weight.grad(), f.at("gw"));
  expect_matches_torch("gb", bias.grad(), f.at("gb"));
}

// ---- loss and activation ---------------------------------------------------------------------

// logits [6, 5]; one target is ignore_index -100; label_smoothing 0.1; mean reduction.
TEST(PyTorchOps, CrossEntropyWithIgnoredTargetAndLabelSmoothingMatchesTorch) {
  const TensorFile f = load_fixture("cross_entropy");
  ASSERT_EQ(meta(f, "reduction"), "mean");
  CrossEntropyOptions o;
  o.ignore_index = std::stoll(meta(f, "ignore_index"));
  o.label_smoothing = meta_real(f, "label_smoothing");
  Tensor x = leaf(f, "x");

  Tensor loss = cross_entropy(x, f.at("targets"), o);
  backward(loss);

  expect_matches_torch("y", loss, f.at("y"));
  expect_matches_torch("gx", x.grad(), f.at("gx"));
}

// x [64]: normal values and tails out to +-30.
TEST(PyTorchOps, GeluTanhMatchesTorch) {
  const TensorFile f = load_fixture("gelu_tanh");
  ASSERT_EQ(meta(f, "approximate"), "tanh");
  Tensor x = leaf(f, "x");

  Tensor y = gelu(x, GeluApprox::tanh);
  backward(y, f.at("gy"));

  expect_matches_torch("y", y, f.at("y"));
  expect_matches_torch("gx", x.grad(), f.at("gx"));
}

}  // namespace
}  // namespace spool
