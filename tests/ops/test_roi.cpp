// RoIAlign (ops/roi.h): values by hand, f64 gradchecks of both sampling modes with regions across
// the border, and the refusals. Against torchvision: tests/ops/test_pytorch_ops.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "engine/autograd.h"
#include "engine/factory.h"
#include "ops/gradcheck.h"
#include "ops/ops.h"

using namespace spool;

TEST(RoiAlign, ABinOnAPixelCentreReadsThatPixelAndAHalfwayPointTheMean) {
  // A 2 x 3 map 0..5; region (0, 0) - (3, 2) in aligned coordinates is the whole map, one bin a
  // pixel: each bin's single point is that pixel's centre.
  const Tensor x = from_vector(std::vector<double>{0, 1, 2, 3, 4, 5}, {1, 1, 2, 3});
  const Tensor whole = from_vector(std::vector<double>{0, 0, 0, 3, 2}, {1, 5});
  RoiAlignOptions o;
  o.out_h = 2;
  o.out_w = 3;
  o.sampling_ratio = 1;
  EXPECT_EQ(roi_align(x, whole, o).to_vector<double>(), (std::vector<double>{0, 1, 2, 3, 4, 5}));
  // One bin over the whole map with one point: its centre (1.5, 1) in pixel centres (x 1.5 - 0.5
  // = 1, y 1 - 0.5 = 0.5): halfway between rows 0 and 1 at column 1, (1 + 4) / 2.
  o.out_h = o.out_w = 1;
  EXPECT_DOUBLE_EQ(roi_align(x, whole, o).item(), 2.5);
}

TEST(RoiAlign, GradientMatchesFiniteDifferencesInBothSamplingModes) {
  Generator gen(21);
  const Tensor rois = from_vector(std::vector<double>{0, 0.5, 1.0, 6.5, 4.0,   //
                                                      1, -1.5, 2.0, 3.0, 7.5,  //
                                                      1, 2.2, 2.1, 2.6, 2.3},
                                  {3, 5});
  for (const bool aligned : {true, false})
    for (const int64_t sampling : {int64_t(2), int64_t(0)}) {
      Tensor x = randn({2, 2, 5, 7}, DType::f64, &gen).requires_grad_();
      RoiAlignOptions o;
      o.out_h = 2;
      o.out_w = 3;
      o.sampling_ratio = sampling;
      o.aligned = aligned;
      o.spatial_scale = 0.9;
      EXPECT_EQ(gradcheck([&](const Tensors& in) { return roi_align(in[0], rois, o); }, {x}), "")
          << "aligned " << aligned << " sampling " << sampling;
    }
}

TEST(RoiAlign, RefusesBadRegionsByName) {
  const Tensor x = zeros({2, 1, 4, 4}, DType::f64);
  auto refused = [&](const std::vector<double>& roi, const std::string& why,
                     RoiAlignOptions o = {}) {
    try {
      roi_align(x, from_vector(roi, {1, int64_t(roi.size())}), o);
      ADD_FAILURE() << "accepted " << why;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  refused({2, 0, 0, 1, 1}, "names batch index 2; x holds 2");
  refused({0.5, 0, 0, 1, 1}, "names batch index 0.5");
  refused({0, 0, std::nan(""), 1, 1}, "has coordinate nan");
  refused({0, 0, 0, 1}, "must be [R, 5]");
  RoiAlignOptions adaptive;
  adaptive.sampling_ratio = 0;
  refused({0, 0, 0, 1e6, 1e6}, "points a bin", adaptive);
  EXPECT_THROW(roi_align(x, zeros({1, 5}, DType::f32)), Error);  // dtype differs
  EXPECT_THROW(roi_align(zeros({2, 4, 4}, DType::f64), zeros({1, 5}, DType::f64)), Error);
}
