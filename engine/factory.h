// Tensor factories. Random factories draw from a Generator (the default one when none is given).
#pragma once
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace spool {

Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor full(const Shape& shape, double value, DType dtype = DType::f32,
            Device device = Device::cpu());
Tensor scalar(double value, DType dtype = DType::f32, Device device = Device::cpu());  // 0-d
Tensor arange(double start, double end, double step = 1, DType dtype = DType::i64,
              Device device = Device::cpu());
Tensor arange(int64_t n, DType dtype = DType::i64);

Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);

// Uniform on [lo, hi) and normal(mean, std).
Tensor rand(const Shape& shape, DType dtype = DType::f32, Generator* gen = nullptr, double lo = 0,
            double hi = 1);
Tensor randn(const Shape& shape, DType dtype = DType::f32, Generator* gen = nullptr,
             double mean = 0, double std = 1);

// Copies host data into a new tensor; the element count must match the shape.
template <class T>
Tensor from_vector(const std::vector<T>& data, const Shape& shape);
template <class T>
Tensor from_vector(const std::vector<T>& data) {
  return from_vector(data, Shape{int64_t(data.size())});
}

}  // namespace spool
