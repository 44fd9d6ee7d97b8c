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
#include <set>

#include "data/synthetic_video.h"
#include "data/video_io.h"
#include "engine/autograd.h"
#include "engine/checked.h"
#include "engine/factory.h"
#include "engine/safetensors.h"
#include "models/resnet3d.h"
#include "models/video.h"
#include "nn/optim.h"
#include "ops/ops.h"
#include "tools/cli.h"
#include "tools/planned.h"
#include "tools/train.h"

namespace spool::cli {

std::shared_ptr<nn::Module> make_video_model(const std::string& name, int64_t width, Generator* gen,
                                             int64_t classes, int64_t in_channels) {
  models::VideoConfig c = models::video_config(name);
  c.width = width;
  c.num_classes = classes;
  c.in_channels = in_channels;
  if (c.three_d) return std::make_shared<models::I3d>(c, gen);
  return std::make_shared<models::SegmentNet>(c, gen);
}

namespace {

constexpr int64_t kClipFrames = 16, kSegments = 8;

Tensor flip_width(const Tensor& v) {
  const int64_t w = v.size(3);
  std::vector<int64_t> rev(static_cast<size_t>(w));
  for (int64_t i = 0; i < w; ++i) rev[size_t(i)] = w - 1 - i;
  return index_select(v, 3, from_vector(rev));
}

// How a clip becomes the model's input: K = 8 segments, each a snippet of `length` consecutive
// frames (1 for RGB; TSN's RGB-difference takes L frames and their L - 1 differences), read at
// `load_size`, then cropped to `size` (a multi-scale crop in training, the centre at test) when
// `crop` is set (load_size is then size * 8 / 7, as 128 for 112).
struct ViewSpec {
  int64_t length = 1;
  int64_t size = 112, load_size = 112;
  bool crop = false;
};

// Where clips come from: the raw snippets [K * L, 3, load, load] and labels.
class ClipSource {
 public:
  virtual ~ClipSource() = default;
  // Training item for `draw` (random bits), `offset` into each segment.
  virtual std::pair<Tensor, int64_t> train_frames(uint64_t draw, double offset) = 0;
  virtual int64_t test_count() const = 0;
  // Test item i at `offset`; an undefined tensor when the video is unreadable.
  virtual std::pair<Tensor, int64_t> test_frames(int64_t i, double offset) = 0;
  virtual int64_t classes() const = 0;
  virtual int64_t skipped() const { return 0; }
  // Throws when the data cannot give a run its test: called before the first training step.
  virtual void check_before_training() {}
  // Whether training flips clips horizontally (p = 0.5), and the label of a flipped clip.
  virtual bool flips() const = 0;
  virtual int64_t flipped_label(int64_t label) const { return label; }
};

// The generated set, rendered on the fly: an endless training stream and test clips from
// another seed. Flips map right/left and clockwise/anticlockwise.
class SyntheticSource : public ClipSource {
 public:
  SyntheticSource(uint64_t seed, int64_t test_clips, const ViewSpec& v)
      : seed_(seed), test_(test_clips), view_(v) {
    spec_.frames = kClipFrames;
    spec_.height = spec_.width = v.load_size;
  }
  std::pair<Tensor, int64_t> train_frames(uint64_t draw, double offset) override {
    // Consecutive indices are a clip and its reversal, which must not share a batch (BatchNorm
    // would compare them): indices are random.
    return {pick(data::render_clip(seed_ * 2 + 1, draw, spec_), offset), data::clip_label(draw)};
  }
  int64_t test_count() const override { return test_; }
  std::pair<Tensor, int64_t> test_frames(int64_t i, double offset) override {
    return {pick(data::render_clip(seed_ * 2 + 2, uint64_t(i), spec_), offset),
            data::clip_label(uint64_t(i))};
  }
  int64_t classes() const override { return 10; }
  bool flips() const override { return true; }
  int64_t flipped_label(int64_t label) const override { return data::flipped_label(label); }

