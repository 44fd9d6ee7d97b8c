#include "models/video.h"

#include <algorithm>
#include <map>

#include "engine/autograd.h"
#include "engine/factory.h"
#include "nn/init.h"
#include "ops/ops.h"

namespace spool::models {

VideoConfig tsn_r18() { return {}; }
VideoConfig tsm_r18() {
  VideoConfig c;
  c.shift = true;
  return c;
}
VideoConfig trn_r18() {
  VideoConfig c;
  c.relations = true;
  return c;
}
VideoConfig tea_r18() {
  VideoConfig c;
  c.tea = true;
  return c;
}
VideoConfig stm_r18() {
  VideoConfig c;
  c.stm = true;
  return c;
}
VideoConfig eco_r18() {
  VideoConfig c;
  c.eco = true;
  return c;
}
VideoConfig tdn_r18() {
  VideoConfig c;
  c.tdn = true;
  return c;
}
VideoConfig gcn_r18() {
  VideoConfig c = i3d_r18();
  c.gcn = true;
  c.non_local_stages = {3};
  return c;
}
VideoConfig i3d_r18() {
  VideoConfig c;
  c.segments = 1;
  c.three_d = true;
  return c;
}

const char* const kVideoModelNames =
    "tsn-r18, tsm-r18, trn-r18, tea-r18, stm-r18, eco-r18, tdn-r18, i3d-r18, gcn-r18, tsn-r50, "
    "tsm-r50, trn-r50, tea-r50, stm-r50, eco-r50, tdn-r50, i3d-r50, gcn-r50";

bool is_video_model_name(const std::string& name) {
  if (name.size() != 7 || name[3] != '-') return false;
  const std::string kind = name.substr(0, 3), depth = name.substr(4);
  return (kind == "tsn" || kind == "tsm" || kind == "trn" || kind == "tea" || kind == "stm" ||
          kind == "eco" || kind == "tdn" || kind == "gcn" || kind == "i3d") &&
         (depth == "r18" || depth == "r50");
}

VideoConfig video_config(const std::string& name) {
  if (!is_video_model_name(name))
    throw Error("unknown video model '" + name + "' (known: " + kVideoModelNames + ")");
  const std::string kind = name.substr(0, 3);
  VideoConfig c = kind == "tsm"   ? tsm_r18()
                  : kind == "trn" ? trn_r18()
                  : kind == "tea" ? tea_r18()
                  : kind == "stm" ? stm_r18()
                  : kind == "eco" ? eco_r18()
                  : kind == "tdn" ? tdn_r18()
                  : kind == "gcn" ? gcn_r18()
                  : kind == "i3d" ? i3d_r18()
                                  : tsn_r18();
  c.depth = name.substr(4) == "r50" ? 50 : 18;
  return c;
}

Shape video_input_shape(const std::string& name, int64_t clips, int64_t segments, int64_t size) {
  const VideoConfig c = video_config(name);
  if (c.three_d) return {clips, 3, segments, size, size};
  return {clips, segments, c.tdn ? 3 * c.tdn_frames : 3, size, size};
}

namespace {

// Every ordered subset of `size` of 0..n-1, in itertools.combinations order.
std::vector<std::vector<int64_t>> combinations(int64_t n, int64_t size) {
  std::vector<std::vector<int64_t>> out;
  std::vector<int64_t> pick(static_cast<size_t>(size));
  for (int64_t i = 0; i < size; ++i) pick[size_t(i)] = i;
  while (true) {
    out.push_back(pick);
    int64_t i = size - 1;
    while (i >= 0 && pick[size_t(i)] == n - size + i) --i;
    if (i < 0) break;
    ++pick[size_t(i)];
    for (int64_t j = i + 1; j < size; ++j) pick[size_t(j)] = pick[size_t(j - 1)] + 1;
  }
  return out;
}

}  // namespace

RelationModule::RelationModule(const VideoConfig& c, Generator* gen) : gen_(gen) {
  SPOOL_CHECK(c.segments >= 2 && c.segments <= 16,
              "TRN: relations take 2 to 16 segments (every ordered subset is listed), not ",
              c.segments);
  fc_fusion_scales_ = register_module("fc_fusion_scales", std::make_shared<nn::ModuleList>());
  for (int64_t s = c.segments; s >= 2; --s) {
    subsets_.push_back(combinations(c.segments, s));
    keep_.push_back(s == c.segments
                        ? 1
                        : std::min<int64_t>(c.relation_subsample, int64_t(subsets_.back().size())));
    auto mlp = std::make_shared<nn::Sequential>();
    mlp->push_back(std::make_shared<nn::ReLU>());
    mlp->push_back(
        std::make_shared<nn::Linear>(s * c.relation_dim, c.relation_bottleneck, true, gen));
    mlp->push_back(std::make_shared<nn::ReLU>());
    mlp->push_back(std::make_shared<nn::Linear>(c.relation_bottleneck, c.num_classes, true, gen));
    mlps_.push_back(fc_fusion_scales_->push_back(mlp));
  }
}

Tensor RelationModule::forward(const Tensor& x) {
  SPOOL_CHECK(x.dim() == 3 && x.size(1) == int64_t(subsets_[0][0].size()), "TRN relations: input ",
              describe(x), " must be [N, ", subsets_[0][0].size(), ", D]");
  const int64_t n = x.size(0);
  Tensor total;
  for (size_t s = 0; s < subsets_.size(); ++s) {
    const auto& all = subsets_[s];
    const int64_t count = int64_t(all.size()), keep = keep_[s];
    std::vector<int64_t> chosen(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) chosen[size_t(i)] = i;
    if (keep < count) {
      if (is_training()) {  // keep distinct subsets drawn at random (partial Fisher-Yates)
        const RngState r = (gen_ ? gen_ : &default_generator())->take(uint64_t(keep));
        for (int64_t i = 0; i < keep; ++i) {
          const int64_t j = i + int64_t(uniform_at(r, i) * double(count - i));
          std::swap(chosen[size_t(i)], chosen[size_t(std::min(j, count - 1))]);
        }
      } else {  // evenly spread, the same every time
        for (int64_t i = 0; i < keep; ++i) chosen[size_t(i)] = i * count / keep;
      }
      chosen.resize(size_t(keep));
    }
    for (int64_t idx : chosen) {
      const Tensor frames = from_vector(all[size_t(idx)]);
      Tensor rel = reshape(index_select(x, 1, spool::to(frames, x.device())), {n, -1});
      Tensor y = mlps_[s]->forward(rel);
      total = total.defined() ? total + y : y;
    }
  }
  return total;
}

VideoHead::VideoHead(int64_t in, const VideoConfig& c, Generator* gen) {
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(c.dropout, gen));
  const int64_t out = c.relations ? c.relation_dim : c.num_classes;
  fc_cls = register_module("fc_cls", std::make_shared<nn::Linear>(in, out, true, gen));
  // The video toolboxes initialise the classifier with N(0, 0.01) and zero bias.
  nn::init::normal_(fc_cls->weight, 0, 0.01, gen);
  {
    NoGrad no_grad;
    fill_(fc_cls->bias, 0.0);
  }
  if (c.relations)
    consensus = register_module("consensus", std::make_shared<RelationModule>(c, gen));
}

