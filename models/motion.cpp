#include "models/motion.h"

#include "models/resnet.h"

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
// The reduced width of a motion module (TEA's ME, STM's CMM, TDN's L-TDM): channels / reduction,
// checked to leave a channel, over clips of a positive number of segments.
int64_t reduced_channels(const char* module, int64_t channels, int64_t segments,
                         int64_t reduction) {
  SPOOL_CHECK(reduction > 0 && channels / reduction >= 1, module, ": ", channels,
              " channels are fewer than the reduction ", reduction);
  SPOOL_CHECK(segments > 0, module, ": segments ", segments, " must be positive");
  return channels / reduction;
}
}  // namespace

MotionExcitation::MotionExcitation(int64_t channels, int64_t segments, Generator* gen,
                                   int64_t reduction)
    : segments_(segments) {
  const int64_t r = reduced_channels("MotionExcitation", channels, segments, reduction);
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
  const int64_t r = reduced_channels("ChannelMotion", channels, segments, reduction);
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

LongTermDifference::LongTermDifference(int64_t channels, int64_t segments, Generator* gen,
                                       int64_t reduction)
    : segments_(segments) {
  const int64_t r = reduced_channels("LongTermDifference", channels, segments, reduction);
  conv1_ = register_module("conv1", conv(channels, r, 1, 1, 0, 1, gen));
  bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm2d>(r));
  conv2_ = register_module("conv2", conv(r, r, 3, 1, 1, r, gen));
  conv_full_ = register_module("conv_full", conv(r, r, 3, 1, 1, 1, gen));
  bn_full_ = register_module("bn_full", std::make_shared<nn::BatchNorm2d>(r));
  conv_half_ = register_module("conv_half", conv(r, r, 3, 1, 1, 1, gen));
  bn_half_ = register_module("bn_half", std::make_shared<nn::BatchNorm2d>(r));
  conv3_ = register_module("conv3", conv(r, channels, 1, 1, 0, 1, gen));
  bn3_ = register_module("bn3", std::make_shared<nn::BatchNorm2d>(channels));
}

Tensor LongTermDifference::forward(const Tensor& x) {
  SPOOL_CHECK(x.dim() == 4, "LongTermDifference: input ", describe(x),
              " must be [N * segments, C, H, W]");
  const Tensor f = bn1_->forward(conv1_->forward(x));
  const Tensor g = conv2_->forward(f);
  Tensor sum;
  for (const int64_t step : {int64_t(1), int64_t(-1)}) {
    const Tensor d = temporal_difference(g, f, segments_, step);
    const Tensor half = bn_half_->forward(conv_half_->forward(
        avg_pool(d, {.kernel = {3}, .stride = {2}, .padding = {1}, .count_include_pad = false})));
    const Tensor m = (d + bn_full_->forward(conv_full_->forward(d)) +
                      upsample_nearest(half, d.size(2), d.size(3))) *
                     (1.0 / 3.0);
    const Tensor s = sigmoid(bn3_->forward(conv3_->forward(m)));
    sum = sum.defined() ? sum + s : s;
  }
  // x + x (mean of the sigmoids - 1/2) = x (sum / 2 + 1/2).
  return x * (sum * 0.5 + 0.5);
}

ShortTermDifference::ShortTermDifference(int64_t frames, int64_t width, int64_t depth,
                                         Generator* gen)
    : frames_(frames) {
  SPOOL_CHECK(frames >= 2 && width > 0, "ShortTermDifference: ", frames,
              " frames a snippet (at least 2) and width ", width, " (positive)");
  conv1_ = register_module("conv1", conv(3 * (frames - 1), width, 7, 2, 3, 1, gen));
  bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm2d>(width));
  layer1_ = register_module("layer1", std::make_shared<nn::Sequential>());
  const int64_t blocks = resnet_stage_blocks(depth)[0];
  int64_t in = width;
  for (int64_t b = 0; b < blocks; ++b) {
    if (resnet_expansion(depth) == 4) {
      layer1_->push_back(std::make_shared<Bottleneck>(in, width, 1, gen));
      in = width * 4;
    } else {
      layer1_->push_back(std::make_shared<BasicBlock>(in, width, 1, gen));
    }
  }
}

Tensor ShortTermDifference::stem(const Tensor& snippets) {
  SPOOL_CHECK(snippets.dim() == 4 && snippets.size(1) == 3 * frames_, "S-TDM: snippets ",
              describe(snippets), " must be [N * segments, ", 3 * frames_, ", H, W] (", frames_,
              " RGB frames each)");
  const int64_t c = 3 * (frames_ - 1);
  const Tensor diff = narrow(snippets, 1, 3, c) - narrow(snippets, 1, 0, c);
  const Tensor h = bn1_->forward_relu(
      conv1_->forward(avg_pool(diff, {.kernel = {2}, .stride = {2}, .padding = {0}})));
  return max_pool(h, {.kernel = {3}, .stride = {2}, .padding = {1}});
}

Tensor ShortTermDifference::layer1(const Tensor& h) { return layer1_->forward(h); }

}  // namespace spool::models