 private:
  Tensor pick(const Tensor& clip, double offset) {
    return index_select(
        clip, 0, from_vector(data::segment_frames(kClipFrames, kSegments, view_.length, offset)));
  }
  uint64_t seed_;
  int64_t test_;
  ViewSpec view_;
  data::SyntheticVideoSpec spec_;
};

// Frame folders or video files named by annotation lists. A video that fails to decode is
// skipped with a warning naming it (once) and counted; training draws another.
class ListSource : public ClipSource {
 public:
  ListSource(const std::string& train_list, const std::string& test_list, const ViewSpec& v,
             int64_t test_limit, bool flips)
      : train_(data::read_video_list(train_list)),
        test_(data::read_video_list(test_list)),
        test_list_(test_list),
        view_(v),
        flips_(flips) {
    if (int64_t(test_.size()) > test_limit) test_.resize(size_t(test_limit));
    // Labels are below data::kMaxClasses (read_video_list checks), so the head stays small.
    for (const auto* list : {&train_, &test_})
      for (const auto& e : *list)
        classes_ = std::max(classes_, checked_add(e.label, 1, "video list: classes"));
  }
  std::pair<Tensor, int64_t> train_frames(uint64_t draw, double offset) override {
    for (int attempt = 0; attempt < 100; ++attempt) {
      const auto& e = train_[size_t((draw + uint64_t(attempt) * 7919) % train_.size())];
      Tensor v = load(e, offset);
      if (v.defined()) return {v, e.label};
    }
    throw Error("video: 100 videos in a row could not be read; see the warnings above");
  }
  int64_t test_count() const override { return int64_t(test_.size()); }
  std::pair<Tensor, int64_t> test_frames(int64_t i, double offset) override {
    const auto& e = test_[size_t(i)];
    return {load(e, offset), e.label};
  }
  int64_t classes() const override { return classes_; }
  int64_t skipped() const override { return int64_t(bad_.size()); }
  bool flips() const override { return flips_; }
  // A test set none of whose videos decodes would show only after training, as an empty test:
  // one test video must read (the training side fails at the first batch, before any step).
  void check_before_training() override {
    for (const auto& e : test_)
      if (load(e, 0.25).defined()) return;
    throw Error("video: none of the " + std::to_string(test_.size()) + " test videos of " +
                test_list_ + " can be read (see the warnings above)");
  }

