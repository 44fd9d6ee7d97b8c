// Which path the CPU convolution kernels (conv, conv_backward_input, conv_backward_weight) take
// for f32: spool's im2col / vol2col plus OpenBLAS GEMMs (ops/cpu/conv.cpp), or oneDNN's direct
// convolutions on its blocked layouts (ops/cpu/onednn_conv.cpp), reordered from and to spool's
// contiguous [N, C, *spatial] on every call, as PyTorch's eager CPU path does. f64 always takes
// im2col (oneDNN has no f64 convolution). The default is oneDNN where the build has it (it is the
// faster on every standard model: docs/benchmarks.md), else im2col; SPOOL_CPU_CONV=im2col (or
// onednn) in the environment selects at the first convolution. set_conv(Conv::onednn) throws
// spool::Error saying why in a build without oneDNN, and so does the first convolution under
// SPOOL_CPU_CONV=onednn.
#pragma once
#include <string>

namespace spool::cpu {

enum class Conv { im2col, onednn };
void set_conv(Conv c);
Conv conv_path();
// Whether this build has the oneDNN path; if not, why in *why.
bool onednn_available(std::string* why = nullptr);
// oneDNN's version as "major.minor.patch" where the build has it, else "".
std::string onednn_version();

}  // namespace spool::cpu
