// Dtype dispatch shared by the backends' kernels: calls f(T{}) with T the element type of dt.
#pragma once
#include <cstdint>

#include "engine/dtype.h"
#include "engine/error.h"

namespace spool {

template <class F>
void dispatch_float(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::f32:
      return f(float{});
    case DType::f64:
      return f(double{});
    default:
      fail(op, ": dtype ", name(dt), " is not supported (expected f32 or f64)");
  }
}

template <class F>
void dispatch_all(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::f32:
      return f(float{});
    case DType::f64:
      return f(double{});
    case DType::i32:
      return f(int32_t{});
    case DType::i64:
      return f(int64_t{});
    case DType::b8:
      return f(uint8_t{});
    case DType::bf16:
      fail(op,
           ": dtype bf16 is not supported (bf16 tensors convert to other dtypes with to() and "
           "feed matmul; see ops/autocast.h)");
  }
  fail(op, ": unknown dtype");
}

}  // namespace spool
