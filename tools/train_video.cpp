// spool train --model tsn-r18|tsm-r18|trn-r18|i3d-r18 --data synthetic: action recognition on
// the generated order-sensitive clips (data/synthetic_video.h) with the video schedule (SGD with
// momentum 0.9, weight decay 1e-4, warm-up and cosine decay, gradient clipping at 40), fresh
// clips every step, flip augmentation that maps the labels it mirrors, and a multi-view test:
// top-1, per-class accuracy, the confusion matrix, and how often the direction is right when the
// motion pair is (the order test: TSN should sit near 0.5 there).
#include <cmath>
#include <cstdio>

#include <filesystem>
#include <future>
#include <map>
#include <optional>

#include "data/clips.h"
#include "engine/autograd.h"
#include "engine/factory.h"
#include "engine/safetensors.h"
#include "engine/trace.h"
#include "models/resnet3d.h"
#include "models/video.h"
#include "nn/optim.h"
#include "ops/ops.h"
#include "tools/cli.h"
#include "tools/models.h"
#include "tools/planned.h"
#include "tools/task.h"
#include "tools/train.h"

namespace spool::cli {

namespace {

// Views [N, K, C, S, S] in the model's layout: I3D takes clips [N, C, K, S, S].
Tensor model_layout(const Tensor& x, bool i3d) {
  return i3d ? contiguous(permute(x, {0, 2, 1, 3, 4})) : x;
}

std::string json_array(const std::vector<double>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%.4g", i ? ", " : "", v[i]);
    s += buf;
  }
  return s + "]";
}

// The video models on clips: SGD with momentum 0.9 and weight decay 1e-4, warm-up over the
// first 5 % of the steps and cosine decay to 0, clipping at 40; each batch decoded on a
// background thread while the previous one trains; the two-view test at the end.
class VideoTask : public Task {
 public:
  explicit VideoTask(const TrainConfig& c) : Task(c) {
    spec_.length = c.diff_frames;  // 1 for RGB
    if (const models::VideoConfig vc = models::video_config(c.model); vc.tdn) {
      spec_.length = vc.tdn_frames;  // TDN: raw snippets around each sampled frame
      spec_.raw = true;
    }
    if (c.flow_frames > 0) {  // the temporal stream: L flow fields a segment
      spec_.length = c.flow_frames;
      spec_.flow = true;
    }
    spec_.size = spec_.load_size = c.video_size;
    spec_.crop = c.crop;
    if (c.crop) spec_.load_size = (c.video_size * 8 + 6) / 7;  // 112 -> 128, as 224 -> 256
    if (c.data == "synthetic" || c.data == "synthetic-motion") {
      source_ = std::make_unique<data::SyntheticSource>(c.seed, c.test_clips, spec_,
                                                        c.data == "synthetic-motion");
    } else {
      std::string test_list = c.test_list;
      if (test_list.empty()) {
        test_list = (std::filesystem::path(c.data).parent_path() / "val.txt").string();
        std::error_code ec;
        if (!std::filesystem::is_regular_file(test_list, ec))
          throw UsageError("train: --data " + c.data +
                           ": no --test-list given and no val.txt beside it");
      }
      source_ = std::make_unique<data::ListSource>(c.data, test_list, spec_, c.test_clips, c.flip,
                                                   c.motion_only_from);
    }
    source_->check_before_training();
    model_ = models::make_video_model(c.model, c.video_width, &gen_, source_->classes(),
                                      spec_.channels());
    if (c.init_2d) init_from_2d(*c.init_2d);
    i3d_ = models::video_config(c.model).three_d;
    if (c.device != Device::cpu()) model_->to(c.device);  // before the optimizer takes its params
    opt_ =
        std::make_unique<nn::SGD>(nn::decay_matrices_only(*model_, 1e-4),
                                  nn::SGDOptions{.lr = c.lr, .momentum = 0.9, .weight_decay = 0});
    total = c.steps;
    schedule = nn::CosineSchedule{c.lr, std::max<int64_t>(1, total / 20), total, 0};
    clip_norm = 40.0;
    stops_on_time = true;
    schedule_by_time = true;
    std::printf("%s: %lld parameters; %s, %lld classes, frames %lld x %lld, batch %lld%s%s\n",
                c.model.c_str(), (long long)model_->num_parameters(),
                c.data == "synthetic"          ? "generated clips"
                : c.data == "synthetic-motion" ? "generated clips of the motion set"
                                               : c.data.c_str(),
                (long long)source_->classes(), (long long)c.video_size, (long long)c.video_size,
                (long long)c.batch,
                models::video_config(c.model).gcn
                    ? (c.object_regions ? ", regions: object boxes and grid" : ", regions: grid")
                    : "",
                c.time_limit > 0
                    ? (", time limit " + std::to_string(int(c.time_limit)) + " s").c_str()
                    : "");
    // Under a plan the step's memory is accounted to the byte, so the next batch is made on this
    // thread between steps (deferred) instead of alongside the step; its draws are taken at the
    // same point either way, so planned and plain runs see the same batches.
    launch_ = c.checkpoint_policy.empty() ? std::launch::async : std::launch::deferred;
    next_ = prefetch();
  }
  ~VideoTask() override {
    if (next_.valid()) next_.wait();  // the prefetch must finish before the source goes
  }

