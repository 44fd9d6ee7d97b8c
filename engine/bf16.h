// bfloat16: the top 16 bits of an IEEE f32 (8 exponent bits, 7 mantissa bits). Conversion from
// f32 rounds to nearest, ties to even, as cuBLAS, cuDNN and PyTorch round; a NaN stays a (quiet)
// NaN, and values past the largest bf16 become infinities. To f32 it is exact. Compiled for the
// host and the CUDA kernels alike (engine/host_device.h), so both backends round bit for bit the
// same.
#pragma once
#include <cstdint>
#include <cstring>

#include "engine/host_device.h"

namespace spool {

struct bf16 {
  uint16_t bits = 0;
};

SPOOL_HD uint32_t f32_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}

SPOOL_HD float f32_from_bits(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

SPOOL_HD bf16 to_bf16(float f) {
  const uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{uint16_t((u >> 16) | 0x40u)};  // quiet NaN
  const uint32_t rounded = u + 0x7fffu + ((u >> 16) & 1u);  // nearest, ties to even
  return bf16{uint16_t(rounded >> 16)};
}

SPOOL_HD float to_f32(bf16 h) { return f32_from_bits(uint32_t(h.bits) << 16); }

}  // namespace spool
