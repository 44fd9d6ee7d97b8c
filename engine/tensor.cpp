#include "engine/tensor.h"

#include <cmath>
#include <cstdio>
#include <ostream>

#include "engine/backend.h"
#include "engine/bf16.h"
#include "engine/factory.h"

namespace spool {

Tensor Tensor::make(std::shared_ptr<Storage> storage, int64_t offset, Shape shape, Shape strides,
                    DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->offset = offset;
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return strides()[wrap_dim(d, dim(), "stride")]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (shape()[i] == 1) continue;
    if (strides()[i] != expected) return false;
    expected *= shape()[i];
  }
  return true;
}

namespace {

int64_t element_offset(const Tensor& t, const Shape& index) {
  SPOOL_CHECK(int64_t(index.size()) == t.dim(), "at: index ", str(index), " has ", index.size(),
              " entries for a tensor of shape ", str(t.shape()));
  int64_t off = t.offset();
  for (int64_t i = 0; i < t.dim(); ++i) {
    SPOOL_CHECK(index[i] >= 0 && index[i] < t.shape()[i], "at: index ", str(index),
                " is out of bounds for shape ", str(t.shape()));
    off += index[i] * t.strides()[i];
  }
  return off;
}

double load(const void* base, DType dt, int64_t off) {
  switch (dt) {
    case DType::f32:
      return static_cast<const float*>(base)[off];
    case DType::f64:
      return static_cast<const double*>(base)[off];
    case DType::i32:
      return static_cast<const int32_t*>(base)[off];
    case DType::i64:
      return double(static_cast<const int64_t*>(base)[off]);
    case DType::b8:
      return static_cast<const uint8_t*>(base)[off];
    case DType::bf16:
      return to_f32(static_cast<const bf16*>(base)[off]);
  }
  return 0;
}

void store(void* base, DType dt, int64_t off, double v) {
  switch (dt) {
    case DType::f32:
      static_cast<float*>(base)[off] = float(v);
      break;
    case DType::f64:
      static_cast<double*>(base)[off] = v;
      break;
    case DType::i32:
      static_cast<int32_t*>(base)[off] = int32_t(v);
      break;
    case DType::i64:
      static_cast<int64_t*>(base)[off] = int64_t(v);
      break;
    case DType::b8:
      static_cast<uint8_t*>(base)[off] = v != 0;
      break;
    case DType::bf16:
      static_cast<bf16*>(base)[off] = to_bf16(float(v));
      break;
  }
}

void check_host(const Tensor& t, const char* what) {
  SPOOL_CHECK(t.device().type == DeviceType::cpu, what, ": tensor is on ", t.device().str(),
              "; copy it to the cpu first");
}

// A contiguous host copy of a device tensor, for element access.
Tensor host_copy(const Tensor& t) {
  Tensor h = empty(t.shape(), t.dtype());
  copy_across(t, h);
  return h;
}

}  // namespace

double Tensor::item() const {
  if (device().type != DeviceType::cpu) return host_copy(*this).item();
  SPOOL_CHECK(numel() == 1, "item: tensor of shape ", str(shape()), " has ", numel(),
              " elements, expected 1");
  return load(storage()->data(), dtype(), offset());
}

double Tensor::at(const Shape& index) const {
  if (device().type != DeviceType::cpu) return host_copy(*this).at(index);
  return load(storage()->data(), dtype(), element_offset(*this, index));
}

void Tensor::set_at(const Shape& index, double value) {
  check_host(*this, "set_at");
  store(storage()->data(), dtype(), element_offset(*this, index), value);
  storage()->bump_version();
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  if (device().type != DeviceType::cpu) return host_copy(*this).to_vector<T>();
  std::vector<T> out;
  out.reserve(size_t(numel()));
  Shape idx(size_t(dim()), 0);
  int64_t n = numel();
  for (int64_t k = 0; k < n; ++k) {
    int64_t off = offset();
    for (int64_t i = 0; i < dim(); ++i) off += idx[i] * strides()[i];
    out.push_back(T(load(storage()->data(), dtype(), off)));
    for (int64_t i = dim() - 1; i >= 0; --i) {
      if (++idx[i] < shape()[i]) break;
      idx[i] = 0;
    }
  }
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

Tensor& Tensor::requires_grad_(bool on) {
  SPOOL_CHECK(is_leaf(),
              "requires_grad_: only a leaf tensor's flag can be set; this one was made "
              "by an op (detach() it first)");
  SPOOL_CHECK(!on || is_float(dtype()),
              "requires_grad_: only floating tensors can require grad, "
              "this one is ",
              name(dtype()));
  impl().requires_grad = on;
  return *this;
}

Tensor Tensor::detach() const { return make(storage(), offset(), shape(), strides(), dtype()); }

std::string describe(const Tensor& t) {
  if (!t.defined()) return "undefined";
  return std::string(name(t.dtype())) + str(t.shape());
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  if (t.device().type != DeviceType::cpu)
    return os << "tensor(" << describe(t) << ", " << t.device().str() << ")";
  std::vector<double> v = t.to_vector<double>();
  const int64_t edge = 3;  // elements shown at each end of a long dimension
  bool integral = !is_float(t.dtype()) && t.dtype() != DType::bf16;
  char buf[64];
  auto fmt = [&](double x) {
    if (integral)
      std::snprintf(buf, sizeof buf, "%lld", (long long)x);
    else
      std::snprintf(buf, sizeof buf, "%.4f", x);
    return std::string(buf);
  };
  Shape cs = contiguous_strides(t.shape());
  std::string indent = "       ";
  // Recursive printer over dimensions, eliding the middle of dimensions longer than 2*edge.
  auto rec = [&](auto&& self, int64_t d, int64_t base) -> void {
    if (d == t.dim()) {
      os << fmt(v[size_t(base)]);
      return;
    }
    os << "[";
    int64_t n = t.shape()[d];
    for (int64_t i = 0; i < n; ++i) {
      if (n > 2 * edge && i == edge) {
        os << "...";
        i = n - edge - 1;
        os << (d + 1 == t.dim() ? ", " : ",\n" + indent + std::string(size_t(d + 1), ' '));
        continue;
      }
      self(self, d + 1, base + i * cs[d]);
      if (i + 1 < n)
        os << (d + 1 == t.dim() ? ", " : ",\n" + indent + std::string(size_t(d + 1), ' '));
    }
    os << "]";
  };
  os << "tensor(";
  rec(rec, 0, 0);
  os << ", dtype=" << name(t.dtype());
  if (t.requires_grad()) os << ", requires_grad";
  return os << ")";
}

}  // namespace spool
