// Initialisers, in place and without recording, as torch.nn.init. Fans follow PyTorch: for a
// weight [out, in, *kernel], fan_in = in * kernel volume and fan_out = out * kernel volume.
#pragma once
#include "engine/rng.h"
#include "engine/tensor.h"

namespace spool::nn::init {

enum class FanMode { fan_in, fan_out };

void zeros_(const Tensor& t);
void ones_(const Tensor& t);
void constant_(const Tensor& t, double value);
void uniform_(const Tensor& t, double lo, double hi, Generator* gen = nullptr);
void normal_(const Tensor& t, double mean, double std, Generator* gen = nullptr);
// He initialisation for ReLU networks: std = sqrt(2 / fan).
void kaiming_normal_(const Tensor& t, FanMode mode = FanMode::fan_in, Generator* gen = nullptr);
void kaiming_uniform_(const Tensor& t, double a = 0, FanMode mode = FanMode::fan_in,
                      Generator* gen = nullptr);
// Glorot: std = gain * sqrt(2 / (fan_in + fan_out)).
void xavier_normal_(const Tensor& t, double gain = 1, Generator* gen = nullptr);
void xavier_uniform_(const Tensor& t, double gain = 1, Generator* gen = nullptr);

int64_t fan_in(const Tensor& t);
int64_t fan_out(const Tensor& t);

}  // namespace spool::nn::init