Tensor VideoHead::forward(const Tensor& features, int64_t segments) {
  SPOOL_CHECK(features.dim() == 2 && features.size(0) % segments == 0, "cls_head: features ",
              describe(features), " are not [N * ", segments, ", C]");
  Tensor y = fc_cls->forward(dropout->forward(features));
  y = reshape(y, {features.size(0) / segments, segments, y.size(1)});
  return consensus ? consensus->forward(y) : mean(y, {1});  // average consensus
}

namespace {
// The 2-D backbone of a video configuration: the ResNet without fc, its temporal modules (TSM's
// shift, TEA, STM, TDN's long-term module) over the clip's segments. `in_channels` is what each
// image has (TDN's backbone reads the snippet's centre frame: 3).
ResNetConfig backbone2d_config(const VideoConfig& c, int64_t in_channels) {
  ResNetConfig r;
  r.num_classes = 0;
  r.width = c.width;
  r.depth = c.depth;
  r.in_channels = in_channels;
  if (c.shift) {
    r.shift_segments = c.segments;
    r.shift_mode = c.shift_online ? ShiftMode::online : ShiftMode::bidirectional;
  }
  if (c.tea) r.tea_segments = c.segments;
  if (c.stm) r.stm_segments = c.segments;
  if (c.tdn) r.tdn_segments = c.segments;
  r.motion_reduction = c.motion_reduction;
  return r;
}

// The 3-D backbone of I3D and NL I3D + GCN.
ResNet3dConfig backbone3d_config(const VideoConfig& c) {
  ResNet3dConfig r;
  r.width = c.width;
  r.depth = c.depth;
  r.in_channels = c.in_channels;
  r.non_local_stages = c.non_local_stages;
  return r;
}
}  // namespace

