// Overflow-checked arithmetic for sizes. Every product of dimensions, byte count and count
// derived from a file or a user's input goes through these: a result that would not fit throws
// spool::Error naming `what`, instead of wrapping into a small number that sizes an allocation.
#pragma once
#include <cstddef>
#include <cstdint>
#include <limits>

#include "engine/error.h"

namespace spool {

// a * b for non-negative a and b.
inline int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r))
    fail(what, ": ", a, " x ", b, " overflows a 64-bit size");
  return r;
}

inline int64_t checked_add(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) fail(what, ": ", a, " + ", b, " overflows a 64-bit size");
  return r;
}

inline uint64_t checked_mul_u64(uint64_t a, uint64_t b, const char* what) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) fail(what, ": ", a, " x ", b, " overflows a 64-bit size");
  return r;
}

inline uint64_t checked_add_u64(uint64_t a, uint64_t b, const char* what) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) fail(what, ": ", a, " + ", b, " overflows a 64-bit size");
  return r;
}

// The product of `dims` (each checked non-negative), or an error naming `what`.
template <class Dims>
int64_t checked_product(const Dims& dims, const char* what) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) fail(what, ": dimension ", d, " is negative");
    n = checked_mul(n, d, what);
  }
  return n;
}

}  // namespace spool
