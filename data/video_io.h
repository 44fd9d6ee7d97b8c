// Video data on disk, laid out as the common action-recognition tools lay it: an annotation list
// of `path label` or `path num_frames label` lines, each path a folder of JPEG frames (read in
// file-name order, decoded with libjpeg-turbo) or a video file (the common video containers, in
// any codec FFmpeg's libavcodec reads, converted to RGB with libswscale; docs/video.md lists the
// containers).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/files.h"
#include "engine/tensor.h"

namespace spool::data {

// Limits on input (docs/video.md, "Limits on input"). Each is checked before anything is sized or
// allocated from the number a file declares, and an error names the file (and the list line).
// - Labels are below kMaxClasses: the largest label sizes the classifier head.
// - A list's num_frames is at most kMaxListFrames (about 93 hours at 30 frames a second), and
//   its lines are at most kMaxListLine characters.
// - A JPEG or video frame is at most kMaxFrameSide pixels on a side and kMaxFramePixels in all
//   (8192 x 8192), as the file declares it; frames are decoded no larger than the caller asks.
// - A progressive (multi-scan) JPEG is at most kMaxProgressivePixels (4096 x 4096) and
//   kMaxJpegCoefficientBytes of DCT coefficients: libjpeg holds all of them, at full size,
//   whatever the scale it decodes to (16384 x 4096 at full colour resolution: 384 MiB).
constexpr int64_t kMaxClasses = 10000;
constexpr int64_t kMaxListFrames = 10'000'000;
constexpr int64_t kMaxListLine = 65536;
constexpr int64_t kMaxFrameSide = 16384;
constexpr int64_t kMaxFramePixels = int64_t(1) << 26;
constexpr int64_t kMaxProgressivePixels = int64_t(1) << 24;
constexpr int64_t kMaxJpegCoefficientBytes = int64_t(1) << 27;

struct VideoEntry {
  std::string path;     // absolute, or relative to the working directory
  int64_t frames = -1;  // from the list, or -1 (counted when read)
  int64_t label = 0;
  int64_t line = 0;
};

// Reads a list; relative paths are resolved against `root` (by default the list's folder). A
// malformed line, or a label or num_frames above its limit, raises spool::Error naming PATH:LINE.
// Every entry is checked to be a folder or a regular file (a pipe or a device is refused) before
// returning: the others raise one error listing them all (the first 20, and how many more).
std::vector<VideoEntry> read_video_list(const std::string& list_path, std::string root = "");

// JPEG files in libjpeg-turbo; a corrupt or unreadable file is an error naming it (never an
// abort: libjpeg's fatal errors are caught).
struct Image {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> rgb;  // height * width * 3
};
// Decoded whole (min_side 0), or at the smallest of libjpeg's scales 1/8, 2/8 ... 8/8 whose width
// and height are both at least min_side (or the image's own, when smaller): a frame is read at
// little more than the size it is resized to. A declared size above kMaxFrameSide or
// kMaxFramePixels (a progressive file: kMaxProgressivePixels or kMaxJpegCoefficientBytes) is
// refused, naming the file and the size, before anything is decoded.
Image read_jpeg(const std::string& path, int64_t min_side = 0);
// Compressed in memory and written through spool::write_file (atomic, engine/files.h).
void write_jpeg(const std::string& path, const Image& image, int quality = 90,
                Sync sync = Sync::durable);

// An 8-bit grayscale image (width * height bytes) as a single-component JPEG, written as
// write_jpeg writes.
void write_gray_jpeg(const std::string& path, int64_t width, int64_t height,
                     const std::vector<uint8_t>& gray, int quality = 90, Sync sync = Sync::durable);

// The frame files of a folder entry, in name order (*.jpg / *.jpeg).
std::vector<std::string> frame_files(const VideoEntry& e);

// Frames `which` of a video file (indices into its frames in the order the decoder returns them;
// any order, repeats allowed), as RGB, each scaled down to at most max_side x max_side (0: full
// size; a side already smaller is kept). Only these frames are converted, and decoding stops
// after the last of them. A file FFmpeg cannot open or decode, a container other than the video
// containers spool reads (a playlist or script naming other files: HLS, concat...; it is refused
// before anything it names is opened), a frame size above the limits, or an index past the end
// is an error naming the file (and FFmpeg's reason).
std::vector<Image> decode_video(const std::string& path, const std::vector<int64_t>& which,
                                int64_t max_side = 0);
// The number of frames decode_video numbers: every frame is decoded, none converted.
int64_t count_video_frames(const std::string& path);

// Frames `which` of an entry, normalised as the generated set ((v / 255 - 0.45) / 0.25) and
// resized (bilinear, as crop_resize) to size x size: [K, 3, size, size] f32. Each file is decoded
// at read_jpeg(file, size)'s scale. Flips and crops are applied to the result by the caller.
Tensor load_frames(const std::vector<std::string>& files, const std::vector<int64_t>& which,
                   int64_t size);
Tensor frames_to_tensor(const std::vector<const Image*>& frames, int64_t size);
// `segments` frame indices spread over a video of `frames` frames: one per segment of
// frames / segments, `offset` in [0, 1) of the way into each (TSN's sampling).
std::vector<int64_t> spread_frames(int64_t frames, int64_t segments, double offset);
// TSN's snippets: for each of `segments` segments (spread_frames), `length` consecutive frames
// starting at the segment's sampled frame, the start moved back so the snippet fits in the video
// (frames shorter than `length` repeat the last frame): segments * length indices, segment-major.
std::vector<int64_t> segment_frames(int64_t frames, int64_t segments, int64_t length,
                                    double offset);
// Either kind of entry: a folder of JPEG frames or a video file; segment_frames(T, segments,
// length, offset) of it: [segments * length, 3, size, size]. T is the number of frame files, or
// of frames the video decodes to (the list's num_frames is not trusted); counting a video takes a
// decoding pass, so a caller that reads an entry again passes `counted` (-1 at first): it is
// filled in, and used from then on.
Tensor load_entry(const VideoEntry& e, double offset_in_segment, int64_t segments, int64_t size,
                  int64_t length = 1, int64_t* counted = nullptr);

// TSN's RGB-difference modality: snippets [K * L, C, H, W] (L consecutive frames each) ->
// [K, C * (L - 1), H, W], the differences of consecutive frames (frame j + 1 - frame j, j = 0 ..
// L - 2) stacked along channels.
Tensor rgb_difference(const Tensor& snippets, int64_t length);

// A crop box in pixels of a frame (x, y: top-left corner; w, h: its size).
struct CropBox {
  double x = 0, y = 0, w = 0, h = 0;
};
// TSN's multi-scale crop on a base x base frame: width and height each base times one of 1,
// 0.875, 0.75, 0.66 (chosen by u_w and u_h in [0, 1), at most one step apart, as TSN's
// max_distort 1), the corner uniform over the frame by u_x and u_y.
CropBox multiscale_crop(int64_t base, double u_w, double u_h, double u_x, double u_y);
// The centred size x size box of a base x base frame.
CropBox center_crop(int64_t base, int64_t size);
// frames [M, C, H, W] f32 -> [M, C, size, size]: the box, resized bilinearly (pixel centres, as
// align_corners = false; samples clamped to the frame). A box that is the frame at the same size,
// or an integral box of the output size, copies pixels exactly.
Tensor crop_resize(const Tensor& frames, const CropBox& box, int64_t size);

// Writes rendered clips ([T, 3, H, W] normalised as above) as frame folders
// DIR/<name>/img_00001.jpg ... and returns the list line "<name> T label".
std::string write_clip_folder(const std::string& dir, const std::string& name, const Tensor& clip,
                              int64_t label);

}  // namespace spool::data