SegmentNet::SegmentNet(const VideoConfig& c, Generator* gen) : c_(c), gen_(gen) {
  SPOOL_CHECK(c.segments > 0 && c.num_classes > 0,
              "SegmentNet: segments and classes must be "
              "positive");
  SPOOL_CHECK(!c.three_d, "SegmentNet: a 3-D configuration belongs to I3d");
  backbone_ = register_module("backbone",
                              std::make_shared<ResNet>(backbone2d_config(c, c.in_channels), gen));
  cls_head_ =
      register_module("cls_head", std::make_shared<VideoHead>(backbone_->feature_dim(), c, gen));
}

Tensor SegmentNet::frames_as_images(const Tensor& frames) const {
  SPOOL_CHECK(
      frames.dim() == 5 && frames.size(1) == c_.segments && frames.size(2) == c_.in_channels,
      "SegmentNet: frames ", describe(frames), "; expected [N, ", c_.segments, ", ", c_.in_channels,
      ", H, W]");
  return reshape(frames,
                 {frames.size(0) * c_.segments, c_.in_channels, frames.size(3), frames.size(4)});
}

Tensor SegmentNet::forward(const Tensor& frames) {
  return cls_head_->forward(backbone_->forward(frames_as_images(frames)), c_.segments);
}

Chain SegmentNet::chain(const Tensor& frames, const Tensor& labels, bool split_blocks,
                        int64_t stem_groups) {
  Chain c;
  c.input = frames;
  c.generators = {gen_};
  for (const auto& [name, t] : named_buffers()) c.state.push_back(t);
  c.stages.push_back(
      backbone_->stem_stage(stem_groups, [this](const Tensor& x) { return frames_as_images(x); }));
  for (auto& st : backbone_->block_stages(split_blocks, 1)) c.stages.push_back(st);
  c.stages.push_back({"head", [this, labels](const Tensor& h) {
                        return cross_entropy(cls_head_->forward(backbone_->pooled(h), c_.segments),
                                             labels);
                      }});
  return c;
}

I3d::I3d(const VideoConfig& c, Generator* gen) : c_(c), gen_(gen) {
  SPOOL_CHECK(c.num_classes > 0, "I3D: classes must be positive");
  backbone_ = register_module("backbone", std::make_shared<ResNet3d>(backbone3d_config(c), gen));
  VideoConfig head = c;
  head.relations = false;
  cls_head_ =
      register_module("cls_head", std::make_shared<VideoHead>(backbone_->feature_dim(), head, gen));
}

Tensor I3d::forward(const Tensor& clips) {
  return cls_head_->forward(backbone_->forward(clips), 1);
}

