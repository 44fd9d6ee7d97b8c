#include "models/resnet.h"

#include "engine/checkpoint.h"

#include "nn/init.h"
#include "ops/elementwise.h"
#include "ops/loss.h"
#include "ops/pool.h"
#include "ops/shape.h"

namespace spool::models {

namespace {
// torchvision's initialisation: convolutions kaiming_normal (fan_out, ReLU), BN weight 1 bias 0.
std::shared_ptr<nn::Conv2d> make_conv(int64_t in, int64_t out, int64_t k, int64_t stride,
                                      int64_t pad, Generator* gen) {
  auto c = std::make_shared<nn::Conv2d>(
      nn::ConvSpec{in, out, {k}, {stride}, {pad}, {1}, 1, /*bias=*/false}, gen);
  nn::init::kaiming_normal_(c->weight, nn::init::FanMode::fan_out, gen);
  return c;
}
}  // namespace

BasicBlock::BasicBlock(int64_t in, int64_t out, int64_t stride, Generator* gen,
                       const ResNetConfig& temporal)
    : shift_segments_(temporal.shift_segments), shift_mode_(temporal.shift_mode) {
  conv1_ = register_module("conv1", make_conv(in, out, 3, stride, 1, gen));
  bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm2d>(out));
  if (const int64_t t = temporal.tea_segments; t > 0) {
    me_ = register_module(
        "me", std::make_shared<MotionExcitation>(out, t, gen, temporal.motion_reduction));
    mta_ = register_module("mta", std::make_shared<TemporalAggregation>(out, t, 1, false, gen));
  } else {
    if (const int64_t t = temporal.stm_segments; t > 0)
      tconv_ = register_module("tconv", std::make_shared<TemporalConv>(out, t, true));
    conv2_ = register_module("conv2", make_conv(out, out, 3, 1, 1, gen));
    if (const int64_t t = temporal.stm_segments; t > 0)
      cmm_ = register_module(
          "cmm", std::make_shared<ChannelMotion>(out, t, 1, gen, temporal.motion_reduction));
  }
  if (const int64_t t = temporal.tdn_segments; t > 0)
    ltdm_ = register_module(
        "ltdm", std::make_shared<LongTermDifference>(out, t, gen, temporal.motion_reduction));
  bn2_ = register_module("bn2", std::make_shared<nn::BatchNorm2d>(out));
  if (stride != 1 || in != out) {
    downsample_ = register_module("downsample", std::make_shared<nn::Sequential>());
    downsample_->push_back(make_conv(in, out, 1, stride, 0, gen));
    downsample_->push_back(std::make_shared<nn::BatchNorm2d>(out));
  }
}

Tensor BasicBlock::branch(const Tensor& x) {
  const Tensor in = shift_segments_ > 0 ? temporal_shift(x, shift_segments_, 8, shift_mode_) : x;
  const Tensor h = bn1_->forward_relu(conv1_->forward(in));
  return ltdm_ ? ltdm_->forward(h) : h;
}

Tensor BasicBlock::merge(const Tensor& x, const Tensor& h) {
  // relu(bn2(conv2(h)) + shortcut) as one op: the sum and relu overwrite bn2's output.
  Tensor shortcut = downsample_ ? downsample_->forward(x) : x;
  if (mta_) return bn2_->forward_relu(mta_->forward(me_->forward(h)), shortcut);
  if (cmm_)
    return bn2_->forward_relu(conv2_->forward(tconv_->forward(h)) + cmm_->forward(h), shortcut);
  return bn2_->forward_relu(conv2_->forward(h), shortcut);
}

Tensor BasicBlock::forward(const Tensor& x) { return merge(x, branch(x)); }