  Metrics step(int64_t step, PlannedSteps* planned,
               const std::function<void()>& zero_grad) override {
    std::optional<trace::Span> data_span(std::in_place, "data", "batch");  // waits for the prefetch
    data::ClipBatch b = next_.get();
    if (step + 1 < total) next_ = prefetch();
    if (c_.world > 1) {  // data parallel: this rank's clips of the global batch
      const auto [first, end] = my_rows(b.x.size(0));
      for (Tensor* t : {&b.x, &b.labels, &b.boxes})
        if (t->defined()) *t = contiguous(slice(*t, 0, first, end));
    }
    const Tensor x = model_layout(to(b.x, c_.device), i3d_);  // clips are decoded on the cpu
    b.labels = to(b.labels, c_.device);
    data_span.reset();
    auto* gcn = c_.object_regions ? dynamic_cast<models::GcnNet*>(model_.get()) : nullptr;
    if (gcn) SPOOL_CHECK(b.boxes.defined(), "train: the batch came without its object boxes");
    if (planned) {
      Chain chain = gcn ? gcn->chain(x, b.labels, b.boxes)
                        : classifier_chain(*model_, x, b.labels, {}, nullptr);
      return {{"loss", planned->step(chain, str(x.shape()), zero_grad)}};
    }
    Tensor loss = cross_entropy(gcn ? gcn->forward(x, b.boxes) : model_->forward(x), b.labels);
    backward(loss);
    return {{"loss", loss.item()}};
  }

  void finish(LineLog& log, int64_t steps, const Metrics& last, const Metrics&,
              double train_seconds, double) override {
    if (next_.valid()) next_.wait();  // the prefetch must finish before the source is used again
    const data::ClipScores e = test();
    if (c_.scores && c_.rank == 0) {
      // Each test clip's class scores (softmax averaged over the two views) with its label, in
      // test-list order, for spool fuse; unreadable clips are left out of both.
      save_safetensors(
          *c_.scores,
          {{"scores", from_vector(scores_, {int64_t(score_labels_.size()), source_->classes()})},
           {"labels", from_vector(score_labels_)}},
          {{"model", c_.model},
           {"modality", spec_.flow         ? "flow"
                        : spec_.raw        ? "snippets"
                        : spec_.length > 1 ? "rgbdiff"
                                           : "rgb"}});
      std::printf("test scores of %zu clips written to %s\n", score_labels_.size(),
                  c_.scores->c_str());
    }
    // Up to kDenseConfusion classes the whole matrix ("confusion", [true][predicted]); above, the
    // cells that occur ("confusion_counts", [true, predicted, clips] each), so the line grows
    // with the test set rather than with the square of the classes.
    constexpr int64_t kDenseConfusion = 100;
    std::string confusion;
    if (e.classes <= kDenseConfusion) {
      confusion = ", \"confusion\": [";
      for (int64_t t = 0; t < e.classes; ++t) {
        std::vector<double> row(size_t(e.classes), 0.0);
        for (auto it = e.confusion.lower_bound({t, 0});
             it != e.confusion.end() && it->first.first == t; ++it)
          row[size_t(it->first.second)] = double(it->second);
        confusion += (t ? ", " : "") + json_array(row);
      }
    } else {
      confusion = ", \"confusion_counts\": [";
      for (const auto& [cell, n] : e.confusion)
        confusion += (confusion.back() == '[' ? "[" : ", [") + std::to_string(cell.first) + ", " +
                     std::to_string(cell.second) + ", " + std::to_string(n) + "]";
    }
    confusion += "]";
    Json final = final_line(steps)
                     .add("train_seconds", train_seconds)
                     .add("loss", last.at("loss"))
                     .add("test_clips", e.clips)
                     .add("skipped_videos", source_->skipped())
                     .add("top1", e.top1)
                     .add("pair_acc", e.pair_acc)
                     .add("direction_acc", e.direction_acc);
    if (source_->motion_only_from() >= 0)
      final.add("motion_only_acc", e.motion_only_acc).add("motion_only_clips", e.motion_only_clips);
    std::string line = final.str();
    line.pop_back();  // the arrays join the flat object
    line += ", \"per_class\": " + json_array(e.per_class) + confusion + "}";
    log.write(line);
    std::printf("%s\n", line.c_str());
  }

