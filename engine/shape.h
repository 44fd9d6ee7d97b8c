// Shapes and strides are vectors of int64 (elements, not bytes), as in PyTorch.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace spool {

using Shape = std::vector<int64_t>;

int64_t numel(const Shape& shape);
Shape contiguous_strides(const Shape& shape);
// "[8, 3]"; a shape of more than kShapeDimsShown dims is written as its first
// kShapeDimsShownShort and the count: "[2, 2, 2, 2, 2, 2, 2, 2, ... (1000 dims)]".
constexpr size_t kShapeDimsShown = 16, kShapeDimsShownShort = 8;
std::string str(const Shape& shape);
// Wraps a possibly negative dim into [0, ndim); the op name goes into the error message.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);
// The NumPy broadcast of two shapes; throws naming the op when they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace spool
