// spool grad: one forward and backward of a model on given weights and batch, written out for
// comparison with other engines: `loss`, `output` (logits), `grad.<param>` for every parameter
// and `buffer.<name>` for every buffer after the step (running statistics in train mode).
#include <cstdio>
#include <filesystem>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/safetensors.h"
#include "models/dpo.h"
#include "models/resnet.h"
#include "models/video.h"
#include "ops/ops.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/gpt_weights.h"
#include "tools/models.h"

namespace spool::cli {

namespace {

const Tensor& need(const TensorFile& f, const std::string& name, const std::string& flag) {
  if (!f.has(name)) throw UsageError(flag + ": " + f.path + " has no tensor '" + name + "'");
  return f.at(name);
}

// A model whose sizes come from a weights file may take no more memory than the file's values
// (twice, for the model and its initialisation, and 64 MiB for the small ones): a 200-byte file
// declaring conv1 [256, 3, 0, 0] and fc [3000000, 0] must not build a model of gigabytes before
// load_state_dict finds those tensors empty.
AllocationLimit model_cap(const TensorFile& w, const std::string& shapes) {
  int64_t held = 0;
  for (const auto& [n, t] : w.tensors) held += int64_t(t.nbytes());  // each checked at load
  return AllocationLimit(2 * held + (int64_t(64) << 20),
                         "grad: --weights: " + w.path + " holds " + std::to_string(held) +
                             " bytes of values but describes a larger model (" + shapes +
                             "); it was not built");
}

// A model shaped like the weights: ResNet-18's width and classes are read from them.
std::shared_ptr<nn::Module> model_for(const std::string& name, const TensorFile& w) {
  if (name == "resnet18") {
    const Tensor& c1 = need(w, "conv1.weight", "--weights");
    const Tensor& fc = need(w, "fc.weight", "--weights");
    if (c1.dim() != 4 || fc.dim() != 2)
      throw UsageError("--weights: conv1.weight " + describe(c1) + " and fc.weight " +
                       describe(fc) + " are not ResNet-18 shapes");
    static Generator gen(0);  // the model keeps the pointer; it must outlive it
    const AllocationLimit cap =
        model_cap(w, "conv1.weight " + describe(c1) + ", fc.weight " + describe(fc));
    return std::make_shared<models::ResNet>(
        models::ResNetConfig{fc.size(0), c1.size(0), c1.size(1)}, &gen);
  }
  static Generator gen(0);  // the model keeps the pointer (dropout); it must outlive it
  return make_model(name, &gen);
}

// dpo-gpt-tiny: `chosen`, `rejected` [B, T] i64 and `mask` [B, T] f32 (both sides); the reference
// is --ref-weights or the policy's own weights; the loss is sigmoid DPO with beta 0.1 unless
// --loss / --beta / --label-smoothing say otherwise. Writes loss, output (the policy's summed
// log-probabilities, chosen then rejected, [2B]), rewards/chosen, rewards/rejected and grad.*.
int grad_dpo(const Args& a, const TensorFile& weights, const TensorFile& batch,
             const std::string& out, const std::string& mode) {
  auto policy = load_gpt(weights);
  std::shared_ptr<models::Gpt> ref;
  if (a.has("ref-weights")) {
    const std::string r = a.str("ref-weights", "");
    if (!is_file(r)) throw UsageError("grad: --ref-weights: no such file: " + r);
    const TensorFile ref_file = load_safetensors(r);
    check_finite(ref_file, "grad: --ref-weights", a.has("allow-nonfinite"));
    ref = load_gpt(ref_file);
  } else {
    ref = load_gpt(weights);
  }
  models::DpoOptions o;
  try {
    o.loss = models::parse_dpo_loss(a.str("loss", "sigmoid"));
  } catch (const Error& e) {
    throw UsageError(std::string("grad: --loss: ") + e.what());
  }
  o.beta = a.positive_double("beta", 0.1);
  if (a.has("label-smoothing")) {
    if (o.loss != models::DpoLossType::cdpo)
      throw UsageError("grad: --label-smoothing is cdpo's epsilon; add --loss cdpo");
    o.label_smoothing = a.positive_double("label-smoothing", 0.1);
    if (o.label_smoothing >= 0.5) throw UsageError("grad: --label-smoothing must be below 0.5");
  }
  const Tensor& chosen = need(batch, "chosen", "--batch");
  const Tensor& rejected = need(batch, "rejected", "--batch");
  const Tensor& mask = need(batch, "mask", "--batch");
  if (chosen.dim() != 2 || rejected.shape() != chosen.shape() || mask.shape() != chosen.shape() ||
      chosen.dtype() != DType::i64 || rejected.dtype() != DType::i64 || mask.dtype() != DType::f32)
    throw UsageError("grad: --batch: chosen " + describe(chosen) + ", rejected " +
                     describe(rejected) + " and mask " + describe(mask) +
                     " must be i64, i64 and f32 [B, T]");
  policy->train(mode == "train");
  ref->eval();
  if (a.has("no-dropout")) disable_dropout(*policy);
  const Tensor tokens = cat({chosen, rejected}, 0), mask2 = cat({mask, mask}, 0);
  auto [rc, rr] = [&] {
    NoGrad no_grad;
    return models::pair_logps(*ref, tokens, mask2);
  }();
  auto [pc, pr] = models::pair_logps(*policy, tokens, mask2);
  const models::DpoResult r = models::dpo_loss(pc, pr, rc, rr, o);
  backward(r.loss);
  nn::NamedTensors result = {{"loss", r.loss.detach()},
                             {"output", cat({r.policy_chosen, r.policy_rejected}, 0)},
                             {"rewards/chosen", r.chosen_rewards},
                             {"rewards/rejected", r.rejected_rewards}};
  for (const auto& [n, p] : policy->named_parameters())
    if (p.grad().defined()) result.emplace_back("grad." + n, p.grad());
  save_safetensors(
      out, result,
      {{"model", "dpo-gpt-tiny"}, {"mode", mode}, {"loss", models::dpo_loss_name(o.loss)}});
  std::printf("dpo-gpt-tiny (%s, beta %g): loss %.6f, %zu gradients written to %s\n",
              models::dpo_loss_name(o.loss), o.beta, r.loss.item(),
              policy->named_parameters().size(), out.c_str());
  return 0;
}

// tsn, tsm, trn, tea, stm, eco (-r18, -r50): `frames` [N, K, 3, H, W]; tdn: `frames` [N, K, 3 L,
// H, W] (L frames a snippet); i3d: `clips` [N, 3, T, H, W]; all f32, with `labels` [N] i64. The
// width, classes, K and L come from the weights and the batch. gcn also takes `boxes` [N, T, 4]
// f32, each frame's object box in the clip's pixels (the graph's regions are then the box and the
// grid; without it, the grid).
int grad_video(const std::string& name, const Args& a, const TensorFile& weights,
               const TensorFile& batch, const std::string& out, const std::string& mode) {
  const bool i3d = models::video_config(name).three_d;
  const Tensor& x = need(batch, i3d ? "clips" : "frames", "--batch");
  const Tensor& labels = need(batch, "labels", "--batch");
  if (x.dim() != 5 || x.dtype() != DType::f32 || labels.dim() != 1 ||
      labels.dtype() != DType::i64 || labels.size(0) != x.size(0))
    throw UsageError(std::string("grad: --batch: ") + (i3d ? "clips " : "frames ") + describe(x) +
                     " and labels " + describe(labels) + " must be f32 " +
                     (i3d ? "[N, 3, T, H, W]" : "[N, K, 3, H, W]") + " and i64 [N]");
  const Tensor& conv1 = need(weights, "backbone.conv1.weight", "--weights");
  const Tensor& fc = need(weights, "cls_head.fc_cls.weight", "--weights");
  models::VideoConfig c = models::video_config(name);
  c.width = conv1.size(0);
  c.in_channels = conv1.size(1);
  c.num_classes = fc.size(0);
  if (!i3d) c.segments = x.size(1);
  c.non_local_stages.clear();  // from the weights
  for (int s = 1; s <= 4; ++s)
    if (weights.has("backbone.non_local" + std::to_string(s) + ".theta.weight"))
      c.non_local_stages.push_back(s);
  if (c.gcn) {  // the GCN layers: layers.<l>.sim for l = 0, 1, ...
    c.graph_layers = 0;
    while (weights.has("graph.layers." + std::to_string(c.graph_layers) + ".sim.weight"))
      ++c.graph_layers;
  }
  if (c.tdn) {  // the snippet's frames: the S-TDM's first conv reads their 3 (L - 1) differences
    const Tensor& s = need(weights, "stdm.conv1.weight", "--weights");
    if (s.dim() != 4 || s.size(1) % 3 != 0 || x.size(2) != s.size(1) + 3)
      throw UsageError("grad: --weights: stdm.conv1.weight " + describe(s) + " and frames " +
                       describe(x) + " do not agree on 3 (L - 1) differences of L frames");
    c.tdn_frames = x.size(2) / 3;
  }
  // TEA's, STM's and TDN's channel reduction: the first motion module maps C to C / r.
  for (const char* m : {"backbone.layer1.0.me.conv1.weight", "backbone.layer1.0.cmm.conv1.weight",
                        "backbone.layer2.0.ltdm.conv1.weight"})
    if (weights.has(m)) {
      const Tensor& w = weights.at(m);
      if (w.dim() != 4 || w.size(0) < 1 || w.size(1) % w.size(0) != 0)
        throw UsageError(std::string("grad: --weights: ") + m + " " + describe(w) +
                         " does not reduce the channels by a whole factor");
      c.motion_reduction = w.size(1) / w.size(0);
    }
  if (c.relations) {
    c.relation_dim = fc.size(0);
    const Tensor& last =
        need(weights, "cls_head.consensus.fc_fusion_scales.0.3.weight", "--weights");
    c.num_classes = last.size(0);
    c.relation_bottleneck = last.size(1);
  }
  Generator gen(0);
  std::shared_ptr<nn::Module> model;
  {
    const AllocationLimit cap = model_cap(
        weights, "backbone.conv1.weight " + describe(conv1) + ", cls_head.fc_cls.weight " +
                     describe(fc) + (i3d ? "" : ", " + std::to_string(c.segments) + " segments"));
    if (c.gcn)
      model = std::make_shared<models::GcnNet>(c, &gen);
    else if (i3d)
      model = std::make_shared<models::I3d>(c, &gen);
    else if (c.eco)
      model = std::make_shared<models::EcoNet>(c, &gen);
    else if (c.tdn)
      model = std::make_shared<models::TdnNet>(c, &gen);
    else
      model = std::make_shared<models::SegmentNet>(c, &gen);
  }
  model->load_state_dict(weights.tensors);
  model->train(mode == "train");
  if (a.has("no-dropout")) disable_dropout(*model);
  Tensor output;
  if (batch.has("boxes")) {
    if (!c.gcn)
      throw UsageError("grad: --batch: boxes are the region graph's object boxes; " + name +
                       " has no region graph");
    const Tensor& boxes = batch.at("boxes");
    if (boxes.dim() != 3 || boxes.dtype() != DType::f32 || boxes.size(0) != x.size(0) ||
        boxes.size(1) != x.size(2) || boxes.size(2) != 4)
      throw UsageError("grad: --batch: boxes " + describe(boxes) + " must be f32 [" +
                       std::to_string(x.size(0)) + ", " + std::to_string(x.size(2)) +
                       ", 4], a box (x1, y1, x2, y2) for each frame of clips " + describe(x));
    try {
      output = static_cast<models::GcnNet&>(*model).forward(x, boxes);
    } catch (const Error& e) {
      throw UsageError(std::string("grad: --batch: ") + e.what());
    }
  } else {
    output = model->forward(x);
  }
  const Tensor loss = cross_entropy(output, labels);
  backward(loss);
  nn::NamedTensors result = {{"loss", loss.detach()}, {"output", output.detach()}};
  for (const auto& [n, p] : model->named_parameters())
    if (p.grad().defined()) result.emplace_back("grad." + n, p.grad());
  for (const auto& [n, b] : model->named_buffers()) result.emplace_back("buffer." + n, b);
  save_safetensors(out, result, {{"model", name}, {"mode", mode}});
  std::printf("%s: loss %.6f, %zu gradients written to %s\n", name.c_str(), loss.item(),
              model->named_parameters().size(), out.c_str());
  return 0;
}

}  // namespace

int cmd_grad(int argc, char** argv) {
  Args a(argc, argv, 2,
         {{"model", true, "the model (as for train)"},
          {"weights", true, "W.safetensors: the weights"},
          {"batch", true, "B.safetensors: the batch (dpo-gpt-tiny: chosen, rejected, mask)"},
          {"out", true, "G.safetensors: loss, output and grad.<param> for every parameter"},
          {"mode", true, "train or eval"},
          {"no-dropout", false, "train mode with dropout off"},
          {"ref-weights", true, "dpo-gpt-tiny: the reference's weights"},
          {"loss", true, "dpo-gpt-tiny: sigmoid, cdpo, ipo or hinge"},
          {"beta", true, "dpo-gpt-tiny: beta"},
          {"label-smoothing", true, "dpo-gpt-tiny: label smoothing"},
          {"allow-nonfinite", false,
           "use weights holding NaN or Inf (warned) instead of refusing them"}},
         "grad");
  for (const char* f : {"model", "weights", "batch", "out"})
    if (!a.has(f)) throw UsageError(std::string("grad: --") + f + " is required");
  const std::string model_name = a.str("model", ""), mode = a.str("mode", "train");
  if (mode != "train" && mode != "eval")
    throw UsageError("grad: --mode '" + mode + "' is not train or eval");
  for (const char* f : {"weights", "batch"})
    if (!is_file(a.str(f, "")))
      throw UsageError(std::string("grad: --") + f + ": no such file: " + a.str(f, ""));
  const std::string out = a.str("out", "");
  check_output(out, "grad: --out");

  const bool allow = a.has("allow-nonfinite");
  TensorFile weights = load_safetensors(a.str("weights", ""));
  check_finite(weights, "grad: --weights", allow);
  TensorFile batch = load_safetensors(a.str("batch", ""));
  check_finite(batch, "grad: --batch", allow);
  for (const char* input : {"idx", "images", "frames", "clips", "chosen", "rejected"})
    if (batch.has(input) && batch.at(input).numel() == 0)
      throw UsageError(std::string("grad: --batch: ") + input + " " + describe(batch.at(input)) +
                       " is empty; the loss of no examples is not defined");
  const ModelInfo* info = find_model(model_name);
  if (!info)
    throw UsageError("grad: unknown model '" + model_name + "' (available: " + model_names() + ")");
  const bool dpo = info->family == Family::preference;
  for (const char* f : {"ref-weights", "loss", "beta", "label-smoothing"})
    if (a.has(f) && !dpo) throw UsageError(std::string("grad: --") + f + " is for dpo-gpt-tiny");
  if (dpo) return grad_dpo(a, weights, batch, out, mode);
  if (info->family == Family::video) return grad_video(model_name, a, weights, batch, out, mode);
  if (info->family == Family::reward || info->family == Family::rlhf)
    throw UsageError("grad: " + model_name +
                     " is not one of grad's models (the digits, language, preference and video "
                     "models)");
  const bool gpt = info->family == Family::language;
  std::shared_ptr<nn::Module> model;
  if (gpt) {
    model = load_gpt(weights);
  } else {
    model = model_for(model_name, weights);
    model->load_state_dict(weights.tensors);
  }
  model->train(mode == "train");
  if (a.has("no-dropout")) disable_dropout(*model);

  Tensor output, loss;
  if (gpt) {  // idx, targets [B, T]; mean cross-entropy over every position
    const Tensor& idx = need(batch, "idx", "--batch");
    const Tensor& targets = need(batch, "targets", "--batch");
    output = model->forward(idx);
    loss = cross_entropy(reshape(output, {-1, output.size(-1)}), reshape(targets, {-1}));
  } else {  // images [N, 3, H, W], labels [N]
    const Tensor& images = need(batch, "images", "--batch");
    const Tensor& labels = need(batch, "labels", "--batch");
    output = model->forward(images);
    loss = cross_entropy(output, labels);
  }
  backward(loss);

  nn::NamedTensors result = {{"loss", loss.detach()}, {"output", output.detach()}};
  for (const auto& [n, p] : model->named_parameters())
    if (p.grad().defined()) result.emplace_back("grad." + n, p.grad());
  for (const auto& [n, b] : model->named_buffers()) result.emplace_back("buffer." + n, b);
  save_safetensors(out, result, {{"model", model_name}, {"mode", mode}});
  std::printf("%s: loss %.6f, %zu gradients written to %s\n", model_name.c_str(), loss.item(),
              model->named_parameters().size(), out.c_str());
  return 0;
}

}  // namespace spool::cli
