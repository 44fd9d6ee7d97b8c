// The cuDNN convolution path (cuda/cudnn_conv.cu), called by CudaBackend's conv entry points when
// cuda::conv_path() is Conv::cudnn. Built only where the build has cuDNN (SPOOL_HAVE_CUDNN);
// callers check cudnn_available() first. Same contract as the im2col path: contiguous NCHW /
// NCDHW tensors, the outputs overwritten (alpha 1, beta 0), never accumulated into.
#pragma once
#include "engine/backend.h"
#include "engine/tensor.h"

namespace spool::cuda {

void cudnn_conv(const Tensor& x, const Tensor& w, const WindowParams& p, const Tensor& y);
void cudnn_conv_backward_input(const Tensor& gy, const Tensor& w, const WindowParams& p,
                               const Tensor& gx);
void cudnn_conv_backward_weight(const Tensor& gy, const Tensor& x, const WindowParams& p,
                                const Tensor& gw);

// Builds the cuDNN descriptors of a convolution x [N, Cin, *in], w, y (the dtype's) and checks
// that cuDNN's output shape is y's; throws spool::Error naming the op otherwise. Host work only:
// no handle, no GPU (the tests check the geometry with it where there is no GPU).
void cudnn_check_geometry(const Shape& x, const Shape& w, const Shape& y, const WindowParams& p,
                          DType dt);

}  // namespace spool::cuda
