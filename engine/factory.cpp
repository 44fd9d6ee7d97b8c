#include "engine/factory.h"

#include <cmath>
#include <cstring>

#include "engine/backend.h"
#include "engine/checked.h"

namespace spool {

Tensor empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t s : shape)
    SPOOL_CHECK(s >= 0, "empty: shape ", str(shape), " has a negative dimension");
  const int64_t bytes = checked_mul(numel(shape), int64_t(itemsize(dtype)), "empty: tensor bytes");
  auto storage = std::make_shared<Storage>(size_t(bytes), device);
  return Tensor::make(std::move(storage), 0, shape, contiguous_strides(shape), dtype);
}

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  backend(device).fill(t, value);
  return t;
}

Tensor zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0, dtype, device);
}
Tensor ones(const Shape& shape, DType dtype, Device device) {
  return full(shape, 1, dtype, device);
}
Tensor scalar(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

Tensor arange(double start, double end, double step, DType dtype, Device device) {
  SPOOL_CHECK(step != 0, "arange: step is 0");
  double span = (end - start) / step;
  int64_t n = span > 0 ? int64_t(std::ceil(span)) : 0;
  Tensor t = empty({n}, dtype, device);
  backend(device).arange(t, start, step);
  return t;
}
Tensor arange(int64_t n, DType dtype) { return arange(0, double(n), 1, dtype); }

Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.dtype(), t.device()); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype(), t.device()); }

Tensor rand(const Shape& shape, DType dtype, Generator* gen, double lo, double hi) {
  SPOOL_CHECK(is_float(dtype), "rand: dtype must be f32 or f64, got ", name(dtype));
  Tensor t = empty(shape, dtype);
  Generator& g = gen ? *gen : default_generator();
  backend(t.device()).uniform(t, g.take(t.numel()), lo, hi);
  return t;
}

Tensor randn(const Shape& shape, DType dtype, Generator* gen, double mean, double std) {
  SPOOL_CHECK(is_float(dtype), "randn: dtype must be f32 or f64, got ", name(dtype));
  Tensor t = empty(shape, dtype);
  Generator& g = gen ? *gen : default_generator();
  backend(t.device()).normal(t, g.take(t.numel()), mean, std);
  return t;
}

template <class T>
Tensor from_vector(const std::vector<T>& data, const Shape& shape) {
  SPOOL_CHECK(int64_t(data.size()) == numel(shape), "from_vector: ", data.size(),
              " values do not fill shape ", str(shape), " (", numel(shape), " elements)");
  Tensor t = empty(shape, dtype_of<T>());
  if (!data.empty()) std::memcpy(t.raw(), data.data(), data.size() * sizeof(T));
  return t;
}
template Tensor from_vector(const std::vector<float>&, const Shape&);
template Tensor from_vector(const std::vector<double>&, const Shape&);
template Tensor from_vector(const std::vector<int32_t>&, const Shape&);
template Tensor from_vector(const std::vector<int64_t>&, const Shape&);

}  // namespace spool
