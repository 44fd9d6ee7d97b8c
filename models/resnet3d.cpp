#include "models/resnet3d.h"

#include <cmath>
#include <map>

#include "engine/autograd.h"
#include "models/resnet.h"
#include "nn/init.h"
#include "ops/ops.h"

namespace spool::models {

namespace {

std::shared_ptr<nn::Conv3d> conv3d(int64_t in, int64_t out, std::vector<int64_t> k,
                                   std::vector<int64_t> stride, std::vector<int64_t> pad,
                                   Generator* gen, bool bias = false) {
  auto c = std::make_shared<nn::Conv3d>(nn::ConvSpec{in, out, k, stride, pad, {1}, 1, bias}, gen);
  nn::init::kaiming_normal_(c->weight, nn::init::FanMode::fan_out, gen);
  return c;
}

}  // namespace

BasicBlock3d::BasicBlock3d(int64_t in, int64_t out, int64_t stride, int64_t first_kt,
                           Generator* gen, int64_t second_kt) {
  conv1_ = register_module(
      "conv1", conv3d(in, out, {first_kt, 3, 3}, {1, stride, stride}, {first_kt / 2, 1, 1}, gen));
  bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm3d>(out));
  conv2_ = register_module(
      "conv2", conv3d(out, out, {second_kt, 3, 3}, {1, 1, 1}, {second_kt / 2, 1, 1}, gen));
  bn2_ = register_module("bn2", std::make_shared<nn::BatchNorm3d>(out));
  if (stride != 1 || in != out) {
    downsample_ = register_module("downsample", std::make_shared<nn::Sequential>());
    downsample_->push_back(conv3d(in, out, {1, 1, 1}, {1, stride, stride}, {0, 0, 0}, gen));
    downsample_->push_back(std::make_shared<nn::BatchNorm3d>(out));
  }
}

Tensor BasicBlock3d::forward(const Tensor& x) {
  Tensor h = bn1_->forward_relu(conv1_->forward(x));
  const Tensor shortcut = downsample_ ? downsample_->forward(x) : x;
  return bn2_->forward_relu(conv2_->forward(h), shortcut);  // relu(bn2(conv2(h)) + shortcut)
}

Bottleneck3d::Bottleneck3d(int64_t in, int64_t planes, int64_t stride, bool inflate,
                           Generator* gen) {
  const int64_t out = planes * 4, kt = inflate ? 3 : 1;
  conv1_ = register_module("conv1", conv3d(in, planes, {kt, 1, 1}, {1}, {kt / 2, 0, 0}, gen));
  bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm3d>(planes));
  conv2_ = register_module("conv2",
                           conv3d(planes, planes, {1, 3, 3}, {1, stride, stride}, {0, 1, 1}, gen));
  bn2_ = register_module("bn2", std::make_shared<nn::BatchNorm3d>(planes));
  conv3_ = register_module("conv3", conv3d(planes, out, {1}, {1}, {0}, gen));
  bn3_ = register_module("bn3", std::make_shared<nn::BatchNorm3d>(out));
  if (stride != 1 || in != out) {
    downsample_ = register_module("downsample", std::make_shared<nn::Sequential>());
    downsample_->push_back(conv3d(in, out, {1, 1, 1}, {1, stride, stride}, {0, 0, 0}, gen));
    downsample_->push_back(std::make_shared<nn::BatchNorm3d>(out));
  }
}

Tensor Bottleneck3d::forward(const Tensor& x) {
  Tensor h = bn1_->forward_relu(conv1_->forward(x));
  h = bn2_->forward_relu(conv2_->forward(h));
  const Tensor shortcut = downsample_ ? downsample_->forward(x) : x;
  return bn3_->forward_relu(conv3_->forward(h), shortcut);
}

NonLocal3d::NonLocal3d(int64_t channels, Generator* gen) {
  const int64_t inner = std::max<int64_t>(1, channels / 2);
  theta_ = register_module("theta", conv3d(channels, inner, {1}, {1}, {0}, gen, true));
  phi_ = register_module("phi", conv3d(channels, inner, {1}, {1}, {0}, gen, true));
  g_ = register_module("g", conv3d(channels, inner, {1}, {1}, {0}, gen, true));
  conv_out_ = register_module("conv_out", conv3d(inner, channels, {1}, {1}, {0}, gen, true));
  bn_ = register_module("bn", std::make_shared<nn::BatchNorm3d>(channels));
  NoGrad no_grad;
  fill_(bn_->weight, 0.0);  // the block starts as the identity
}

Tensor NonLocal3d::forward(const Tensor& x) {
  SPOOL_CHECK(x.dim() == 5, "NonLocal3d: input ", describe(x), " must be [N, C, T, H, W]");
  const int64_t n = x.size(0), l = x.size(2) * x.size(3) * x.size(4);
  auto tokens = [&](const Tensor& y) {  // [N, C', T, H, W] -> [N, 1, THW, C']
    return unsqueeze(transpose(reshape(y, {n, y.size(1), l}), 1, 2), 1);
  };
  const Tensor q = tokens(theta_->forward(x)), k = tokens(phi_->forward(x)),
               v = tokens(g_->forward(x));
  AttentionOptions every_position;
  every_position.causal = false;
  const Tensor y = flash_attention(q, k, v, every_position);  // [N, 1, THW, C']
  Tensor back =
      reshape(transpose(squeeze(y, 1), 1, 2), {n, q.size(3), x.size(2), x.size(3), x.size(4)});
  return x + bn_->forward(conv_out_->forward(back));
}

