#include "data/clips.h"

#include <algorithm>
#include <cstdio>

#include "data/flow.h"
#include "engine/checked.h"
#include "engine/error.h"
#include "engine/factory.h"
#include "ops/ops.h"

namespace spool::data {

namespace {

Tensor flip_width(const Tensor& v) {
  const int64_t w = v.size(3);
  std::vector<int64_t> rev(static_cast<size_t>(w));
  for (int64_t i = 0; i < w; ++i) rev[size_t(i)] = w - 1 - i;
  return index_select(v, 3, from_vector(rev));
}

}  // namespace

SyntheticSource::SyntheticSource(uint64_t seed, int64_t test_clips, const ViewSpec& v,
                                 bool motion_only)
    : seed_(seed), test_(test_clips), view_(v) {
  SPOOL_CHECK(!v.flow,
              "the generated clips carry no optical flow: write them with spool make-videos, "
              "extract their flow with spool extract-flow, and train on the flow lists");
  spec_.frames = kSyntheticFrames;
  spec_.height = spec_.width = v.load_size;
  spec_.motion_only = motion_only;
}

SourceClip SyntheticSource::train_frames(uint64_t draw, double offset) {
  // Consecutive indices are a clip and its reversal, which must not share a batch (BatchNorm
  // would compare them): indices are random.
  return pick(seed_ * 2 + 1, draw, offset);
}

SourceClip SyntheticSource::test_frames(int64_t i, double offset) {
  return pick(seed_ * 2 + 2, uint64_t(i), offset);
}

SourceClip SyntheticSource::pick(uint64_t seed, uint64_t index, double offset) const {
  Tensor boxes;
  const Tensor clip = render_clip(seed, index, spec_, &boxes);
  const Tensor frames =
      from_vector(segment_frames(kSyntheticFrames, kClipSegments, view_.length, offset));
  return {index_select(clip, 0, frames), clip_label(index, spec_), index_select(boxes, 0, frames)};
}

ListSource::ListSource(const std::string& train_list, const std::string& test_list,
                       const ViewSpec& v, int64_t test_limit, bool flips, int64_t motion_only_from)
    : train_(read_video_list(train_list)),
      test_(read_video_list(test_list)),
      test_list_(test_list),
      view_(v),
      flips_(flips),
      motion_only_from_(motion_only_from) {
  if (int64_t(test_.size()) > test_limit) test_.resize(size_t(test_limit));
  // Labels are below kMaxClasses (read_video_list checks), so the head stays small.
  for (const auto* list : {&train_, &test_})
    for (const auto& e : *list)
      classes_ = std::max(classes_, checked_add(e.label, 1, "video list: classes"));
  SPOOL_CHECK(motion_only_from_ < classes_, "video list: the motion-only classes start at ",
              motion_only_from_, ", but the lists' labels end at ", classes_ - 1);
}

SourceClip ListSource::train_frames(uint64_t draw, double offset) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    const auto& e = train_[size_t((draw + uint64_t(attempt) * 7919) % train_.size())];
    Tensor v = load(e, offset);
    if (v.defined()) return {v, e.label, {}};
  }
  throw Error("video: 100 videos in a row could not be read; see the warnings above");
}

SourceClip ListSource::test_frames(int64_t i, double offset) {
  const auto& e = test_[size_t(i)];
  return {load(e, offset), e.label, {}};
}

void ListSource::check_before_training() {
  for (const auto& e : test_)
    if (load(e, 0.25).defined()) return;
  throw Error("video: none of the " + std::to_string(test_.size()) + " test videos of " +
              test_list_ + " can be read (see the warnings above)");
}

Tensor ListSource::load(const VideoEntry& e, double offset) {
  if (bad_.count(e.path)) return {};
  try {
    // A video file's frames are counted once (a decoding pass), then reused.
    if (view_.flow) return load_flow_entry(e, offset, kClipSegments, view_.load_size, view_.length);
    int64_t& counted = counts_.emplace(e.path, -1).first->second;
    return load_entry(e, offset, kClipSegments, view_.load_size, view_.length, &counted);
  } catch (const Error& err) {
    bad_.insert(e.path);
    std::fprintf(stderr, "warning: skipping %s (list line %lld): %s\n", e.path.c_str(),
                 (long long)e.line, err.what());
    return {};
  }
}

