// Video action recognition models (CONFIGS.md): TSN, TSM and TRN on a shared 2-D ResNet-18 or
// ResNet-50 over K segments, and I3D on the inflated 3-D ResNet-18 or ResNet-50. Parameter names
// follow the video toolboxes: `backbone.` + torchvision's ResNet names and the classifier
// `cls_head.fc_cls.*` (TRN's relation MLPs are `cls_head.consensus.fc_fusion_scales.<i>.{1,3}.*`),
// so checkpoints move between spool and the Python tools.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "models/region_graph.h"
#include "models/resnet.h"
#include "models/resnet3d.h"
#include "nn/layers.h"

namespace spool::models {

struct VideoConfig {
  int64_t num_classes = 10;
  int64_t segments = 8;  // K frames per clip (2-D models); I3D reads the clip's T from its input
  int64_t width = 64;    // ResNet stage widths width, 2 width, 4 width, 8 width
  int64_t depth = 18;    // backbone: ResNet-18 or ResNet-50
  bool three_d = false;  // I3D: the inflated 3-D backbone on clips [N, C, T, H, W]
  // Channels of each segment's input: 3 for RGB; TSN's RGB-difference modality stacks the
  // differences of L consecutive frames, 3 (L - 1) channels (data/video_io.h rgb_difference).
  int64_t in_channels = 3;
  double dropout = 0.5;
  // TSM: temporal shift in every residual branch; online = the uni-directional variant.
  bool shift = false;
  bool shift_online = false;
  // TEA: motion excitation and multiple temporal aggregation in every residual block
  // (ResNetConfig::tea_segments, models/motion.h).
  bool tea = false;
  // STM: a channel-wise temporal conv before every block's 3x3 conv and the channel-wise motion
  // module beside it (ResNetConfig::stm_segments, models/motion.h).
  bool stm = false;
  int64_t motion_reduction = 16;  // TEA's ME and STM's CMM: channels reduced by this factor
  // ECO (lite): 2-D stages 1-2 per frame, their maps stacked over time, 3-D stages 3-4 (EcoNet).
  bool eco = false;
  // TDN: each segment a snippet of tdn_frames consecutive RGB frames (3 tdn_frames channels; the
  // centre one the backbone's input), the short-term module on their differences fused into the
  // stem and stage 1, the long-term module in every block of stages 2-4 (TdnNet).
  bool tdn = false;
  int64_t tdn_frames = 5;
  // NL I3D + GCN: the I3D backbone (non-local blocks after non_local_stages) and the space-time
  // region graph on its last map (models/region_graph.h), its feature beside the pooled one.
  bool gcn = false;
  int64_t graph_layers = 2;
  // TRN: multi-scale temporal relations instead of average consensus.
  bool relations = false;
  int64_t relation_dim = 256;  // features per frame fed to the relations (fc_cls's output)
  int64_t relation_bottleneck = 256;
  int64_t relation_subsample = 3;     // ordered frame subsets used per scale (all for scale K)
  std::vector<int> non_local_stages;  // I3D: non-local blocks after these stages (1-4)
};

VideoConfig tsn_r18();
VideoConfig tsm_r18();
VideoConfig trn_r18();
VideoConfig tea_r18();
VideoConfig stm_r18();
VideoConfig eco_r18();
VideoConfig tdn_r18();
VideoConfig gcn_r18();
VideoConfig i3d_r18();
// tsn-, tsm-, trn-, tea-, stm-, eco-, tdn-, gcn- or i3d- followed by r18 or r50 (the -r50 models
// are the same on ResNet-50); spool::Error names the known ones otherwise.
VideoConfig video_config(const std::string& name);
// The RGB input of `clips` clips of `segments` frames at size x size in the model's layout:
// [N, 3, T, H, W] for I3D, [N, K, 3 L, H, W] for TDN (L = tdn_frames), [N, K, 3, H, W] else.
Shape video_input_shape(const std::string& name, int64_t clips, int64_t segments, int64_t size);
extern const char* const kVideoModelNames;  // "tsn-r18, tsm-r18, ..., i3d-r50"
bool is_video_model_name(const std::string& name);

// TRN's relation module: for each scale s = K, K-1, ..., 2, ordered subsets of s of the K frames
// (kept in time order), their features concatenated and passed through ReLU, Linear(s * D,
// bottleneck), ReLU, Linear(bottleneck, classes); the scales' outputs summed (each scale the sum
// over its subsets). Training draws relation_subsample subsets per scale at random from the
// generator; evaluation uses a fixed, evenly spread choice.
class RelationModule : public nn::Module {
 public:
  RelationModule(const VideoConfig& c, Generator* gen);
  std::string type_name() const override { return "RelationModuleMultiScale"; }
  Tensor forward(const Tensor& x) override;  // [N, K, D] -> [N, classes]

