// The order-sensitive video data set, generated: short clips in which a shape of random kind,
// colour, size and speed moves over a textured, drifting, noisy background. Ten classes in five
// pairs, each pair one motion played forwards (even label) and backwards (odd label): right /
// left, down / up, clockwise / anticlockwise rotation, growing / shrinking, approaching (growing
// faster and faster while sliding down, as on a ground plane) / receding. A clip of label 2p + 1
// is the time-reversal of a clip drawn exactly as for label 2p, so the frames of the two labels
// have the same distribution: no single frame, and no order-blind average of frames, tells a
// pair apart.
//
// The motion set (SyntheticVideoSpec::motion_only) adds four motion-only classes in two more
// pairs: slow right / slow left and fast right / fast left. Their object is drawn alike in every
// clip (a light square of one size, at a random orientation) and wraps around the frame's left
// and right edges from a uniform start, so its place in any one frame is uniform whatever the
// class: only the speed (across the pairs) and the direction (within a pair) tell them apart, and a
// model that reads single frames, or an order-blind average of them, is at chance (1/4) among the
// four.
#pragma once
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace spool::data {

// Class names: the ten of the order set, then the motion set's four motion-only classes.
constexpr int64_t kOrderClasses = 10, kMotionSetClasses = 14;
extern const char* const kMotionClasses[kMotionSetClasses];

struct SyntheticVideoSpec {
  int64_t frames = 16;  // T
  int64_t height = 112, width = 112;
  double noise = 0.06;       // per-pixel Gaussian noise of each frame (values in [0, 1])
  bool motion_only = false;  // the motion set: the four motion-only classes after the ten
  int64_t classes() const { return motion_only ? kMotionSetClasses : kOrderClasses; }
};

// Clip `index` of the data set with seed `seed`: frames [T, 3, H, W] f32, normalised to about
// zero mean and unit variance ((v - 0.45) / 0.25); the label is index % spec.classes(). A spec
// of more than kMaxClipValues values is refused. With `boxes`, also the object's box in each
// frame, [T, 4] f32 (x1, y1, x2, y2) in pixel edges (pixel x covers [x, x + 1)): the smallest
// box holding every pixel the object covers. A motion-only object that wraps around an edge is
// boxed where its centre is, clipped to the frame (its part across the edge is left out); a
// frame the object does not reach has the zero-area box at its centre, clipped.
constexpr int64_t kMaxClipValues = int64_t(1) << 28;
Tensor render_clip(uint64_t seed, uint64_t index, const SyntheticVideoSpec& spec,
                   Tensor* boxes = nullptr);
inline int64_t clip_label(uint64_t index, const SyntheticVideoSpec& spec) {
  return int64_t(index % uint64_t(spec.classes()));
}

// A horizontal flip turns right into left (at either speed) and clockwise into anticlockwise:
// the label a flipped clip of `label` has.
int64_t flipped_label(int64_t label);

}  // namespace spool::data