namespace {

// Boxes [M, 4] (x1, y1, x2, y2) in the pixel edges of a base x base frame -> the same boxes after
// the view's flip and crop, in the pixels of its size x size output, clipped to it.
Tensor view_boxes(const Tensor& boxes, const ViewSpec& v, bool flip, const CropBox* crop) {
  SPOOL_CHECK(boxes.dim() == 2 && boxes.size(1) == 4, "clips: object boxes ", describe(boxes),
              " must be [frames, 4]");
  std::vector<float> b = to(boxes, DType::f32).to_vector<float>();
  const double base = double(v.load_size);
  CropBox box{0, 0, base, base};
  if (v.crop) box = crop ? *crop : center_crop(v.load_size, v.size);
  const double out = double(v.crop ? v.size : v.load_size);
  for (size_t i = 0; i < b.size(); i += 4) {
    double x1 = b[i], y1 = b[i + 1], x2 = b[i + 2], y2 = b[i + 3];
    if (flip) {  // pixel x moves to base - 1 - x: the edges [x1, x2) to [base - x2, base - x1)
      const double f1 = base - x2, f2 = base - x1;
      x1 = f1;
      x2 = f2;
    }
    auto map = [&](double z, double origin, double extent) {
      return std::clamp((z - origin) * out / extent, 0.0, out);
    };
    b[i] = float(map(x1, box.x, box.w));
    b[i + 1] = float(map(y1, box.y, box.h));
    b[i + 2] = float(map(x2, box.x, box.w));
    b[i + 3] = float(map(y2, box.y, box.h));
  }
  return from_vector(b, boxes.shape());
}

}  // namespace

Tensor finish_view(Tensor frames, const ViewSpec& v, bool flip, const CropBox* crop,
                   Tensor* boxes) {
  if (boxes && boxes->defined())
    *boxes = v.length == 1 && !v.flow ? view_boxes(*boxes, v, flip, crop) : Tensor();
  if (flip) {
    frames = flip_width(frames);
    // Mirrored, a field's horizontal motion changes sign.
    if (v.flow) frames = cat({neg(narrow(frames, 1, 0, 1)), narrow(frames, 1, 1, 1)}, 1);
  }
  if (v.crop) frames = crop_resize(frames, crop ? *crop : center_crop(v.load_size, v.size), v.size);
  if (v.raw || v.flow)  // [K L, c, H, W] -> [K, c L, H, W]: each snippet's frames along channels
    return reshape(contiguous(frames), {frames.size(0) / v.length, frames.size(1) * v.length,
                                        frames.size(2), frames.size(3)});
  return v.length > 1 ? rgb_difference(frames, v.length) : frames;
}

Tensor test_view(ClipSource& source, const ViewSpec& v, int64_t i, int64_t view, int64_t* label,
                 Tensor* boxes) {
  SourceClip c = source.test_frames(i, view == 0 ? 0.25 : 0.75);
  *label = c.label;
  if (!c.frames.defined()) return c.frames;
  const Tensor x = finish_view(c.frames, v, false, nullptr, &c.boxes);
  if (boxes) *boxes = c.boxes;
  return x;
}

ClipBatch train_batch(ClipSource& source, const ViewSpec& v, int64_t batch, RngState r) {
  Tensors views, boxes;
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < batch; ++i) {
    auto u = [&](int64_t j) { return uniform_at(r, int64_t(kDrawsPerClip) * i + j); };
    const uint64_t draw = uint64_t(u(2) * 4294967296.0) * 1024 + uint64_t(u(3) * 1024.0);
    SourceClip c = source.train_frames(draw, u(1));
    const bool flip = source.flips() && u(0) < 0.5;
    const CropBox crop = multiscale_crop(v.load_size, u(4), u(5), u(6), u(7));
    views.push_back(finish_view(c.frames, v, flip, &crop, &c.boxes));
    if (c.boxes.defined()) boxes.push_back(c.boxes);
    labels.push_back(flip ? source.flipped_label(c.label) : c.label);
  }
  return ClipBatch{stack(views, 0), from_vector(labels),
                   int64_t(boxes.size()) == batch ? stack(boxes, 0) : Tensor()};
}

ClipScores score_clips(std::map<std::pair<int64_t, int64_t>, int64_t> confusion, int64_t classes,
                       int64_t motion_only_from) {
  ClipScores e;
  e.classes = classes;
  e.confusion = std::move(confusion);
  int64_t right = 0, pair_right = 0, total = 0, motion_right = 0;
  std::vector<int64_t> row(size_t(classes), 0), diagonal(size_t(classes), 0);
  for (const auto& [cell, n] : e.confusion) {
    const auto [t, p] = cell;
    SPOOL_CHECK(t >= 0 && t < classes && p >= 0 && p < classes, "score_clips: the cell (", t, ", ",
                p, ") is outside ", classes, " classes");
    row[size_t(t)] += n;
    total += n;
    if (p / 2 == t / 2) pair_right += n;
    if (motion_only_from >= 0 && t >= motion_only_from) {
      e.motion_only_clips += n;
      if (p == t) motion_right += n;
    }
    if (p == t) {
      diagonal[size_t(t)] += n;
      right += n;
    }
  }
  for (int64_t t = 0; t < classes; ++t)
    e.per_class.push_back(row[size_t(t)] ? double(diagonal[size_t(t)]) / double(row[size_t(t)])
                                         : 0.0);
  e.clips = total;
  e.top1 = total ? double(right) / double(total) : 0.0;
  e.pair_acc = total ? double(pair_right) / double(total) : 0.0;
  e.direction_acc = pair_right ? double(right) / double(pair_right) : 0.0;
  e.motion_only_acc =
      e.motion_only_clips ? double(motion_right) / double(e.motion_only_clips) : 0.0;
  return e;
}

}  // namespace spool::data
