#include "nn/init.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/factory.h"
#include "ops/elementwise.h"

namespace spool::nn::init {

namespace {
int64_t receptive(const Tensor& t) {
  int64_t r = 1;
  for (int64_t d = 2; d < t.dim(); ++d) r *= t.size(d);
  return r;
}
void check_fans(const Tensor& t, const char* op) {
  SPOOL_CHECK(t.dim() >= 2, op, ": needs a weight with at least 2 dims, got ", str(t.shape()));
}
}  // namespace

int64_t fan_in(const Tensor& t) {
  check_fans(t, "fan_in");
  return t.size(1) * receptive(t);
}
int64_t fan_out(const Tensor& t) {
  check_fans(t, "fan_out");
  return t.size(0) * receptive(t);
}

void constant_(const Tensor& t, double v) {
  NoGrad no_grad;
  fill_(t, v);
}
void zeros_(const Tensor& t) { constant_(t, 0); }
void ones_(const Tensor& t) { constant_(t, 1); }

void uniform_(const Tensor& t, double lo, double hi, Generator* gen) {
  NoGrad no_grad;
  copy_(t, rand(t.shape(), t.dtype(), gen, lo, hi));
}

void normal_(const Tensor& t, double mean, double std, Generator* gen) {
  NoGrad no_grad;
  copy_(t, randn(t.shape(), t.dtype(), gen, mean, std));
}

void kaiming_normal_(const Tensor& t, FanMode mode, Generator* gen) {
  const double fan = double(mode == FanMode::fan_in ? fan_in(t) : fan_out(t));
  normal_(t, 0, std::sqrt(2.0 / fan), gen);
}

void kaiming_uniform_(const Tensor& t, double a, FanMode mode, Generator* gen) {
  const double fan = double(mode == FanMode::fan_in ? fan_in(t) : fan_out(t));
  const double bound = std::sqrt(3.0) * std::sqrt(2.0 / (1 + a * a)) / std::sqrt(fan);
  uniform_(t, -bound, bound, gen);
}

void xavier_normal_(const Tensor& t, double gain, Generator* gen) {
  normal_(t, 0, gain * std::sqrt(2.0 / double(fan_in(t) + fan_out(t))), gen);
}

void xavier_uniform_(const Tensor& t, double gain, Generator* gen) {
  const double bound = gain * std::sqrt(6.0 / double(fan_in(t) + fan_out(t)));
  uniform_(t, -bound, bound, gen);
}

}  // namespace spool::nn::init
