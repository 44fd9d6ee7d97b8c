// spool make-videos: writes the generated order-sensitive clips (data/synthetic_video.h) in the
// layout the action-recognition tools read: DIR/train/clip_NNNNNN/img_00001.jpg ... with
// DIR/train.txt ("clip_NNNNNN 16 label" lines), and the same for DIR/val, so `spool train
// --data DIR/train.txt` reads them through the real loader.
#include <cstdio>
#include <filesystem>
#include <tuple>

#include "data/synthetic_video.h"
#include "data/video_io.h"
#include "engine/files.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace spool::cli {

int cmd_make_videos(int argc, char** argv) {
  Args a(argc, argv, 2,
         {{"out", true, "the folder to write (required)"},
          {"clips", true, "training clips (default 1000)"},
          {"test-clips", true, "test clips (default 200)"},
          {"size", true, "frame side in pixels (default 112)"},
          {"seed", true, "the data set's seed"},
          {"motion", false,
           "the motion set: the ten classes and four motion-only ones (labels 10-13; train "
           "with --motion-only-from 10)"}},
         "make-videos");
  if (!a.has("out")) throw UsageError("make-videos: --out DIR is required");
  const std::string out = a.str("out", "");
  if (out.empty()) throw UsageError("make-videos: --out is empty (it names the folder to fill)");
  const int64_t clips = a.positive_int("clips", 1000), test = a.positive_int("test-clips", 200);
  const int64_t size = a.positive_int("size", 112);
  // Frames are rendered as f32 clips: 1024 x 1024 is 192 MB a clip of 16 frames.
  if (size < 8 || size > 1024)
    throw UsageError("make-videos: --size must be between 8 and 1024, not " + std::to_string(size));
  const uint64_t seed = a.seed("seed", 0);
  data::SyntheticVideoSpec spec;
  spec.height = spec.width = size;
  spec.motion_only = a.has("motion");
  // Both folders and both lists are checked before any clip is rendered.
  for (const char* split : {"train", "val"}) {
    std::error_code ec;
    std::filesystem::create_directories(out + "/" + split, ec);
    if (ec)
      throw UsageError("make-videos: --out: cannot create " + out + "/" + split + ": " +
                       ec.message());
    check_output_path(out + "/" + split + ".txt", "make-videos --out");
  }
  for (const auto& [split, n, s] :
       {std::tuple<const char*, int64_t, uint64_t>{"train", clips, 1}, {"val", test, 2}}) {
    const std::string dir = out + "/" + split, list = out + "/" + split + ".txt";
    // The list is written last, so a list on disk names only clips that are complete.
    std::string lines;
    for (int64_t i = 0; i < n; ++i) {
      // Training clips are drawn at random indices so a clip and its reversal rarely both
      // appear; the test clips are the first of their seed, as in `--data synthetic`.
      const uint64_t index = s == 1 ? uint64_t(i) * 7 + 3 * uint64_t(i / 10) : uint64_t(i);
      char name[32];
      std::snprintf(name, sizeof name, "clip_%06lld", (long long)i);
      lines += std::string(split) + "/" +
               data::write_clip_folder(dir, name, data::render_clip(seed * 2 + s, index, spec),
                                       data::clip_label(index, spec)) +
               "\n";
    }
    write_file(list, lines, "make-videos --out");
  }
  std::printf(
      "make-videos: %lld training and %lld test clips of 16 frames at %lld x %lld, %lld classes -> "
      "%s\n",
      (long long)clips, (long long)test, (long long)size, (long long)size,
      (long long)spec.classes(), out.c_str());
  return 0;
}

}  // namespace spool::cli
