#include "data/synthetic_video.h"

#include <algorithm>
#include <cmath>

#include "engine/checked.h"
#include "engine/factory.h"
#include "engine/philox.h"

namespace spool::data {

const char* const kMotionClasses[kMotionSetClasses] = {
    "right",         "left",      "down",       "up",          "clockwise",
    "anticlockwise", "growing",   "shrinking",  "approaching", "receding",
    "slow right",    "slow left", "fast right", "fast left"};

int64_t flipped_label(int64_t label) {
  switch (label) {
    case 0:
    case 1:
    case 4:
    case 5:
    case 10:
    case 11:
    case 12:
    case 13:
      return label ^ 1;
    default:
      return label;
  }
}

namespace {

// A counter-based stream of uniforms for one clip.
struct Draws {
  uint64_t seed, counter;
  int lane = 4;
  philox::Words w{};
  double uniform() {
    if (lane == 4) {
      w = philox::draw(counter++, seed);
      lane = 0;
    }
    return philox::open_unit(w.w[lane++]);
  }
  double range(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  double normal() {
    const double u1 = uniform(), u2 = uniform();
    return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
  }
};

struct Grating {
  double fx, fy, phase, amp, drift, colour[3];
};

// Inside test for the shape in its own frame (unit size): circle, square, triangle, or an "L"
// (asymmetric, so rotation shows on every kind but the circle, which gets a dot).
bool inside(int kind, double u, double v) {
  switch (kind) {
    case 0:  // disc with an off-centre notch so rotation is visible
      return u * u + v * v <= 1 && !((u - 0.5) * (u - 0.5) + v * v < 0.09);
    case 1:
      return std::abs(u) <= 0.8 && std::abs(v) <= 0.8;
    case 2:
      // vertices (0, -0.9), (0.85, 0.7), (-0.85, 0.7)
      return v <= 0.7 && v >= -0.9 + (1.6 / 0.85) * std::abs(u);
    default:  // L
      return (std::abs(u + 0.5) <= 0.35 && std::abs(v) <= 0.9) ||
             (std::abs(v - 0.55) <= 0.35 && std::abs(u) <= 0.85);
  }
}

}  // namespace

Tensor render_clip(uint64_t seed, uint64_t index, const SyntheticVideoSpec& s, Tensor* boxes) {
  SPOOL_CHECK(s.frames >= 2 && s.height >= 8 && s.width >= 8,
              "synthetic video: clips need at least 2 frames of 8 x 8 pixels");
  const int64_t values = checked_product(std::vector<int64_t>{s.frames, 3, s.height, s.width},
                                         "synthetic video: clip size");
  SPOOL_CHECK(values <= kMaxClipValues, "synthetic video: a clip of ", s.frames, " frames of ",
              s.height, " x ", s.width, " holds ", values, " values; at most ", kMaxClipValues,
              " (1 GiB of f32) are rendered");
  const int64_t label = clip_label(index, s), pair = label / 2;
  const bool reversed = label % 2 == 1;
  // The pair's draw: identical for both labels of a pair given the index's stream.
  Draws d{seed ^ 0x71d30c1dULL, (index / 2) << 20};
  const double w = double(s.width), h = double(s.height);
  // Background: two drifting colour gratings.
  Grating g[2];
  for (auto& gr : g) {
    const double freq = d.range(0.02, 0.12), angle = d.range(0, M_PI);
    gr = {freq * std::cos(angle), freq * std::sin(angle), d.range(0, 2 * M_PI),
          d.range(0.05, 0.15),    d.range(-0.3, 0.3),     {d.uniform(), d.uniform(), d.uniform()}};
  }
  const double base[3] = {d.range(0.3, 0.6), d.range(0.3, 0.6), d.range(0.3, 0.6)};
  // The shape: kind, colour (kept away from the background's mean), size, motion.
  int kind = int(d.uniform() * 4) % 4;
  double colour[3];
  for (double& c : colour) c = d.uniform() < 0.5 ? d.range(0.0, 0.15) : d.range(0.85, 1.0);
  double size = d.range(0.08, 0.16) * std::min(w, h);
  double cx0 = d.range(0.3, 0.7) * w, cy0 = d.range(0.3, 0.7) * h;
  const double travel = d.range(0.25, 0.45);  // of the frame, for the translating pairs
  const double turn = d.range(0.6, 1.4) * M_PI;
  const double grow = d.range(1.6, 2.4);
  const double angle0 = d.range(0, 2 * M_PI);
  if (pair == 0) cx0 = d.range(0.15, 0.3) * w;
  if (pair == 1) cy0 = d.range(0.15, 0.3) * h;
  if (pair == 4) cy0 = d.range(0.25, 0.4) * h;
  // The motion-only pairs: one kind, colour and size of object for every clip (its orientation
  // angle0 is drawn as for every class), from a uniform start on a track that wraps around the
  // left and right edges; slow moves 2 % of the width a frame, fast 6 %.
  const bool motion_only = pair >= 5;
  if (motion_only) {
    kind = 1;
    colour[0] = colour[1] = colour[2] = 0.95;
    size = 0.08 * std::min(w, h);
    cx0 = d.range(0, 1) * w;
    cy0 = d.range(0.3, 0.7) * h;
  }
  const double speed = (pair == 5 ? 0.02 : 0.06) * w;

  const int64_t t_n = s.frames;
  std::vector<float> out(size_t(t_n * 3 * s.height * s.width));
  std::vector<float> box(size_t(t_n * 4));
  Draws noise{seed ^ 0x5eed0a15eULL ^ (uint64_t(label) << 56), index << 24};
  for (int64_t f = 0; f < t_n; ++f) {
    // Progress along the forward motion; the reversed label plays the frames backwards.
    const int64_t src = reversed ? t_n - 1 - f : f;
    const double u = double(src) / double(t_n - 1);
    double cx = cx0, cy = cy0, scale = size, angle = angle0;
    switch (pair) {
      case 0:
        cx = cx0 + travel * w * u;
        break;
      case 1:
        cy = cy0 + travel * h * u;
        break;
      case 2:
        angle = angle0 + turn * u;  // y points down: increasing angle turns clockwise on screen
        break;
      case 3:
        scale = size * (1 + (grow - 1) * u);
        break;
      case 4: {  // approaching: size ~ 1 / distance, sliding down as it nears
        const double z = 1 - 0.55 * u;
        scale = size * 0.8 / z;
        cy = cy0 + 0.35 * h * (1 / z - 1);
        break;
      }
      default:  // slow or fast right: the track wraps, so cx stays in [0, w)
        cx = std::fmod(cx0 + speed * double(src), w);
        break;
    }
    const double ca = std::cos(angle), sa = std::sin(angle);
    // The object's extent in this frame, in pixel indices on the unwrapped track.
    double x_lo = HUGE_VAL, x_hi = -HUGE_VAL, y_lo = HUGE_VAL, y_hi = -HUGE_VAL;
    for (int64_t y = 0; y < s.height; ++y)
      for (int64_t x = 0; x < s.width; ++x) {
        // Rotate into the shape's frame; unit = scale.
        double px = double(x) - cx;
        if (motion_only) px -= w * std::round(px / w);  // the nearest copy on the wrapped track
        const double dx = px / scale, dy = (double(y) - cy) / scale;
        const double su = ca * dx + sa * dy, sv = -sa * dx + ca * dy;
        const bool in = std::abs(dx) <= 1.5 && std::abs(dy) <= 1.5 && inside(kind, su, sv);
        if (in) {
          x_lo = std::min(x_lo, std::round(cx + px));
          x_hi = std::max(x_hi, std::round(cx + px));
          y_lo = std::min(y_lo, double(y));
          y_hi = std::max(y_hi, double(y));
        }
        for (int ch = 0; ch < 3; ++ch) {
          double v;
          if (in) {
            v = colour[ch];
          } else {
            v = base[ch];
            for (const auto& gr : g)
              v += gr.amp * gr.colour[ch] *
                   std::sin(gr.fx * (double(x) + gr.drift * double(src)) +
                            gr.fy * (double(y) + gr.drift * double(src)) + gr.phase);
          }
          v += s.noise * noise.normal();
          v = std::clamp(v, 0.0, 1.0);
          out[size_t(((f * 3 + ch) * s.height + y) * s.width + x)] = float((v - 0.45) / 0.25);
        }
      }
    if (x_lo > x_hi) {  // not drawn: the zero-area box at the centre
      x_lo = std::round(cx);
      y_lo = std::round(cy);
      x_hi = x_lo - 1;
      y_hi = y_lo - 1;
    }
    const double edges[4] = {std::clamp(x_lo, 0.0, w), std::clamp(y_lo, 0.0, h),
                             std::clamp(x_hi + 1, 0.0, w), std::clamp(y_hi + 1, 0.0, h)};
    for (int k = 0; k < 4; ++k) box[size_t(f * 4 + k)] = float(edges[k]);
  }
  if (boxes) *boxes = from_vector(box, {t_n, 4});
  return from_vector(out, {t_n, 3, s.height, s.width});
}

}  // namespace spool::data
