// Element types. f64 exists for gradient checks; b8 holds masks and comparison results; bf16
// (engine/bf16.h) holds the operands autocast's matmul saves (ops/autocast.h): it converts to and
// from the other dtypes and feeds matmul, and every other kernel refuses it by name.
#pragma once
#include <cstddef>
#include <cstdint>

namespace spool {

enum class DType : uint8_t { f32, f64, i32, i64, b8, bf16 };

constexpr size_t itemsize(DType t) {
  switch (t) {
    case DType::f32:
      return 4;
    case DType::f64:
      return 8;
    case DType::i32:
      return 4;
    case DType::i64:
      return 8;
    case DType::b8:
      return 1;
    case DType::bf16:
      return 2;
  }
  return 0;
}

constexpr const char* name(DType t) {
  switch (t) {
    case DType::f32:
      return "f32";
    case DType::f64:
      return "f64";
    case DType::i32:
      return "i32";
    case DType::i64:
      return "i64";
    case DType::b8:
      return "b8";
    case DType::bf16:
      return "bf16";
  }
  return "?";
}

constexpr bool is_float(DType t) { return t == DType::f32 || t == DType::f64; }

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::f32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::f64;
}
template <>
constexpr DType dtype_of<int32_t>() {
  return DType::i32;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::i64;
}
template <>
constexpr DType dtype_of<uint8_t>() {
  return DType::b8;
}

}  // namespace spool