namespace {
// A 3-D backbone's step as a chain: its stem, its blocks (and non-local blocks), and `loss` from
// the last map.
Chain backbone3d_chain(const nn::Module& model, ResNet3d& backbone, Generator* gen,
                       const Tensor& clips, std::function<Tensor(const Tensor&)> loss) {
  Chain c;
  c.input = clips;
  c.generators = {gen};
  for (const auto& [name, t] : model.named_buffers()) c.state.push_back(t);
  c.stages.push_back({"stem", [&backbone](const Tensor& x) { return backbone.stem(x); }});
  for (auto& st : backbone.block_stages()) c.stages.push_back(st);
  c.stages.push_back({"head", std::move(loss)});
  return c;
}
}  // namespace

Chain I3d::chain(const Tensor& clips, const Tensor& labels) {
  return backbone3d_chain(*this, *backbone_, gen_, clips, [this, labels](const Tensor& h) {
    return cross_entropy(cls_head_->forward(backbone_->pooled(h), 1), labels);
  });
}

namespace {
// ECO's backbone holds the stem and stages for their names; EcoNet runs them (the stacking
// between stages 2 and 3 is EcoNet's).
class EcoBackbone : public nn::Module {
 public:
  std::string type_name() const override { return "EcoBackbone"; }
  using nn::Module::register_module;
};
}  // namespace

EcoNet::EcoNet(const VideoConfig& c, Generator* gen) : c_(c), gen_(gen) {
  SPOOL_CHECK(c.segments > 0 && c.num_classes > 0 && c.width > 0 && c.in_channels > 0,
              "ECO: segments, classes, width and input channels must be positive");
  const std::vector<int64_t> blocks = resnet_stage_blocks(c.depth);
  const bool bottleneck = resnet_expansion(c.depth) == 4;
  auto backbone = register_module("backbone", std::make_shared<EcoBackbone>());
  backbone_ = backbone;
  conv1_ = backbone->register_module(
      "conv1", std::make_shared<nn::Conv2d>(
                   nn::ConvSpec{c.in_channels, c.width, {7}, {2}, {3}, {1}, 1, false}, gen));
  nn::init::kaiming_normal_(conv1_->weight, nn::init::FanMode::fan_out, gen);
  bn1_ = backbone->register_module("bn1", std::make_shared<nn::BatchNorm2d>(c.width));
  int64_t in = c.width;
  for (int s = 0; s < 4; ++s) {
    const int64_t planes = c.width << s;
    layers_[s] = backbone->register_module("layer" + std::to_string(s + 1),
                                           std::make_shared<nn::Sequential>());
    for (int64_t b = 0; b < blocks[size_t(s)]; ++b) {
      const int64_t stride = s > 0 && b == 0 ? 2 : 1;
      if (s < 2 && bottleneck)
        layers_[s]->push_back(std::make_shared<Bottleneck>(in, planes, stride, gen));
      else if (s < 2)
        layers_[s]->push_back(std::make_shared<BasicBlock>(in, planes, stride, gen));
      else if (bottleneck)
        layers_[s]->push_back(std::make_shared<Bottleneck3d>(in, planes, stride, true, gen));
      else
        layers_[s]->push_back(std::make_shared<BasicBlock3d>(in, planes, stride, 3, gen, 3));
      in = bottleneck ? planes * 4 : planes;
    }
  }
  VideoConfig head = c;
  head.relations = false;
  cls_head_ = register_module("cls_head", std::make_shared<VideoHead>(in, head, gen));
}

Tensor EcoNet::stem(const Tensor& frames) {
  SPOOL_CHECK(
      frames.dim() == 5 && frames.size(1) == c_.segments && frames.size(2) == c_.in_channels,
      "ECO: frames ", describe(frames), "; expected [N, ", c_.segments, ", ", c_.in_channels,
      ", H, W]");
  const Tensor x = reshape(
      frames, {frames.size(0) * c_.segments, c_.in_channels, frames.size(3), frames.size(4)});
  return max_pool(bn1_->forward_relu(conv1_->forward(x)),
                  {.kernel = {3}, .stride = {2}, .padding = {1}});
}

