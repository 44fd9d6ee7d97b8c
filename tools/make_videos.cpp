// spool make-videos: writes the generated order-sensitive clips (data/synthetic_video.h) in the
// layout the action-recognition tools read: DIR/train/clip_NNNNNN/img_00001.jpg ... with
// DIR/train.txt ("clip_NNNNNN 16 label" lines), and the same for DIR/val, so `spool train
// --data DIR/train.txt` reads them through the real loader.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <tuple>

#include "data/synthetic_video.h"
#include "data/video_io.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace spool::cli {

int cmd_make_videos(int argc, char** argv) {
  Args a(argc, argv, 2,
         {{"out", true}, {"clips", true}, {"test-clips", true}, {"size", true}, {"seed", true}},
         "make-videos");
  if (!a.has("out")) throw UsageError("make-videos: --out DIR is required");
  const std::string out = a.str("out", "");
  const int64_t clips = a.positive_int("clips", 1000), test = a.positive_int("test-clips", 200);
  const int64_t size = a.positive_int("size", 112);
  if (size < 8) throw UsageError("make-videos: --size must be at least 8");
  const uint64_t seed = a.seed("seed", 0);
  data::SyntheticVideoSpec spec;
  spec.height = spec.width = size;
  for (const auto& [split, n, s] :
       {std::tuple<const char*, int64_t, uint64_t>{"train", clips, 1}, {"val", test, 2}}) {
    const std::string dir = out + "/" + split;
    std::filesystem::create_directories(dir);
    const std::string list = out + "/" + split + ".txt", tmp = list + ".tmp";
    std::ofstream f(tmp);
    if (!f) throw UsageError("make-videos: cannot write " + tmp);
    for (int64_t i = 0; i < n; ++i) {
      // Training clips are drawn at random indices so a clip and its reversal rarely both
      // appear; the test clips are the first of their seed, as in `--data synthetic`.
      const uint64_t index = s == 1 ? uint64_t(i) * 7 + 3 * uint64_t(i / 10) : uint64_t(i);
      char name[32];
      std::snprintf(name, sizeof name, "clip_%06lld", (long long)i);
      f << split << "/"
        << data::write_clip_folder(dir, name, data::render_clip(seed * 2 + s, index, spec),
                                   data::clip_label(index))
        << "\n";
    }
    f.close();
    if (!f || std::rename(tmp.c_str(), list.c_str()) != 0)
      throw UsageError("make-videos: writing " + list + " failed");
  }
  std::printf("make-videos: %lld training and %lld test clips of 16 frames at %lld x %lld -> %s\n",
              (long long)clips, (long long)test, (long long)size, (long long)size, out.c_str());
  return 0;
}

}  // namespace spool::cli
