// Optical flow on disk, stored as the action-recognition tools store it: for a video of T
// frames, T - 1 flow fields (frame t to t + 1), each as two 8-bit grayscale JPEGs beside one
// another in the entry's folder, flow_x_00001.jpg and flow_y_00001.jpg ..., the values clipped to
// +-kFlowBound pixels and mapped linearly onto 0..255 (0 pixels at 127.5). `spool extract-flow`
// writes them (TV-L1 or Farneback from OpenCV); the loaders read a flow folder like a frame
// folder, a snippet of L consecutive fields giving 2 L channels (x, y of each field in turn).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "data/video_io.h"
#include "engine/tensor.h"

namespace spool::data {

constexpr double kFlowBound = 20.0;

// A flow component in pixels -> its byte: round((clamp(v, -20, 20) + 20) * 255 / 40).
uint8_t flow_byte(float v);
// A byte as the model reads it: (b - 127.5) / 127.5, in [-1, 1] (flow / 20 up to rounding).
float flow_input(uint8_t b);

// The flow images of a folder: flow_x_* and flow_y_* (.jpg), each in name order. Equal, non-zero
// counts, or a spool::Error naming the folder.
std::pair<std::vector<std::string>, std::vector<std::string>> flow_files(const std::string& dir);

// Fields segment_frames(count, segments, length, offset) of a flow folder, read at size x size
// (bilinear, as load_frames): [segments * length, 2, size, size] f32, channel 0 the x component.
Tensor load_flow_entry(const VideoEntry& e, double offset, int64_t segments, int64_t size,
                       int64_t length);

}  // namespace spool::data
