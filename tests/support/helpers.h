// Helpers shared by the test files.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "engine/error.h"
#include "engine/safetensors.h"
#include "engine/tensor.h"

namespace spool::test_support {

// The message of the spool::Error that fn throws; fails the test when it throws none.
template <class F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a spool::Error";
  return "";
}

// max |a - b| / max(max |b|, floor) over the tensors: the difference relative to b's scale (or
// to `floor` for tensors that are, or should be, all but zero).
inline double scaled_error(const Tensor& a, const Tensor& b, double floor = 0) {
  auto x = a.to_vector<double>(), y = b.to_vector<double>();
  EXPECT_EQ(x.size(), y.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < std::min(x.size(), y.size()); ++i) {
    diff = std::max(diff, std::abs(x[i] - y[i]));
    scale = std::max(scale, std::abs(y[i]));
  }
  scale = std::max(scale, floor);
  return scale > 0 ? diff / scale : diff;
}

// Expects every float tensor of `want` to have a namesake in `got` within `tol` of its scale
// (integer tensors, such as BatchNorm's counters, must be equal and are not counted). Prints the
// worst tensor under `label`; returns how many float tensors were compared.
// `want` is a float64 reference (stored as float32). A tensor that is zero in exact arithmetic
// (its reference at most 1e-9 of the file's largest value: a bias whose gradient softmax or
// BatchNorm cancels) holds only rounding noise on both sides, so its relative error means
// nothing: its scale is floored at `zero_floor`, i.e. it must be within tol * zero_floor
// absolutely. The default 1e-2 gives 1e-6 at tol 1e-4, ten times the float32 noise seen on such
// gradients (1.07e-7) on models whose gradients are 1e-3 to 1; every other tensor is compared to
// its own scale.
inline int expect_matches(const TensorFile& got, const TensorFile& want, double tol,
                          const std::string& label, double zero_floor = 1e-2) {
  double file_scale = 0;
  for (const auto& [name, expected] : want.tensors)
    if (is_float(expected.dtype()))
      for (double v : expected.to_vector<double>()) file_scale = std::max(file_scale, std::abs(v));
  int compared = 0;
  double worst = 0;
  std::string worst_name;
  for (const auto& [name, expected] : want.tensors) {
    if (!got.has(name)) {
      ADD_FAILURE() << label << ": no '" << name << "'";
      continue;
    }
    const Tensor& actual = got.at(name);
    if (actual.shape() != expected.shape()) {
      ADD_FAILURE() << label << ": " << name << " is " << describe(actual) << ", expected "
                    << describe(expected);
      continue;
    }
    if (!is_float(expected.dtype())) {
      EXPECT_EQ(actual.to_vector<int64_t>(), expected.to_vector<int64_t>()) << name;
      continue;
    }
    double scale = 0;
    for (double v : expected.to_vector<double>()) scale = std::max(scale, std::abs(v));
    const double err =
        scaled_error(actual, expected, scale <= 1e-9 * file_scale ? zero_floor : 0);
    EXPECT_LE(err, tol) << label << ": " << name << " differs by " << err << " of its scale";
    if (err > worst) worst = err, worst_name = name;
    ++compared;
  }
  std::printf("[ %s ] worst tensor %s: %.3g of its scale\n", label.c_str(), worst_name.c_str(),
              worst);
  return compared;
}

}  // namespace spool::test_support
