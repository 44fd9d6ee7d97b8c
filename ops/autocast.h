// bf16 autocast for matmul: inside an Autocast scope, matmul of two f32 operands (and with it
// linear, and every projection and head built on them) rounds both operands to bf16 (nearest,
// ties to even; engine/bf16.h), multiplies them with f32 accumulation into an f32 result, and
// keeps the bf16 copies for backward, half the bytes of the f32 operands. Backward rounds the
// incoming gradient to bf16 as well and returns f32 gradients to the f32 tensors, so parameters
// and optimizer state stay f32 (master weights). f64 operands are left alone.
//
// In this version the products run through f32 GEMMs of the converted operands on both devices
// (exact: a product of two bf16 values fits an f32 mantissa), so autocast saves memory, not time;
// convolution and attention stay f32 (docs/cuda.md).
#pragma once

namespace spool {

class Autocast {
 public:
  explicit Autocast(bool enabled = true);
  ~Autocast();
  Autocast(const Autocast&) = delete;
  Autocast& operator=(const Autocast&) = delete;

 private:
  bool previous_;
};

// True inside an enabled Autocast scope on this thread.
bool autocast_enabled();

}  // namespace spool
