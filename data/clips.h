// Clips for the video models: where they come from (the generated order-sensitive set, or frame
// folders and video files named by annotation lists), how one becomes a model's view (segments,
// snippets, flips, crops, RGB differences), the training batches drawn from random bits, and
// the scores of a multi-view test (top-1, per class, the confusion, the order test's pair and
// direction accuracies).
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "data/synthetic_video.h"
#include "data/video_io.h"
#include "engine/rng.h"
#include "engine/tensor.h"

namespace spool::data {

// Every clip is read as K = 8 segments; a generated clip has 16 frames.
constexpr int64_t kClipSegments = 8, kSyntheticFrames = 16;

// How a clip becomes the model's input: K segments, each a snippet of `length` consecutive
// frames (1 for RGB; TSN's RGB difference takes L frames and their L - 1 differences), read at
// `load_size`, then cropped to `size` (a multi-scale crop in training, the centre at test) when
// `crop` is set (load_size is then size * 8 / 7, as 128 for 112).
struct ViewSpec {
  int64_t length = 1;
  int64_t size = 112, load_size = 112;
  bool crop = false;
  // The snippet's frames as they are, stacked along channels (TDN takes its own differences),
  // instead of their RGB differences.
  bool raw = false;
  // Optical flow (data/flow.h) instead of RGB: L consecutive flow fields a segment, their x and
  // y components stacked along channels (TSN's temporal stream). Lists only.
  bool flow = false;
  // The channels a segment gives the model: 3 for RGB, 3 (L - 1) for RGB differences, 3 L for
  // raw snippets, 2 L for flow.
  int64_t channels() const {
    return flow ? 2 * length : raw ? 3 * length : length > 1 ? 3 * (length - 1) : 3;
  }
};

// One clip as a source gives it: the raw snippets [K * L, 3, load, load], the label and, where
// the source knows them (the generated set), the object's box in each frame, [K * L, 4] f32
// (x1, y1, x2, y2 in pixel edges of the load-size frame); undefined otherwise.
struct SourceClip {
  Tensor frames;
  int64_t label = 0;
  Tensor boxes;
};

// Where clips come from: the raw snippets and labels (and the generated set's object boxes).
class ClipSource {
 public:
  virtual ~ClipSource() = default;
  // Training item for `draw` (random bits), `offset` into each segment.
  virtual SourceClip train_frames(uint64_t draw, double offset) = 0;
  virtual int64_t test_count() const = 0;
  // Test item i at `offset`; undefined frames when the video is unreadable.
  virtual SourceClip test_frames(int64_t i, double offset) = 0;
  // Whether every clip comes with its object boxes.
  virtual bool has_boxes() const { return false; }
  virtual int64_t classes() const = 0;
  virtual int64_t skipped() const { return 0; }
  // Throws when the data cannot give a run its test: called before the first training step.
  virtual void check_before_training() {}
  // Whether training flips clips horizontally (p = 0.5), and the label of a flipped clip.
  virtual bool flips() const = 0;
  virtual int64_t flipped_label(int64_t label) const { return label; }
  // The first of the motion-only classes, which run to the last (the generated motion set's
  // 10-13); -1 when the data has none.
  virtual int64_t motion_only_from() const { return -1; }
};

// The generated set, rendered on the fly: an endless training stream and test clips from
// another seed. Flips map right/left and clockwise/anticlockwise. `motion_only` gives the motion
// set (data/synthetic_video.h): the ten classes and the four motion-only ones.
class SyntheticSource : public ClipSource {
 public:
  SyntheticSource(uint64_t seed, int64_t test_clips, const ViewSpec& v, bool motion_only = false);
  SourceClip train_frames(uint64_t draw, double offset) override;
  int64_t test_count() const override { return test_; }
  SourceClip test_frames(int64_t i, double offset) override;
  bool has_boxes() const override { return true; }
  int64_t classes() const override { return spec_.classes(); }
  bool flips() const override { return true; }
  int64_t flipped_label(int64_t label) const override { return data::flipped_label(label); }
  int64_t motion_only_from() const override { return spec_.motion_only ? kOrderClasses : -1; }

