// Tensor: a cheap handle (shared pointer) to storage + offset + shape + strides + dtype. Copies
// of a Tensor are the same tensor; views made by ops share the storage but not the handle.
// Differentiable ops live in ops/; this header has only what needs no kernel.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <vector>

#include "engine/device.h"
#include "engine/dtype.h"
#include "engine/error.h"
#include "engine/shape.h"
#include "engine/storage.h"

namespace spool {

struct Node;  // a tape entry (engine/autograd.h)
class Tensor;
using Tensors = std::vector<Tensor>;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape, strides;
  DType dtype = DType::f32;
  // Autograd: a leaf that requires grad accumulates into grad; a non-leaf knows the tape entry
  // that made it (grad_fn) and which of that entry's outputs it is.
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<Node> grad_fn;
  int output_nr = 0;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}
  // A view of existing storage.
  static Tensor make(std::shared_ptr<Storage> storage, int64_t offset, Shape shape, Shape strides,
                     DType dtype);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t dim() const { return int64_t(impl().shape.size()); }
  int64_t size(int64_t d) const;  // d may be negative
  int64_t stride(int64_t d) const;
  int64_t offset() const { return impl().offset; }
  int64_t numel() const { return spool::numel(impl().shape); }
  size_t nbytes() const { return size_t(numel()) * itemsize(dtype()); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }

  // Pointer to element 0 of this view; checks the dtype.
  template <class T>
  T* data() const {
    SPOOL_CHECK(dtype_of<T>() == dtype(), "data: tensor is ", name(dtype()), ", asked for ",
                name(dtype_of<T>()));
    return static_cast<T*>(storage()->data()) + offset();
  }
  void* raw() const {
    return static_cast<char*>(storage()->data()) + offset() * int64_t(itemsize(dtype()));
  }

  // Host-side element access (CPU tensors); values are converted to/from double.
  double item() const;  // the tensor must hold one element
  double at(const Shape& index) const;
  void set_at(const Shape& index, double value);  // bumps the version counter
  template <class T>
  std::vector<T> to_vector() const;  // row-major copy of the elements

  // Autograd.
  bool requires_grad() const { return impl().requires_grad; }
  // Marks a leaf as requiring grad (parameters, gradcheck inputs).
  Tensor& requires_grad_(bool on = true);
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
  Tensor grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }
  void set_grad(const Tensor& g) { impl().grad = g.impl_; }
  // Shares storage, carries no autograd history.
  Tensor detach() const;

  TensorImpl& impl() const {
    SPOOL_CHECK(impl_, "tensor: use of an undefined tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);
std::string describe(const Tensor& t);  // "f32[8, 3]"

}  // namespace spool