Tensor EcoNet::stack(const Tensor& h) const {
  const int64_t k = c_.segments;
  return contiguous(
      permute(reshape(h, {h.size(0) / k, k, h.size(1), h.size(2), h.size(3)}), {0, 2, 1, 3, 4}));
}

std::vector<Stage> EcoNet::stages() {
  std::vector<Stage> out;
  for (int s = 0; s < 4; ++s) {
    if (s == 2) out.push_back({"stack", [this](const Tensor& h) { return stack(h); }});
    for (size_t b = 0; b < layers_[s]->size(); ++b) {
      auto block = (*layers_[s])[b];
      out.push_back({"layer" + std::to_string(s + 1) + "." + std::to_string(b),
                     [block](const Tensor& h) { return block->forward(h); }});
    }
  }
  return out;
}

Tensor EcoNet::forward(const Tensor& frames) {
  Tensor h = stem(frames);
  for (auto& st : stages()) h = st.fn(h);
  return cls_head_->forward(flatten(adaptive_avg_pool_global(h), 1), 1);
}

Chain EcoNet::chain(const Tensor& frames, const Tensor& labels) {
  Chain c;
  c.input = frames;
  c.generators = {gen_};
  for (const auto& [name, t] : named_buffers()) c.state.push_back(t);
  c.stages.push_back({"stem", [this](const Tensor& x) { return stem(x); }});
  for (auto& st : stages()) c.stages.push_back(st);
  c.stages.push_back({"head", [this, labels](const Tensor& h) {
                        return cross_entropy(
                            cls_head_->forward(flatten(adaptive_avg_pool_global(h), 1), 1), labels);
                      }});
  return c;
}

TdnNet::TdnNet(const VideoConfig& c, Generator* gen) : c_(c), gen_(gen) {
  SPOOL_CHECK(c.segments > 0 && c.num_classes > 0 && c.tdn_frames >= 2 && c.tdn_frames % 2 == 1,
              "TDN: segments and classes must be positive, the snippet an odd number of frames "
              "(at least 3; its centre is the backbone's), not ",
              c.tdn_frames);
  backbone_ = register_module("backbone", std::make_shared<ResNet>(backbone2d_config(c, 3), gen));
  stdm_ = register_module(
      "stdm", std::make_shared<ShortTermDifference>(c.tdn_frames, c.width, c.depth, gen));
  VideoConfig head = c;
  head.relations = false;
  cls_head_ =
      register_module("cls_head", std::make_shared<VideoHead>(backbone_->feature_dim(), head, gen));
}

Tensor TdnNet::images(const Tensor& snippets) const {
  const int64_t ch = 3 * c_.tdn_frames;
  SPOOL_CHECK(snippets.dim() == 5 && snippets.size(1) == c_.segments && snippets.size(2) == ch,
              "TDN: snippets ", describe(snippets), "; expected [N, ", c_.segments, ", ", ch,
              ", H, W] (", c_.tdn_frames, " RGB frames a segment)");
  return reshape(snippets,
                 {snippets.size(0) * c_.segments, ch, snippets.size(3), snippets.size(4)});
}

namespace {
// 1/2 a + 1/2 b resized to a's size: TDN's fusion of the short-term motion features.
Tensor fuse(const Tensor& a, const Tensor& b) {
  return (a + upsample_nearest(b, a.size(2), a.size(3))) * 0.5;
}
}  // namespace

Tensor TdnNet::stem(const Tensor& images, const Tensor& motion) {
  const Tensor centre = narrow(images, 1, 3 * (c_.tdn_frames / 2), 3);
  return fuse(backbone_->stem(centre), motion);
}

Tensor TdnNet::forward(const Tensor& snippets) {
  const Tensor x = images(snippets);
  const Tensor m1 = stdm_->stem(x);
  Tensor h = fuse(backbone_->layer(0).forward(stem(x, m1)), stdm_->layer1(m1));
  for (int s = 1; s < 4; ++s) h = backbone_->layer(s).forward(h);
  return cls_head_->forward(backbone_->pooled(h), c_.segments);
}

