// bf16 autocast (docs/design.md, "bf16 autocast"): inside an Autocast scope, matmul of two f32
// operands (and with it linear, every projection and head, and the naive attention's products),
// convolution and flash attention round their f32 operands to bf16 (nearest, ties to even;
// engine/bf16.h), compute with f32 accumulation into an f32 result, and keep the bf16 copies for
// backward, half the bytes of the f32 operands. Backward rounds the incoming gradient to bf16 as
// well and returns f32 gradients to the f32 tensors, so parameters and optimizer state stay f32
// (master weights). f64 operands are left alone.
//
// On the GPU matmul multiplies the bf16 operands as they are (cuBLAS, f32 compute); convolution
// and flash attention, and every product on the CPU, run the f32 kernels on exact f32 widenings
// of the bf16 copies, so there autocast saves memory, not time.
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