 private:
  SourceClip pick(uint64_t seed, uint64_t index, double offset) const;
  uint64_t seed_;
  int64_t test_;
  ViewSpec view_;
  SyntheticVideoSpec spec_;
};

// Frame folders or video files named by annotation lists (the first `test_limit` entries of the
// test list are the test). A video that fails to decode is skipped with a warning naming it
// (once) and counted; training draws another.
class ListSource : public ClipSource {
 public:
  // `motion_only_from`: the first motion-only class, or -1 (as ClipSource says).
  ListSource(const std::string& train_list, const std::string& test_list, const ViewSpec& v,
             int64_t test_limit, bool flips, int64_t motion_only_from = -1);
  SourceClip train_frames(uint64_t draw, double offset) override;
  int64_t test_count() const override { return int64_t(test_.size()); }
  SourceClip test_frames(int64_t i, double offset) override;
  int64_t classes() const override { return classes_; }
  int64_t skipped() const override { return int64_t(bad_.size()); }
  bool flips() const override { return flips_; }
  int64_t motion_only_from() const override { return motion_only_from_; }
  // A test set none of whose videos decodes would show only after training, as an empty test:
  // one test video must read (the training side fails at the first batch, before any step).
  void check_before_training() override;

 private:
  Tensor load(const VideoEntry& e, double offset);
  std::vector<VideoEntry> train_, test_;
  std::string test_list_;
  ViewSpec view_;
  bool flips_;
  int64_t classes_ = 0, motion_only_from_ = -1;
  std::set<std::string> bad_;
  std::map<std::string, int64_t> counts_;  // frames of each video file read so far
};

// Snippets [K * L, 3, load, load] (flow: [K * L, 2, load, load]) -> the model's view of one clip,
// [K, C, size, size]: flipped if asked (a flipped flow field also has its x component negated),
// cropped (by `crop`, or the centre when it is null) when the spec crops, and turned into RGB
// differences when L > 1 (raw snippets and flow: the L frames or fields stacked along channels).
// `boxes` ([K, 4] in load-size pixel edges, L = 1 only), when given and defined, go through the
// same flip and crop: the view's boxes in its own pixels, clipped to it.
Tensor finish_view(Tensor frames, const ViewSpec& v, bool flip, const CropBox* crop,
                   Tensor* boxes = nullptr);

// Test view `view` of test item i: offsets 0.25 (view 0) and 0.75 (view 1) into each segment,
// centre crop. Undefined when the video is unreadable. `boxes`, when given, receives the view's
// object boxes [K, 4] where the source has them (L = 1).
Tensor test_view(ClipSource& source, const ViewSpec& v, int64_t i, int64_t view, int64_t* label,
                 Tensor* boxes = nullptr);

// A training batch: views [N, K, C, S, S], labels [N] and, where the source gives them and the
// view is one frame a segment, the object boxes [N, K, 4] in the view's pixels.
struct ClipBatch {
  Tensor x, labels, boxes;
};
// The random draws one training clip takes (flip, offset, index (2), crop (4)).
constexpr uint64_t kDrawsPerClip = 8;
// A batch of `batch` clips from the draws of `r` (kDrawsPerClip each), so a batch depends on
// those bits only and can be made on another thread.
ClipBatch train_batch(ClipSource& source, const ViewSpec& v, int64_t batch, RngState r);

// The test's scores from its (true, predicted) -> clips counts. The classes come in pairs that
// differ only in direction (2k, 2k + 1), as the generated set's: pair_acc counts predictions in
// the right pair, direction_acc the right class among those. With `motion_only_from` >= 0,
// motion_only_acc is the top-1 among the clips whose class is that one or above (the
// motion-only classes), over motion_only_clips clips.
struct ClipScores {
  int64_t classes = 0, clips = 0, motion_only_clips = 0;
  double top1 = 0, pair_acc = 0, direction_acc = 0, motion_only_acc = 0;
  std::vector<double> per_class;
  std::map<std::pair<int64_t, int64_t>, int64_t> confusion;  // the cells that occur
};
ClipScores score_clips(std::map<std::pair<int64_t, int64_t>, int64_t> confusion, int64_t classes,
                       int64_t motion_only_from = -1);

}  // namespace spool::data