Chain TdnNet::chain(const Tensor& snippets, const Tensor& labels) {
  Chain c;
  c.input = snippets;
  c.generators = {gen_};
  for (const auto& [name, t] : named_buffers()) c.state.push_back(t);
  // x1: the S-TDM's stem; x2: its stage 1; x3: the fused stem (reads x0 and x1).
  c.stages.push_back({"stdm.stem", [this](const Tensor& in) { return stdm_->stem(images(in)); }});
  c.stages.push_back({"stdm.layer1", [this](const Tensor& m) { return stdm_->layer1(m); }});
  c.stages.push_back({"stem", std::vector<int>{0, 1},
                      [this](const Tensors& in) { return stem(images(in[0]), in[1]); }});
  for (int s = 0; s < 4; ++s) {
    nn::Sequential& layer = backbone_->layer(s);
    for (size_t b = 0; b < layer.size(); ++b) {
      auto block = layer[b];
      const std::string name = "layer" + std::to_string(s + 1) + "." + std::to_string(b);
      const int node = int(c.stages.size());  // the boundary this block reads
      if (s == 0 && b + 1 == layer.size())    // the last of stage 1 fuses the S-TDM's stage 1
        c.stages.push_back({name, std::vector<int>{2, node}, [block](const Tensors& in) {
                              return fuse(block->forward(in[1]), in[0]);
                            }});
      else
        c.stages.push_back({name, [block](const Tensor& h) { return block->forward(h); }});
    }
  }
  c.stages.push_back({"head", [this, labels](const Tensor& h) {
                        return cross_entropy(cls_head_->forward(backbone_->pooled(h), c_.segments),
                                             labels);
                      }});
  return c;
}

GcnNet::GcnNet(const VideoConfig& c, Generator* gen) : c_(c), gen_(gen) {
  SPOOL_CHECK(c.num_classes > 0 && c.graph_layers > 0,
              "NL I3D + GCN: classes and graph layers must be positive");
  backbone_ = register_module("backbone", std::make_shared<ResNet3d>(backbone3d_config(c), gen));
  graph_ = register_module(
      "graph", std::make_shared<RegionGraph>(backbone_->feature_dim(), c.graph_layers, gen));
  VideoConfig head = c;
  head.relations = false;
  cls_head_ = register_module("cls_head",
                              std::make_shared<VideoHead>(2 * backbone_->feature_dim(), head, gen));
}

Tensor GcnNet::head(const Tensor& h, const Tensor& objects, int64_t image_h, int64_t image_w) {
  Tensor graph;
  if (objects.defined()) {
    // Clip pixels to map pixels, x by the width's ratio and y by the height's.
    const double sx = double(h.size(4)) / double(image_w), sy = double(h.size(3)) / double(image_h);
    const Tensor scale = from_vector(std::vector<double>{sx, sy, sx, sy}, {4});
    graph = graph_->forward(h, spool::to(spool::to(objects, Device::cpu()), DType::f64) * scale);
  } else {
    graph = graph_->forward(h);
  }
  return cls_head_->forward(cat({backbone_->pooled(h), graph}, 1), 1);
}

Tensor GcnNet::forward(const Tensor& clips) { return forward(clips, Tensor()); }

Tensor GcnNet::forward(const Tensor& clips, const Tensor& objects) {
  SPOOL_CHECK(clips.dim() == 5, "NL I3D + GCN: clips ", describe(clips),
              " must be [N, C, T, H, W]");
  Tensor h = backbone_->stem(clips);
  for (auto& st : backbone_->block_stages()) h = st.fn(h);
  return head(h, objects, clips.size(3), clips.size(4));
}