 private:
  Tensor load(const data::VideoEntry& e, double offset) {
    if (bad_.count(e.path)) return {};
    try {
      // A video file's frames are counted once (a decoding pass), then reused.
      int64_t& counted = counts_.emplace(e.path, -1).first->second;
      return data::load_entry(e, offset, kSegments, view_.load_size, view_.length, &counted);
    } catch (const Error& err) {
      bad_.insert(e.path);
      std::fprintf(stderr, "warning: skipping %s (list line %lld): %s\n", e.path.c_str(),
                   (long long)e.line, err.what());
      return {};
    }
  }
  std::vector<data::VideoEntry> train_, test_;
  std::string test_list_;
  ViewSpec view_;
  bool flips_;
  int64_t classes_ = 0;
  std::set<std::string> bad_;
  std::map<std::string, int64_t> counts_;  // frames of each video file read so far
};

// Snippets [K * L, 3, load, load] -> the model's view of one clip, [K, C, size, size]: flipped
// if asked, cropped (by `crop`, or the centre when it is null) when the spec crops, and turned
// into RGB differences when L > 1.
Tensor finish_view(Tensor frames, const ViewSpec& v, bool flip, const data::CropBox* crop) {
  if (flip) frames = flip_width(frames);
  if (v.crop)
    frames =
        data::crop_resize(frames, crop ? *crop : data::center_crop(v.load_size, v.size), v.size);
  return v.length > 1 ? data::rgb_difference(frames, v.length) : frames;
}

// A test view: offsets 0.25 (view 0) and 0.75 (view 1) into each segment, centre crop.
Tensor test_view(ClipSource& source, const ViewSpec& v, int64_t i, int64_t view, int64_t* label) {
  auto [frames, l] = source.test_frames(i, view == 0 ? 0.25 : 0.75);
  *label = l;
  return frames.defined() ? finish_view(frames, v, false, nullptr) : frames;
}

struct Evaluation {
  int64_t classes = 0, clips = 0;
  double top1 = 0, pair_acc = 0, direction_acc = 0;
  std::vector<double> per_class;
  // (true, predicted) -> clips, the cells that occur: at most one a test clip, however many
  // classes there are.
  std::map<std::pair<int64_t, int64_t>, int64_t> confusion;
};

Tensor model_input(const Tensors& views, bool i3d) {
  Tensor x = stack(views, 0);  // [N, 8, 3, S, S]
  return i3d ? contiguous(permute(x, {0, 2, 1, 3, 4})) : x;
}

Evaluation evaluate(nn::Module& model, bool i3d, ClipSource& source, const ViewSpec& spec,
                    Device device) {
  NoGrad no_grad;
  model.eval();
  const int64_t k = source.classes();
  Evaluation e;
  e.classes = k;
  const int64_t chunk = 4, clips = source.test_count();
  for (int64_t at = 0; at < clips; at += chunk) {
    const int64_t n = std::min(chunk, clips - at);
    std::vector<Tensors> views(2);
    std::vector<int64_t> labels;
    for (int64_t i = 0; i < n; ++i) {
      int64_t label = 0;
      const Tensor v0 = test_view(source, spec, at + i, 0, &label);
      const Tensor v1 = test_view(source, spec, at + i, 1, &label);
      if (!v0.defined() || !v1.defined()) continue;  // unreadable: skipped and counted
      views[0].push_back(v0);
      views[1].push_back(v1);
      labels.push_back(label);
    }
    if (labels.empty()) continue;
    Tensor probs;
    for (const auto& v : views) {  // two views per clip, scores averaged
      Tensor p = softmax(model.forward(to(model_input(v, i3d), device)), 1);
      probs = probs.defined() ? probs + p : p;
    }
    const auto pred = to(argmax(probs, 1), Device::cpu()).to_vector<int64_t>();
    for (size_t i = 0; i < labels.size(); ++i) ++e.confusion[{labels[i], pred[i]}];
  }
  int64_t right = 0, pair_right = 0, total = 0;
  std::vector<int64_t> row(size_t(k), 0), diagonal(size_t(k), 0);
  for (const auto& [cell, n] : e.confusion) {
    const auto [t, p] = cell;
    row[size_t(t)] += n;
    total += n;
    if (p / 2 == t / 2) pair_right += n;
    if (p == t) {
      diagonal[size_t(t)] += n;
      right += n;
    }
  }
  for (int64_t t = 0; t < k; ++t)
    e.per_class.push_back(row[size_t(t)] ? double(diagonal[size_t(t)]) / double(row[size_t(t)])
                                         : 0.0);
  e.clips = total;
  e.top1 = total ? double(right) / double(total) : 0.0;
  e.pair_acc = total ? double(pair_right) / double(total) : 0.0;
  e.direction_acc = pair_right ? double(right) / double(pair_right) : 0.0;
  model.train();
  return e;
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

struct Batch {
  Tensor x, labels;
};

// --init-2d: the backbone from 2-D ResNet weights (torchvision names, or a spool checkpoint of
// a 2-D video model or of resnet18); I3D inflates them, the 2-D models take them as they are.
// The head keeps its initialisation.
void init_from_2d(nn::Module& model, const std::string& name, const std::string& path,
                  bool allow_nonfinite) {
  const TensorFile f = load_safetensors(path);
  check_finite(f, "--init-2d", allow_nonfinite);
  nn::NamedTensors state2d;
  for (const char* prefix : {"model.backbone.", "backbone.", "model.", ""}) {
    for (const auto& [n, t] : f.tensors)
      if (n.rfind(prefix, 0) == 0 && n.find("fc.") == std::string::npos &&
          n.rfind("cls_head.", 0) != 0 && n.rfind("model.cls_head.", 0) != 0 &&
          n.rfind("optimizer.", 0) != 0)
        state2d.emplace_back(n.substr(std::string(prefix).size()), t);
    bool found = false;
    for (const auto& [n, t] : state2d) found = found || n == "conv1.weight";
    if (found) break;
    state2d.clear();
  }
  if (state2d.empty())
    throw UsageError("--init-2d: " + path + " holds no ResNet backbone (no conv1.weight)");
  for (const auto& [n, t] : state2d)
    if (n == "conv1.weight" && t.dim() != 4)
      throw UsageError("--init-2d: " + path + ": conv1.weight is " + describe(t) +
                       "; expected 2-D weights [out, in, kh, kw]");
  nn::NamedTensors state;
  try {
    if (models::video_config(name).three_d) {
      state = models::inflate_2d(state2d, model, "backbone.");
    } else {
      std::map<std::string, Tensor> by_name;
      for (const auto& [n, t] : state2d) by_name["backbone." + n] = t;
      for (const auto& [n, t] : model.state_dict()) {
        auto it = by_name.find(n);
        Tensor w = it != by_name.end() ? it->second : t;
        // RGB differences take 3 (L - 1) channels: as TSN, the first conv's RGB kernels are
        // averaged over colour and repeated across the input channels.
        if (n == "backbone.conv1.weight" && w.dim() == 4 && t.dim() == 4 && w.size(1) == 3 &&
            t.size(1) != 3) {
          NoGrad no_grad;
          w = contiguous(expand(mean(to(w, t.dtype()), {1}, true), t.shape()));
        }
        state.emplace_back(n, w);
      }
    }
    model.load_state_dict(state);
  } catch (const Error& e) {
    throw UsageError(std::string("--init-2d: ") + path + ": " + e.what());
  }
  std::printf("--init-2d: backbone from %s (%zu tensors%s)\n", path.c_str(), state2d.size(),
              models::video_config(name).three_d ? ", inflated to 3-D" : "");
}

}  // namespace

int train_video(const TrainConfig& c) {
  ViewSpec spec;
  spec.length = c.diff_frames;  // 1 for RGB
  spec.size = spec.load_size = c.video_size;
  spec.crop = c.crop;
  if (c.crop) spec.load_size = (c.video_size * 8 + 6) / 7;  // 112 -> 128, as 224 -> 256
  std::unique_ptr<ClipSource> source;
  if (c.data == "synthetic") {
    source = std::make_unique<SyntheticSource>(c.seed, c.test_clips, spec);
  } else {
    std::string test_list = c.test_list;
    if (test_list.empty()) {
      test_list = (std::filesystem::path(c.data).parent_path() / "val.txt").string();
      std::error_code ec;
      if (!std::filesystem::is_regular_file(test_list, ec))
        throw UsageError("train: --data " + c.data +
                         ": no --test-list given and no val.txt beside it");
    }
    source = std::make_unique<ListSource>(c.data, test_list, spec, c.test_clips, c.flip);
  }
  source->check_before_training();
  Generator gen(c.seed);
  const int64_t in_channels = spec.length > 1 ? 3 * (spec.length - 1) : 3;
  auto model = make_video_model(c.model, c.video_width, &gen, source->classes(), in_channels);
  if (c.init_2d) init_from_2d(*model, c.model, *c.init_2d, c.allow_nonfinite);
  const bool i3d = models::video_config(c.model).three_d;
  if (c.device != Device::cpu()) model->to(c.device);  // before the optimizer takes its params
  nn::SGD opt(nn::decay_matrices_only(*model, 1e-4),
              {.lr = c.lr, .momentum = 0.9, .weight_decay = 0});
  const int64_t total = c.steps, warmup = std::max<int64_t>(1, total / 20);
  const nn::CosineSchedule schedule{c.lr, warmup, total, 0};
  std::printf(
      "%s: %lld parameters; %s, %lld classes, frames %lld x %lld, batch %lld%s\n", c.model.c_str(),
      (long long)model->num_parameters(),
      c.data == "synthetic" ? "generated clips" : c.data.c_str(), (long long)source->classes(),
      (long long)c.video_size, (long long)c.video_size, (long long)c.batch,
      c.time_limit > 0 ? (", time limit " + std::to_string(int(c.time_limit)) + " s").c_str() : "");
  // A batch is decoded on a background thread while the previous one trains. The random draws
  // (8 a clip: flip, offset, index (2), crop (4)) are taken on this thread first, so runs repeat
  // exactly.
  constexpr uint64_t kDraws = 8;
  auto make_batch = [&source, &c, &spec](RngState r) {
    Tensors views;
    std::vector<int64_t> labels;
    for (int64_t i = 0; i < c.batch; ++i) {
      auto u = [&](int64_t j) { return uniform_at(r, int64_t(kDraws) * i + j); };
      const uint64_t draw = uint64_t(u(2) * 4294967296.0) * 1024 + uint64_t(u(3) * 1024.0);
      auto [frames, label] = source->train_frames(draw, u(1));
      const bool flip = source->flips() && u(0) < 0.5;
      const data::CropBox crop = data::multiscale_crop(spec.load_size, u(4), u(5), u(6), u(7));
      views.push_back(finish_view(frames, spec, flip, &crop));
      labels.push_back(flip ? source->flipped_label(label) : label);
    }
    return Batch{stack(views, 0), from_vector(labels)};
  };
  // --checkpoint-policy: each step runs as the model's chain of stages under a memory plan (the
  // first batch profiled and planned), with the same losses and gradients as a plain step.
  std::optional<PlannedSteps> planned;
  if (!c.checkpoint_policy.empty()) planned.emplace(c.checkpoint_policy, c.memory_budget);
  LineLog log(c.log);
  Progress progress(total);
  model->train();
  const double t0 = now_seconds();
  double last_loss = NAN;
  int64_t step = 0;
  // Under a plan the step's memory is accounted to the byte, so the next batch is made on this
  // thread between steps (deferred) instead of alongside the step; its draws are taken at the
  // same point either way, so planned and plain runs see the same batches.
  const auto launch = planned ? std::launch::deferred : std::launch::async;
  std::future<Batch> next = std::async(launch, make_batch, gen.take(kDraws * uint64_t(c.batch)));
  for (; step < total; ++step) {
    const double elapsed = now_seconds() - t0;
    if (c.time_limit > 0 && elapsed >= c.time_limit) break;
    // With a time limit the cosine follows the elapsed share of it when that is further along.
    int64_t at = step;
    if (c.time_limit > 0) at = std::max(at, int64_t(double(total) * elapsed / c.time_limit));
    opt.set_lr(schedule.at(std::min(at, total - 1)));
    Batch b = next.get();
    if (step + 1 < total)
      next = std::async(launch, make_batch, gen.take(kDraws * uint64_t(c.batch)));
    Tensor x = to(b.x, c.device);  // clips are decoded on the cpu
    b.labels = to(b.labels, c.device);
    if (i3d) x = contiguous(permute(x, {0, 2, 1, 3, 4}));
    opt.zero_grad();
    if (planned) {
      Chain chain = i3d ? static_cast<models::I3d&>(*model).chain(x, b.labels)
                        : static_cast<models::SegmentNet&>(*model).chain(x, b.labels);
      last_loss = planned->step(chain, str(x.shape()), [&] { opt.zero_grad(); });
    } else {
      Tensor loss = cross_entropy(model->forward(x), b.labels);
      backward(loss);
      last_loss = loss.item();
    }
    check_diverged(log, step, last_loss);
    nn::clip_grad_norm(model->parameters(), 40.0);
    opt.step();
    if (step % c.log_every == 0)
      log.write(Json().add("step", step).add("loss", last_loss).add("lr", opt.lr()).str());
    char status[64];
    std::snprintf(status, sizeof status, "loss %.3f", last_loss);
    progress.update(step + 1, status);
  }
  if (next.valid()) next.wait();  // the prefetch must finish before the source is used again
  progress.finish();
  const double train_s = now_seconds() - t0;
  if (c.save) save_checkpoint(*c.save, c, *model, opt, step, gen);
  const Evaluation e = evaluate(*model, i3d, *source, spec, c.device);
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
  std::string line = Json()
                         .add("final", true)
                         .add("model", c.model)
                         .add("steps", step)
                         .add("train_seconds", train_s)
                         .add("loss", last_loss)
                         .add("test_clips", e.clips)
                         .add("skipped_videos", source->skipped())
                         .add("top1", e.top1)
                         .add("pair_acc", e.pair_acc)
                         .add("direction_acc", e.direction_acc)
                         .str();
  line.pop_back();  // the arrays join the flat object
  line += ", \"per_class\": " + json_array(e.per_class) + confusion + "}";
  log.write(line);
  log.commit();
  std::printf("%s\n", line.c_str());
  return 0;
}

}  // namespace spool::cli