 private:
  std::vector<std::vector<std::vector<int64_t>>> subsets_;  // per scale, every ordered subset
  std::vector<int64_t> keep_;                               // subsets used per scale
  std::shared_ptr<nn::ModuleList> fc_fusion_scales_;
  std::vector<std::shared_ptr<nn::Sequential>> mlps_;
  Generator* gen_;
};

// cls_head: dropout, fc_cls and, for TRN, the relation consensus.
class VideoHead : public nn::Module {
 public:
  VideoHead(int64_t in, const VideoConfig& c, Generator* gen);
  std::string type_name() const override { return "VideoHead"; }
  // features [N * K, in] -> logits [N, classes] (average consensus or relations); I3D: K = 1.
  Tensor forward(const Tensor& features, int64_t segments);
  Tensor forward(const Tensor& features) override { return forward(features, 1); }
  std::shared_ptr<nn::Dropout> dropout;
  std::shared_ptr<nn::Linear> fc_cls;
  std::shared_ptr<RelationModule> consensus;
};

// TSN / TSM / TRN: frames [N, K, C, H, W] -> logits [N, classes] (C = in_channels: 3 for RGB).
class SegmentNet : public nn::Module {
 public:
  SegmentNet(const VideoConfig& c, Generator* gen = nullptr);
  std::string type_name() const override { return "SegmentNet"; }
  Tensor forward(const Tensor& frames) override;
  // The training step as a chain for the memory planner: the stem, the blocks, and the
  // head (pooling, cls_head, consensus) with the mean cross-entropy against `labels` [N].
  // split_blocks and stem_groups as for ResNet::chain (basic-block backbones split; the
  // stem's groups divide its width).
  Chain chain(const Tensor& frames, const Tensor& labels, bool split_blocks = false,
              int64_t stem_groups = 1);
  const VideoConfig& config() const { return c_; }

 private:
  Tensor frames_as_images(const Tensor& frames) const;  // [N, K, C, H, W] -> [N K, C, H, W]
  VideoConfig c_;
  Generator* gen_;
  std::shared_ptr<ResNet> backbone_;
  std::shared_ptr<VideoHead> cls_head_;
};

// I3D: clips [N, 3, T, H, W] -> logits [N, classes].
class I3d : public nn::Module {
 public:
  I3d(const VideoConfig& c, Generator* gen = nullptr);
  std::string type_name() const override { return "I3D"; }
  Tensor forward(const Tensor& clips) override;
  Chain chain(const Tensor& clips, const Tensor& labels);  // as SegmentNet::chain
  const VideoConfig& config() const { return c_; }
  ResNet3d& backbone() { return *backbone_; }

 private:
  VideoConfig c_;
  Generator* gen_;
  std::shared_ptr<ResNet3d> backbone_;
  std::shared_ptr<VideoHead> cls_head_;
};

// ECO lite (Zolfaghari et al., ECCV 2018) on spool's ResNets: frames [N, K, C, H, W] ->
// logits [N, classes]. The backbone's stem and stages 1-2 are the 2-D ResNet's, run on the N K
// frames; their maps are stacked over time into [N, C, K, H', W'] and stages 3-4 are 3-D
// (ResNet-18: every conv 3x3x3, as ECO's 3D-ResNet-18 part; ResNet-50: every bottleneck
// inflated, conv1 3x1x1), with no temporal stride; then average pooling over time and space
// and cls_head. Names as torchvision's under `backbone.`, 4-D in stages 1-2 and 5-D in 3-4, so
// `--init-2d` inflates the 2-D network's stages 3-4 and copies the rest.
class EcoNet : public nn::Module {
 public:
  EcoNet(const VideoConfig& c, Generator* gen = nullptr);
  std::string type_name() const override { return "ECO"; }
  Tensor forward(const Tensor& frames) override;
  Chain chain(const Tensor& frames, const Tensor& labels);  // as SegmentNet::chain
  const VideoConfig& config() const { return c_; }

