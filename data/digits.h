// The 8x8 digits data set (1797 images, 10 classes) that scikit-learn ships as digits.csv.gz:
// 64 pixel values in 0..16 then the label, one image per line.
#pragma once
#include <cstddef>
#include <string>

#include "engine/tensor.h"

namespace spool::data {

struct Split {
  Tensor x_train, y_train;  // f32 [N, 64] scaled to [0, 1]; i64 [N]
  Tensor x_test, y_test;
};

// Where Debian's python3-sklearn (or $SPOOL_DIGITS) put digits.csv.gz; throws naming what to
// install when it is nowhere.
std::string find_digits();
// The most text a digits CSV may expand to; reading stops and fails past it.
constexpr size_t kMaxDigitsBytes = size_t(64) << 20;
// Reads a digits CSV, gzipped or plain; throws naming the file and line on malformed input (a
// field that is not a plain decimal, such as 0x10, 1e1 or inf, names its pixel or the label; a
// value outside 0..16 or a label outside 0..9), and on a file that expands past kMaxDigitsBytes.
void load_digits(const std::string& path, Tensor& images, Tensor& labels);
// A fixed 80/20 split (the same shuffle every time, independent of any training seed); a file of
// fewer than 5 images, which would leave no test image, is refused.
Split digits_split(const std::string& path);

}  // namespace spool::data
