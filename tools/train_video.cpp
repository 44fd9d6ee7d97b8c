// spool train --model tsn-r18|tsm-r18|trn-r18|i3d-r18 --data synthetic: action recognition on
// the generated order-sensitive clips (data/synthetic_video.h) with the video schedule (SGD with
// momentum 0.9, weight decay 1e-4, warm-up and cosine decay, gradient clipping at 40), fresh
// clips every step, flip augmentation that maps the labels it mirrors, and a multi-view test:
// top-1, per-class accuracy, the confusion matrix, and how often the direction is right when the
// motion pair is (the order test: TSN should sit near 0.5 there).
#include <cmath>
#include <cstdio>

#include "data/synthetic_video.h"
#include "engine/autograd.h"
#include "engine/factory.h"
#include "models/video.h"
#include "nn/optim.h"
#include "ops/ops.h"
#include "tools/cli.h"
#include "tools/train.h"

namespace spool::cli {

std::shared_ptr<nn::Module> make_video_model(const std::string& name, int64_t width,
                                             Generator* gen) {
  models::VideoConfig c = name == "tsm-r18"   ? models::tsm_r18()
                          : name == "trn-r18" ? models::trn_r18()
                          : name == "i3d-r18" ? models::i3d_r18()
                                              : models::tsn_r18();
  c.width = width;
  if (name == "i3d-r18") return std::make_shared<models::I3d>(c, gen);
  return std::make_shared<models::SegmentNet>(c, gen);
}

namespace {

constexpr int64_t kClipFrames = 16, kInputFrames = 8;

// One view of a clip [T, 3, H, W]: frame offset `offset` (0 or 1) of each pair of frames, so 8
// frames spread over the 16; flipped horizontally when asked. 2-D models take them as
// [K, 3, H, W] segments (TSN's one frame per segment), I3D as a [3, 8, H, W] clip.
Tensor view_of(const Tensor& clip, int64_t offset, bool flip, bool i3d) {
  Tensor v = slice(clip, 0, offset, kClipFrames, kClipFrames / kInputFrames);  // [8, 3, H, W]
  v = contiguous(v);
  if (flip) {
    const int64_t w = v.size(3);
    std::vector<int64_t> rev(static_cast<size_t>(w));
    for (int64_t i = 0; i < w; ++i) rev[size_t(i)] = w - 1 - i;
    v = index_select(v, 3, from_vector(rev));
  }
  return i3d ? contiguous(permute(v, {1, 0, 2, 3})) : v;
}

struct Evaluation {
  double top1 = 0, pair_acc = 0, direction_acc = 0;
  std::vector<double> per_class;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
};

Evaluation evaluate(nn::Module& model, bool i3d, uint64_t seed, int64_t clips,
                    const data::SyntheticVideoSpec& spec) {
  NoGrad no_grad;
  model.eval();
  Evaluation e;
  e.confusion.assign(10, std::vector<int64_t>(10, 0));
  const int64_t chunk = 4;
  for (int64_t at = 0; at < clips; at += chunk) {
    const int64_t n = std::min(chunk, clips - at);
    Tensor probs;
    for (int64_t offset = 0; offset < 2; ++offset) {  // two views per clip, scores averaged
      Tensors views;
      for (int64_t i = 0; i < n; ++i)
        views.push_back(
            view_of(data::render_clip(seed, uint64_t(at + i), spec), offset, false, i3d));
      Tensor p = softmax(model.forward(stack(views, 0)), 1);
      probs = probs.defined() ? probs + p : p;
    }
    const auto pred = argmax(probs, 1).to_vector<int64_t>();
    for (int64_t i = 0; i < n; ++i)
      ++e.confusion[size_t(data::clip_label(uint64_t(at + i)))][size_t(pred[size_t(i)])];
  }
  int64_t right = 0, pair_right = 0, total = 0;
  for (int64_t t = 0; t < 10; ++t) {
    int64_t row = 0;
    for (int64_t p = 0; p < 10; ++p) {
      row += e.confusion[size_t(t)][size_t(p)];
      if (p / 2 == t / 2) pair_right += e.confusion[size_t(t)][size_t(p)];
    }
    right += e.confusion[size_t(t)][size_t(t)];
    total += row;
    e.per_class.push_back(row ? double(e.confusion[size_t(t)][size_t(t)]) / double(row) : 0.0);
  }
  e.top1 = double(right) / double(total);
  e.pair_acc = double(pair_right) / double(total);
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

}  // namespace

int train_video(const TrainConfig& c) {
  if (c.data != "synthetic")
    throw UsageError("train: --data '" + c.data +
                     "': the video models train on --data synthetic in this version");
  Generator gen(c.seed);
  auto model = make_video_model(c.model, c.video_width, &gen);
  const bool i3d = c.model == "i3d-r18";
  data::SyntheticVideoSpec spec;
  spec.frames = kClipFrames;
  spec.height = spec.width = c.video_size;
  nn::SGD opt(nn::decay_matrices_only(*model, 1e-4),
              {.lr = c.lr, .momentum = 0.9, .weight_decay = 0});
  const int64_t total = c.steps, warmup = std::max<int64_t>(1, total / 20);
  const nn::CosineSchedule schedule{c.lr, warmup, total, 0};
  std::printf(
      "%s: %lld parameters; synthetic clips %lld x %lld, %lld frames, batch %lld%s\n",
      c.model.c_str(), (long long)model->num_parameters(), (long long)c.video_size,
      (long long)c.video_size, (long long)kClipFrames, (long long)c.batch,
      c.time_limit > 0 ? (", time limit " + std::to_string(int(c.time_limit)) + " s").c_str() : "");
  JsonlLog log(c.log);
  Progress progress(total);
  model->train();
  const double t0 = now_seconds();
  double last_loss = NAN;
  int64_t step = 0;
  const uint64_t train_seed = c.seed * 2 + 1, test_seed = c.seed * 2 + 2;
  for (; step < total; ++step) {
    const double elapsed = now_seconds() - t0;
    if (c.time_limit > 0 && elapsed >= c.time_limit) break;
    // With a time limit the cosine follows the elapsed share of it when that is further along.
    int64_t at = step;
    if (c.time_limit > 0) at = std::max(at, int64_t(double(total) * elapsed / c.time_limit));
    opt.set_lr(schedule.at(std::min(at, total - 1)));
    const RngState r = gen.take(uint64_t(4 * c.batch));
    Tensors views;
    std::vector<int64_t> labels;
    for (int64_t i = 0; i < c.batch; ++i) {
      // A random clip of the endless training set: consecutive indices are a clip and its
      // reversal, which must not share a batch (BatchNorm would compare them).
      const uint64_t index = uint64_t(uniform_at(r, 4 * i + 2) * 4294967296.0) * 1024 +
                             uint64_t(uniform_at(r, 4 * i + 3) * 1024.0);
      const bool flip = uniform_at(r, 4 * i) < 0.5;
      const int64_t offset = uniform_at(r, 4 * i + 1) < 0.5 ? 0 : 1;
      views.push_back(view_of(data::render_clip(train_seed, index, spec), offset, flip, i3d));
      const int64_t label = data::clip_label(index);
      labels.push_back(flip ? data::flipped_label(label) : label);
    }
    opt.zero_grad();
    Tensor loss = cross_entropy(model->forward(stack(views, 0)), from_vector(labels));
    backward(loss);
    nn::clip_grad_norm(model->parameters(), 40.0);
    opt.step();
    last_loss = loss.item();
    if (step % c.log_every == 0)
      log.write(Json().add("step", step).add("loss", last_loss).add("lr", opt.lr()).str());
    char status[64];
    std::snprintf(status, sizeof status, "loss %.3f", last_loss);
    progress.update(step + 1, status);
  }
  progress.finish();
  const double train_s = now_seconds() - t0;
  if (c.save) save_checkpoint(*c.save, c, *model, opt, step, gen);
  const Evaluation e = evaluate(*model, i3d, test_seed, c.test_clips, spec);
  std::string confusion = "[";
  for (size_t t = 0; t < 10; ++t) {
    std::vector<double> row(e.confusion[t].begin(), e.confusion[t].end());
    confusion += (t ? ", " : "") + json_array(row);
  }
  confusion += "]";
  std::string line = Json()
                         .add("final", true)
                         .add("model", c.model)
                         .add("steps", step)
                         .add("train_seconds", train_s)
                         .add("loss", last_loss)
                         .add("test_clips", c.test_clips)
                         .add("top1", e.top1)
                         .add("pair_acc", e.pair_acc)
                         .add("direction_acc", e.direction_acc)
                         .str();
  line.pop_back();  // the arrays join the flat object
  line += ", \"per_class\": " + json_array(e.per_class) + ", \"confusion\": " + confusion + "}";
  log.write(line);
  log.commit();
  std::printf("%s\n", line.c_str());
  return 0;
}

}  // namespace spool::cli