ResNet3d::ResNet3d(const ResNet3dConfig& c, Generator* gen) : config_(c) {
  SPOOL_CHECK(c.width > 0 && c.num_classes >= 0 && c.in_channels > 0,
              "ResNet3d: width and input channels must be positive, classes not negative");
  SPOOL_CHECK(c.depth == 18 || c.depth == 50, "ResNet3d: depth ", c.depth, " is not 18 or 50");
  conv1_ = register_module("conv1",
                           conv3d(c.in_channels, c.width, {5, 7, 7}, {1, 2, 2}, {2, 3, 3}, gen));
  bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm3d>(c.width));
  int64_t in = c.width;
  // Inflated bottlenecks of the I3D ResNet-50, stage by stage.
  static const std::vector<std::vector<int>> kInflate50 = {
      {1, 1, 1}, {1, 0, 1, 0}, {1, 0, 1, 0, 1, 0}, {0, 1, 0}};
  const int64_t expansion = resnet_expansion(c.depth);
  for (int s = 0; s < 4; ++s) {
    const int64_t planes = c.width << s, stride = s == 0 ? 1 : 2;
    layers_[s] =
        register_module("layer" + std::to_string(s + 1), std::make_shared<nn::Sequential>());
    if (c.depth == 18) {
      layers_[s]->push_back(std::make_shared<BasicBlock3d>(in, planes, stride, 3, gen));
      layers_[s]->push_back(std::make_shared<BasicBlock3d>(planes, planes, 1, 1, gen));
    } else {
      for (size_t b = 0; b < kInflate50[size_t(s)].size(); ++b)
        layers_[s]->push_back(std::make_shared<Bottleneck3d>(b == 0 ? in : planes * expansion,
                                                             planes, b == 0 ? stride : 1,
                                                             kInflate50[size_t(s)][b] == 1, gen));
    }
    in = planes * expansion;
  }
  for (int s : c.non_local_stages) {
    SPOOL_CHECK(s >= 1 && s <= 4, "ResNet3d: non-local stage ", s, " is not 1-4");
    non_local_[s - 1] =
        register_module("non_local" + std::to_string(s),
                        std::make_shared<NonLocal3d>((c.width << (s - 1)) * expansion, gen));
  }
  if (c.num_classes > 0)
    fc_ = register_module("fc", std::make_shared<nn::Linear>(in, c.num_classes, true, gen));
}

Tensor ResNet3d::stem(const Tensor& x) {
  SPOOL_CHECK(x.dim() == 5 && x.size(1) == config_.in_channels, "ResNet3d: input is ", describe(x),
              "; expected [N, ", config_.in_channels, ", T, H, W]");
  Tensor h = bn1_->forward_relu(conv1_->forward(x));
  return max_pool(h, {.kernel = {1, 3, 3}, .stride = {1, 2, 2}, .padding = {0, 1, 1}});
}

std::vector<Stage> ResNet3d::block_stages() {
  std::vector<Stage> out;
  for (int s = 0; s < 4; ++s) {
    for (size_t b = 0; b < layers_[s]->size(); ++b) {
      auto block = (*layers_[s])[b];
      out.push_back({"layer" + std::to_string(s + 1) + "." + std::to_string(b),
                     [block](const Tensor& h) { return block->forward(h); }});
    }
    if (auto nl = non_local_[s])
      out.push_back(
          {"non_local" + std::to_string(s + 1), [nl](const Tensor& h) { return nl->forward(h); }});
  }
  return out;
}

int64_t ResNet3d::feature_dim() const {
  return 8 * config_.width * resnet_expansion(config_.depth);
}

Tensor ResNet3d::pooled(const Tensor& h) { return flatten(adaptive_avg_pool_global(h), 1); }

Tensor ResNet3d::features(const Tensor& x) {
  Tensor h = stem(x);
  for (auto& st : block_stages()) h = st.fn(h);
  return pooled(h);
}

Tensor ResNet3d::forward(const Tensor& x) { return fc_ ? fc_->forward(features(x)) : features(x); }

nn::NamedTensors inflate_2d(const nn::NamedTensors& state2d, const nn::Module& target,
                            const std::string& prefix) {
  std::map<std::string, Tensor> by_name;
  for (const auto& [n, t] : state2d) by_name[prefix + n] = t;
  nn::NamedTensors out;
  NoGrad no_grad;
  for (const auto& [name, t3] : target.state_dict()) {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      out.emplace_back(name, t3);
      continue;
    }
    const Tensor& t2 = it->second;
    if (t3.dim() == 5 && t2.dim() == 4) {
      SPOOL_CHECK(t2.size(0) == t3.size(0) && t2.size(1) == t3.size(1) &&
                      t2.size(2) == t3.size(3) && t2.size(3) == t3.size(4),
                  "inflate_2d: ", name, " is ", describe(t2), " in 2-D and ", describe(t3),
                  " in 3-D; they do not correspond");
      const int64_t kt = t3.size(2);
      Tensor w = expand(unsqueeze(to(t2, t3.dtype()), 2), t3.shape());
      out.emplace_back(name, contiguous(w) * (1.0 / double(kt)));
    } else {
      SPOOL_CHECK(t2.shape() == t3.shape(), "inflate_2d: ", name, " is ", describe(t2),
                  " in 2-D and ", describe(t3), " in 3-D");
      out.emplace_back(name, t2);
    }
  }
  return out;
}

}  // namespace spool::models