 private:
  Tensor stem(const Tensor& frames);    // [N, K, C, H, W] -> conv1, bn1, relu, max pool
  Tensor stack(const Tensor& h) const;  // [N K, C, H, W] -> [N, C, K, H, W]
  std::vector<Stage> stages();          // the 2-D blocks, the stacking, the 3-D blocks
  VideoConfig c_;
  Generator* gen_;
  std::shared_ptr<nn::Module> backbone_;
  std::shared_ptr<nn::Conv2d> conv1_;
  std::shared_ptr<nn::BatchNorm2d> bn1_;
  std::shared_ptr<nn::Sequential> layers_[4];
  std::shared_ptr<VideoHead> cls_head_;
};

// TDN (Wang et al., CVPR 2021) on spool's 2-D ResNets: snippets [N, K, 3 L, H, W] (L =
// tdn_frames consecutive RGB frames around each of the K sampled frames) -> logits [N, classes].
// The backbone (`backbone.`, torchvision's names) runs on each snippet's centre frame; the
// short-term module (`stdm.`: conv1, bn1, layer1, models/motion.h) on the snippet's RGB
// differences, fused after the backbone's stem and after its stage 1 (1/2 each, the motion
// features resized by nearest neighbours); the long-term module (`ltdm` in every block of
// stages 2-4); then average consensus over the K segments as TSN.
class TdnNet : public nn::Module {
 public:
  TdnNet(const VideoConfig& c, Generator* gen = nullptr);
  std::string type_name() const override { return "TDN"; }
  Tensor forward(const Tensor& snippets) override;
  // As SegmentNet::chain, as a graph: the short-term module's stem and stage 1 are stages of
  // their own, read by the backbone's stem and by the last block of its stage 1.
  Chain chain(const Tensor& snippets, const Tensor& labels);
  const VideoConfig& config() const { return c_; }

 private:
  Tensor images(const Tensor& snippets) const;              // [N, K, 3 L, H, W] -> [N K, 3 L, H, W]
  Tensor stem(const Tensor& images, const Tensor& motion);  // fused with the S-TDM's stem
  VideoConfig c_;
  Generator* gen_;
  std::shared_ptr<ResNet> backbone_;
  std::shared_ptr<ShortTermDifference> stdm_;
  std::shared_ptr<VideoHead> cls_head_;
};

// NL I3D + GCN (Wang and Gupta, ECCV 2018) on spool's I3D: clips [N, 3, T, H, W] -> logits. The
// backbone (`backbone.`, ResNet3d with a non-local block after stage 3) gives the last map; the
// region graph (`graph.`, models/region_graph.h) its graph feature [N, C]; cls_head takes the
// pooled map and the graph feature concatenated, 2 C. The regions are the fixed grid, or with
// `objects` ([N, T, 4]: each frame's object box, x1, y1, x2, y2 in the clip's pixels, as the
// generated clips give them) the object's box and the grid; the map has T frames (I3D does not
// stride time) and the boxes are scaled to its pixels.
class GcnNet : public nn::Module {
 public:
  GcnNet(const VideoConfig& c, Generator* gen = nullptr);
  std::string type_name() const override { return "NLI3DGCN"; }
  Tensor forward(const Tensor& clips) override;
  Tensor forward(const Tensor& clips, const Tensor& objects);
  // As I3d::chain, the graph in the head (on `objects` when defined).
  Chain chain(const Tensor& clips, const Tensor& labels, const Tensor& objects = {});
  const VideoConfig& config() const { return c_; }

 private:
  // The last map -> logits; `image` is the clips' [H, W] for scaling the object boxes.
  Tensor head(const Tensor& h, const Tensor& objects, int64_t image_h, int64_t image_w);
  VideoConfig c_;
  Generator* gen_;
  std::shared_ptr<ResNet3d> backbone_;
  std::shared_ptr<RegionGraph> graph_;
  std::shared_ptr<VideoHead> cls_head_;
};

// A video model by name (tsn-, tsm-, trn-, tea-, stm- (SegmentNet), eco- (EcoNet), tdn- (TdnNet),
// gcn- (GcnNet) or i3d- (I3d) + r18 or r50), with stage width `width` and `in_channels` per segment
// (3 for RGB, 3 (L - 1) for RGB differences; TDN reads 3 tdn_frames whatever is given).
std::shared_ptr<nn::Module> make_video_model(const std::string& name, int64_t width, Generator* gen,
                                             int64_t classes = 10, int64_t in_channels = 3);

// The state of `model` (made by make_video_model for `name`) with its backbone taken from 2-D
// ResNet weights: torchvision names, or a spool checkpoint of a 2-D video model or of resnet18
// (found under "model.backbone.", "backbone.", "model." or no prefix; heads and optimizer
// state are left out). I3D inflates them (inflate_2d); the 2-D models take them as they are
// (ECO inflating its 3-D stages 3-4 the same way), except that a first convolution taking RGB
// differences (3 (L - 1) channels) gets the RGB kernels averaged over colour and repeated, as
// TSN does. Tensors the 2-D network lacks (TEA's and STM's motion modules) and the head keep
// their initialisation.
// `backbone_tensors` is set to the number of 2-D tensors used. Throws spool::Error naming what
// is missing or mismatched.
nn::NamedTensors video_state_from_2d(const nn::NamedTensors& file, const nn::Module& model,
                                     const std::string& name, size_t* backbone_tensors = nullptr);

}  // namespace spool::models