Bottleneck::Bottleneck(int64_t in, int64_t planes, int64_t stride, Generator* gen,
                       const ResNetConfig& temporal, bool first)
    : shift_segments_(temporal.shift_segments), shift_mode_(temporal.shift_mode) {
  const int64_t out = planes * 4;
  conv1_ = register_module("conv1", make_conv(in, planes, 1, 1, 0, gen));
  bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm2d>(planes));
  if (const int64_t t = temporal.tea_segments; t > 0) {
    me_ = register_module(
        "me", std::make_shared<MotionExcitation>(planes, t, gen, temporal.motion_reduction));
    mta_ = register_module("mta",
                           std::make_shared<TemporalAggregation>(planes, t, stride, first, gen));
  } else {
    if (const int64_t t = temporal.stm_segments; t > 0)
      tconv_ = register_module("tconv", std::make_shared<TemporalConv>(planes, t, true));
    conv2_ = register_module("conv2", make_conv(planes, planes, 3, stride, 1, gen));
    if (const int64_t t = temporal.stm_segments; t > 0)
      cmm_ = register_module("cmm", std::make_shared<ChannelMotion>(planes, t, stride, gen,
                                                                    temporal.motion_reduction));
    bn2_ = register_module("bn2", std::make_shared<nn::BatchNorm2d>(planes));
  }
  if (const int64_t t = temporal.tdn_segments; t > 0)
    ltdm_ = register_module(
        "ltdm", std::make_shared<LongTermDifference>(planes, t, gen, temporal.motion_reduction));
  conv3_ = register_module("conv3", make_conv(planes, out, 1, 1, 0, gen));
  bn3_ = register_module("bn3", std::make_shared<nn::BatchNorm2d>(out));
  if (stride != 1 || in != out) {
    downsample_ = register_module("downsample", std::make_shared<nn::Sequential>());
    downsample_->push_back(make_conv(in, out, 1, stride, 0, gen));
    downsample_->push_back(std::make_shared<nn::BatchNorm2d>(out));
  }
}

Tensor Bottleneck::forward(const Tensor& x) {
  const Tensor branch =
      shift_segments_ > 0 ? temporal_shift(x, shift_segments_, 8, shift_mode_) : x;
  Tensor h = bn1_->forward_relu(conv1_->forward(branch));
  if (ltdm_) h = ltdm_->forward(h);
  if (mta_)
    h = mta_->forward(me_->forward(h));
  else if (cmm_)
    h = bn2_->forward_relu(conv2_->forward(tconv_->forward(h)) + cmm_->forward(h));
  else
    h = bn2_->forward_relu(conv2_->forward(h));
  Tensor shortcut = downsample_ ? downsample_->forward(x) : x;
  return bn3_->forward_relu(conv3_->forward(h), shortcut);
}

std::vector<int64_t> resnet_stage_blocks(int64_t depth) {
  switch (depth) {
    case 18:
      return {2, 2, 2, 2};
    case 34:
    case 50:
      return {3, 4, 6, 3};
    case 101:
      return {3, 4, 23, 3};
    default:
      throw Error("ResNet: depth " + std::to_string(depth) + " is not 18, 34, 50 or 101");
  }
}

int64_t resnet_expansion(int64_t depth) { return depth >= 50 ? 4 : 1; }

ResNet::ResNet(const ResNetConfig& c, Generator* gen) : config_(c) {
  SPOOL_CHECK(c.width > 0 && c.num_classes >= 0 && c.in_channels > 0 && c.shift_segments >= 0 &&
                  c.tea_segments >= 0 && c.stm_segments >= 0 && c.tdn_segments >= 0 &&
                  c.motion_reduction > 0,
              "ResNet: width and input channels must be positive, classes, shift, TEA, STM and "
              "TDN segments not negative, the motion reduction positive");
  const std::vector<int64_t> blocks = resnet_stage_blocks(c.depth);
  const bool bottleneck = resnet_expansion(c.depth) == 4;
  conv1_ = register_module("conv1", make_conv(c.in_channels, c.width, 7, 2, 3, gen));
  bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm2d>(c.width));
  int64_t in = c.width;
  for (int s = 0; s < 4; ++s) {
    const int64_t planes = c.width << s;
    layers_[s] =
        register_module("layer" + std::to_string(s + 1), std::make_shared<nn::Sequential>());
    ResNetConfig bc = c;
    if (s == 0) bc.tdn_segments = 0;  // TDN's L-TDM from stage 2 on
    for (int64_t b = 0; b < blocks[size_t(s)]; ++b) {
      const int64_t stride = s > 0 && b == 0 ? 2 : 1;
      if (bottleneck) {
        layers_[s]->push_back(std::make_shared<Bottleneck>(in, planes, stride, gen, bc, b == 0));
        in = planes * 4;
      } else {
        layers_[s]->push_back(std::make_shared<BasicBlock>(in, planes, stride, gen, bc));
        in = planes;
      }
    }
  }
  if (c.num_classes > 0)
    fc_ = register_module("fc", std::make_shared<nn::Linear>(in, c.num_classes, true, gen));
}

