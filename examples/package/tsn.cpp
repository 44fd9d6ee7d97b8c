// TSN (a 2-D ResNet-18 over K segments, average consensus) trained through the installed
// headers on clips of spool's synthetic motion data set. A small width and 32x32 frames keep it
// to seconds on a CPU; the standard configuration is models::tsn_r18() as it stands.
// Exit status 0 when the training loss on the fixed batch fell below half its first value.
#include <cstdio>

#include "data/synthetic_video.h"
#include "engine/factory.h"
#include "models/video.h"
#include "nn/optim.h"
#include "ops/ops.h"

using namespace spool;

int main() {
  models::VideoConfig c = models::tsn_r18();
  c.segments = 4;
  c.width = 16;
  c.dropout = 0;
  Generator gen(0);
  models::SegmentNet net(c, &gen);
  net.train();
  nn::AdamW opt(net.parameters(), {.lr = 3e-3});

  // Eight clips, one per label 0..7: frames [N, K, 3, H, W], labels [N].
  data::SyntheticVideoSpec spec{.frames = c.segments, .height = 32, .width = 32};
  Tensors clips;
  std::vector<int64_t> labels;
  for (uint64_t i = 0; i < 8; ++i) {
    clips.push_back(data::render_clip(/*seed=*/7, i, spec));
    labels.push_back(data::clip_label(i, spec));
  }
  const Tensor frames = stack(clips, 0), y = from_vector(labels);

  double first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    opt.zero_grad();
    Tensor loss = cross_entropy(net.forward(frames), y);
    backward(loss);
    opt.step();
    last = loss.item();
    if (step == 0) first = last;
    if (step % 10 == 0) std::printf("step %2d  loss %.4f\n", step, last);
  }
  std::printf("tsn: loss %.4f -> %.4f\n", first, last);
  return last < 0.5 * first ? 0 : 1;
}