Chain GcnNet::chain(const Tensor& clips, const Tensor& labels, const Tensor& objects) {
  SPOOL_CHECK(clips.dim() == 5, "NL I3D + GCN: clips ", describe(clips),
              " must be [N, C, T, H, W]");
  const int64_t image_h = clips.size(3), image_w = clips.size(4);
  return backbone3d_chain(*this, *backbone_, gen_, clips,
                          [this, labels, objects, image_h, image_w](const Tensor& h) {
                            return cross_entropy(head(h, objects, image_h, image_w), labels);
                          });
}

std::shared_ptr<nn::Module> make_video_model(const std::string& name, int64_t width, Generator* gen,
                                             int64_t classes, int64_t in_channels) {
  VideoConfig c = video_config(name);
  c.width = width;
  c.num_classes = classes;
  c.in_channels = in_channels;
  if (c.gcn) return std::make_shared<GcnNet>(c, gen);
  if (c.three_d) return std::make_shared<I3d>(c, gen);
  if (c.eco) return std::make_shared<EcoNet>(c, gen);
  if (c.tdn) return std::make_shared<TdnNet>(c, gen);
  return std::make_shared<SegmentNet>(c, gen);
}

nn::NamedTensors video_state_from_2d(const nn::NamedTensors& file, const nn::Module& model,
                                     const std::string& name, size_t* backbone_tensors) {
  nn::NamedTensors state2d;
  for (const char* prefix : {"model.backbone.", "backbone.", "model.", ""}) {
    for (const auto& [n, t] : file)
      if (n.rfind(prefix, 0) == 0 && n.find("fc.") == std::string::npos &&
          n.rfind("cls_head.", 0) != 0 && n.rfind("model.cls_head.", 0) != 0 &&
          n.rfind("optimizer.", 0) != 0)
        state2d.emplace_back(n.substr(std::string(prefix).size()), t);
    bool found = false;
    for (const auto& [n, t] : state2d) found = found || n == "conv1.weight";
    if (found) break;
    state2d.clear();
  }
  SPOOL_CHECK(!state2d.empty(), "holds no ResNet backbone (no conv1.weight)");
  for (const auto& [n, t] : state2d)
    SPOOL_CHECK(n != "conv1.weight" || t.dim() == 4, "conv1.weight is ", describe(t),
                "; expected 2-D weights [out, in, kh, kw]");
  if (backbone_tensors) *backbone_tensors = state2d.size();
  if (video_config(name).three_d) return inflate_2d(state2d, model, "backbone.");
  std::map<std::string, Tensor> by_name;
  for (const auto& [n, t] : state2d) by_name["backbone." + n] = t;
  nn::NamedTensors state;
  for (const auto& [n, t] : model.state_dict()) {
    // TDN's short-term module starts as the backbone's stem and stage 1 (as TDN's code does).
    auto it = by_name.find(n.rfind("stdm.", 0) == 0 ? "backbone." + n.substr(5) : n);
    Tensor w = it != by_name.end() ? it->second : t;
    // RGB differences take 3 (L - 1) channels: as TSN, the first conv's RGB kernels are
    // averaged over colour and repeated across the input channels.
    if ((n == "backbone.conv1.weight" || n == "stdm.conv1.weight") && w.dim() == 4 &&
        t.dim() == 4 && w.size(1) == 3 && t.size(1) != 3) {
      NoGrad no_grad;
      w = contiguous(expand(mean(to(w, t.dtype()), {1}, true), t.shape()));
    }
    // ECO's 3-D stages: the 2-D kernel inflated as inflate_2d does.
    if (t.dim() == 5 && w.dim() == 4) {
      SPOOL_CHECK(w.size(0) == t.size(0) && w.size(1) == t.size(1) && w.size(2) == t.size(3) &&
                      w.size(3) == t.size(4),
                  n, " is ", describe(w), " in the 2-D weights and ", describe(t),
                  " in the model; they do not correspond");
      NoGrad no_grad;
      w = contiguous(expand(unsqueeze(to(w, t.dtype()), 2), t.shape())) * (1.0 / double(t.size(2)));
    }
    state.emplace_back(n, w);
  }
  return state;
}

}  // namespace spool::models