Tensor ResNet::stem(const Tensor& x) {
  SPOOL_CHECK(x.dim() == 4 && x.size(1) == config_.in_channels, "ResNet: input is ", str(x.shape()),
              "; expected [N, ", config_.in_channels, ", H, W]");
  Tensor h = bn1_->forward_relu(conv1_->forward(x));
  return max_pool(h, {.kernel = {3}, .stride = {2}, .padding = {1}});
}

Tensor ResNet::stem_channels(const Tensor& x, int64_t first, int64_t count) {
  SPOOL_CHECK(x.dim() == 4 && x.size(1) == config_.in_channels, "ResNet: input is ", str(x.shape()),
              "; expected [N, ", config_.in_channels, ", H, W]");
  Tensor h = bn1_->forward_channels(conv1_->forward_channels(x, first, count), first, count, true);
  return max_pool(h, {.kernel = {3}, .stride = {2}, .padding = {1}});
}

int64_t ResNet::feature_dim() const { return 8 * config_.width * resnet_expansion(config_.depth); }

Tensor ResNet::pooled(const Tensor& h) { return flatten(adaptive_avg_pool_global(h), 1); }

Tensor ResNet::features(const Tensor& x) {
  Tensor h = stem(x);
  for (auto& layer : layers_) h = layer->forward(h);
  return pooled(h);
}

Tensor ResNet::forward(const Tensor& x) { return fc_ ? fc_->forward(features(x)) : features(x); }

std::vector<Stage> ResNet::block_stages(bool split_blocks, int first_node) {
  std::vector<Stage> out;
  int node = first_node;  // the boundary the next block reads
  for (int s = 0; s < 4; ++s)
    for (size_t b = 0; b < layers_[s]->size(); ++b) {
      auto block = (*layers_[s])[b];
      const std::string name = "layer" + std::to_string(s + 1) + "." + std::to_string(b);
      auto basic = std::dynamic_pointer_cast<BasicBlock>(block);
      if (split_blocks && basic) {
        // The branch (stage `node`) reads the block input x_node and makes x_{node+1}; the
        // merge reads both and makes x_{node+2}.
        out.push_back({name + ".branch", std::vector<int>{node},
                       [basic](const Tensors& in) { return basic->branch(in[0]); }});
        out.push_back({name, std::vector<int>{node, node + 1},
                       [basic](const Tensors& in) { return basic->merge(in[0], in[1]); }});
        node += 2;
      } else {
        out.push_back({name, [block](const Tensor& h) { return block->forward(h); }});
        node += 1;
      }
    }
  return out;
}

Stage ResNet::stem_stage(int64_t groups, std::function<Tensor(const Tensor&)> images) {
  const int64_t width = config_.width;
  SPOOL_CHECK(groups >= 1 && width % groups == 0, "ResNet: stem_groups ", groups,
              " must be positive and divide the stem's ", width, " channels");
  if (!images) images = [](const Tensor& x) { return x; };
  if (groups == 1) return {"stem", [this, images](const Tensor& in) { return stem(images(in)); }};
  // The stem whole, without graph (at its own speed), and replayed in the backward one channel
  // group at a time: the stage keeps only its output, and its backward holds one group's
  // intermediates (the gradients the plain stem's to BLAS's rounding of conv1's weight
  // gradient: see chain() in the header).
  const int64_t count = width / groups;
  std::vector<std::function<Tensor(const Tensor&)>> parts;
  for (int64_t g = 0; g < groups; ++g)
    parts.push_back([this, g, count, images](const Tensor& in) {
      return stem_channels(images(in), g * count, count);
    });
  const Tensors bn_state = {bn1_->running_mean, bn1_->running_var, bn1_->num_batches_tracked};
  return {"stem", [this, parts, bn_state, images](const Tensor& in) {
            return checkpoint_in_parts([this, images](const Tensor& x) { return stem(images(x)); },
                                       parts, 1, in, bn_state);
          }};
}

Chain ResNet::chain(const Tensor& x, const Tensor& labels, bool split_blocks, int64_t stem_groups) {
  SPOOL_CHECK(fc_, "ResNet::chain: a backbone without fc has no loss of its own");
  Chain c;
  c.input = x;
  for (const auto& [name, t] : named_buffers()) c.state.push_back(t);
  c.stages.push_back(stem_stage(stem_groups));
  for (auto& st : block_stages(split_blocks, int(c.stages.size()))) c.stages.push_back(st);
  c.stages.push_back({"head", [this, labels](const Tensor& h) {
                        return cross_entropy(fc_->forward(pooled(h)), labels);
                      }});
  return c;
}

}  // namespace spool::models
