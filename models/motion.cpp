#include "models/motion.h"

#include "engine/autograd.h"
#include "engine/factory.h"
#include "nn/init.h"
#include "ops/elementwise.h"
#include "ops/pool.h"
#include "ops/shape.h"
#include "ops/video.h"

namespace spool::models {

namespace {
// As the backbone's convolutions: kaiming_normal (fan_out, ReLU), no bias.
std::shared_ptr<nn::Conv2d> conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad,
                                 int64_t groups, Generator* gen) {
  auto c = std::make_shared<nn::Conv2d>(
      nn::ConvSpec{in, out, {k}, {stride}, {pad}, {1}, groups, /*bias=*/false}, gen);
  nn::init::kaiming_normal_(c->weight, nn::init::FanMode::fan_out, gen);
  return c;
}
}  // namespace

MotionExcitation::MotionExcitation(int64_t channels, int64_t segments, Generator* gen,
                                   int64_t reduction)
    : segments_(segments) {
  const int64_t r = channels / reduction;
  SPOOL_CHECK(r >= 1, "MotionExcitation: ", channels, " channels are fewer than the reduction ",
              reduction);
  SPOOL_CHECK(segments > 0, "MotionExcitation: segments ", segments, " must be positive");
  conv1_ = register_module("conv1", conv(channels, r, 1, 1, 0, 1, gen));
  bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm2d>(r));
  conv2_ = register_module("conv2", conv(r, r, 3, 1, 1, r, gen));
  conv3_ = register_module("conv3", conv(r, channels, 1, 1, 0, 1, gen));
  bn3_ = register_module("bn3", std::make_shared<nn::BatchNorm2d>(channels));
}

Tensor MotionExcitation::forward(const Tensor& x) {
  const Tensor f = bn1_->forward(conv1_->forward(x));
  const Tensor moved = adaptive_avg_pool_global(conv2_->forward(f));  // [NT, C/r, 1, 1]
  const Tensor diff = temporal_difference(moved, adaptive_avg_pool_global(f), segments_);
  // x + x (sigmoid(z) - 1/2) = x (sigmoid(z) + 1/2): one broadcast product.
  return x * (sigmoid(bn3_->forward(conv3_->forward(diff))) + 0.5);
}

ChannelMotion::ChannelMotion(int64_t channels, int64_t segments, int64_t stride, Generator* gen,
                             int64_t reduction)
    : segments_(segments) {
  const int64_t r = channels / reduction;
  SPOOL_CHECK(r >= 1, "ChannelMotion: ", channels, " channels are fewer than the reduction ",
              reduction);
  SPOOL_CHECK(segments > 0, "ChannelMotion: segments ", segments, " must be positive");
  conv1_ = register_module("conv1", conv(channels, r, 1, 1, 0, 1, gen));
  conv2_ = register_module("conv2", conv(r, r, 3, 1, 1, r, gen));
  conv3_ = register_module("conv3", conv(r, channels, 1, stride, 0, 1, gen));
}

Tensor ChannelMotion::forward(const Tensor& x) {
  const Tensor f = conv1_->forward(x);
  return conv3_->forward(temporal_difference(conv2_->forward(f), f, segments_));
}

TemporalConv::TemporalConv(int64_t channels, int64_t segments, bool identity)
    : segments_(segments) {
  conv_ = register_module("conv", std::make_shared<nn::Conv1d>(nn::ConvSpec{
                                      channels, channels, {3}, {1}, {1}, {1}, channels, false}));
  std::vector<float> w(size_t(channels) * 3, 0.0f);
  const int64_t fold = channels / 2;
  for (int64_t c = 0; c < channels; ++c) {
    // taps: 0 reads frame t-1, 1 frame t, 2 frame t+1
    const int64_t tap = identity ? 1 : c < fold ? 2 : 0;
    w[size_t(c * 3 + tap)] = 1.0f;
  }
  NoGrad no_grad;
  copy_(conv_->weight, from_vector(w, {channels, 1, 3}));
}

Tensor TemporalConv::forward(const Tensor& x) { return temporal_conv(x, conv_->weight, segments_); }

TemporalAggregation::TemporalAggregation(int64_t channels, int64_t segments, int64_t stride,
                                         bool stage, Generator* gen, int64_t scale)
    : width_(channels / scale), scale_(scale), stride_(stride), stage_(stage) {
  SPOOL_CHECK(scale >= 2 && channels % scale == 0, "TemporalAggregation: ", channels,
              " channels do not split into ", scale, " groups");
  auto convs = register_module("convs", std::make_shared<nn::ModuleList>());
  auto bns = register_module("bns", std::make_shared<nn::ModuleList>());
  auto shifts = register_module("shifts", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i + 1 < scale; ++i) {
    convs_.push_back(convs->push_back(conv(width_, width_, 3, stride, 1, 1, gen)));
    bns_.push_back(bns->push_back(std::make_shared<nn::BatchNorm2d>(width_)));
  }
  for (int64_t i = 0; i < scale; ++i)
    shifts_.push_back(
        shifts->push_back(std::make_shared<TemporalConv>(width_, segments, i + 1 < scale)));
}

Tensor TemporalAggregation::forward(const Tensor& x) {
  SPOOL_CHECK(x.dim() == 4 && x.size(1) == width_ * scale_, "MTA: input ", describe(x),
              " must be [N T, ", width_ * scale_, ", H, W]");
  Tensors out;
  Tensor sp;
  for (int64_t i = 0; i + 1 < scale_; ++i) {
    const Tensor part = narrow(x, 1, i * width_, width_);
    sp = i == 0 || stage_ ? part : sp + part;
    sp = bns_[size_t(i)]->forward_relu(convs_[size_t(i)]->forward(shifts_[size_t(i)]->forward(sp)));
    out.push_back(sp);
  }
  Tensor last = shifts_.back()->forward(narrow(x, 1, (scale_ - 1) * width_, width_));
  if (stage_) last = avg_pool(last, {.kernel = {3}, .stride = {stride_}, .padding = {1}});
  out.push_back(last);
  return cat(out, 1);
}

}  // namespace spool::models