 private:
  // The next batch, from draws taken now on this thread, so runs repeat exactly.
  std::future<data::ClipBatch> prefetch() {
    return std::async(launch_, data::train_batch, std::ref(*source_), spec_, c_.batch,
                      gen_.take(data::kDrawsPerClip * uint64_t(c_.batch)));
  }

  // The two-view test: each clip's class scores averaged over views at offsets 0.25 and 0.75.
  data::ClipScores test() {
    NoGrad no_grad;
    model_->eval();
    std::map<std::pair<int64_t, int64_t>, int64_t> confusion;
    const int64_t chunk = 4, clips = source_->test_count();
    for (int64_t at = 0; at < clips; at += chunk) {
      const int64_t n = std::min(chunk, clips - at);
      std::vector<Tensors> views(2), boxes(2);
      std::vector<int64_t> labels;
      for (int64_t i = 0; i < n; ++i) {
        int64_t label = 0;
        Tensor b0, b1;
        const Tensor v0 = data::test_view(*source_, spec_, at + i, 0, &label, &b0);
        const Tensor v1 = data::test_view(*source_, spec_, at + i, 1, &label, &b1);
        if (!v0.defined() || !v1.defined()) continue;  // unreadable: skipped and counted
        views[0].push_back(v0);
        views[1].push_back(v1);
        boxes[0].push_back(b0);
        boxes[1].push_back(b1);
        labels.push_back(label);
      }
      if (labels.empty()) continue;
      auto* gcn = c_.object_regions ? dynamic_cast<models::GcnNet*>(model_.get()) : nullptr;
      Tensor probs;
      for (size_t v = 0; v < views.size(); ++v) {
        const Tensor x = to(model_layout(stack(views[v], 0), i3d_), c_.device);
        Tensor p = softmax(gcn ? gcn->forward(x, stack(boxes[v], 0)) : model_->forward(x), 1);
        probs = probs.defined() ? probs + p : p;
      }
      const auto pred = to(argmax(probs, 1), Device::cpu()).to_vector<int64_t>();
      for (float p : to(probs * 0.5, Device::cpu()).to_vector<float>()) scores_.push_back(p);
      score_labels_.insert(score_labels_.end(), labels.begin(), labels.end());
      for (size_t i = 0; i < labels.size(); ++i) ++confusion[{labels[i], pred[i]}];
    }
    model_->train();
    return data::score_clips(std::move(confusion), source_->classes(), source_->motion_only_from());
  }

  // --init-2d: the backbone from 2-D ResNet weights (models::video_state_from_2d).
  void init_from_2d(const std::string& path) {
    const TensorFile f = load_safetensors(path);
    check_finite(f, "--init-2d", c_.allow_nonfinite);
    size_t used = 0;
    try {
      model_->load_state_dict(models::video_state_from_2d(f.tensors, *model_, c_.model, &used));
    } catch (const Error& e) {
      throw UsageError(std::string("--init-2d: ") + path + ": " + e.what());
    }
    std::printf("--init-2d: backbone from %s (%zu tensors%s)\n", path.c_str(), used,
                models::video_config(c_.model).three_d ? ", inflated to 3-D"
                : models::video_config(c_.model).eco   ? ", stages 3-4 inflated to 3-D"
                                                       : "");
  }

  data::ViewSpec spec_;
  std::vector<float> scores_;  // the test's averaged class scores, clip after clip
  std::vector<int64_t> score_labels_;
  std::unique_ptr<data::ClipSource> source_;
  bool i3d_ = false;
  std::launch launch_ = std::launch::async;
  std::future<data::ClipBatch> next_;
};

}  // namespace

std::unique_ptr<Task> make_video_task(const TrainConfig& c) {
  return std::make_unique<VideoTask>(c);
}

}  // namespace spool::cli
