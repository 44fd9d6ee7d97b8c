// Video data from a hostile or careless source: annotation lists, JPEG frames and video files
// whose declared sizes would exhaust memory, and entries that are not what they claim. Every case
// is a spool::Error naming the file (and the list line), decided before anything is allocated
// from the declared sizes; and decoding does only the work the sampled frames need.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <jpeglib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "data/synthetic_video.h"
#include "data/video_io.h"
#include "tests/support/cli.h"
#include "tests/support/helpers.h"

using namespace spool;
using spool::test_support::error_of;
using spool::test_support::run_cli;

namespace {

namespace fs = std::filesystem;

// A fresh folder for one test (removed when the test ends) and files written into it.
struct Scratch {
  test_support::TempDir dir = test_support::temp_dir();
  std::string file(const std::string& name, const std::string& text) const {
    const std::string p = (dir / name).string();
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
};

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// A smooth w x h image (JPEG keeps it within a few levels).
data::Image smooth_image(int64_t w, int64_t h) {
  data::Image img{w, h, std::vector<uint8_t>(size_t(w * h * 3))};
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      const size_t at = size_t(y * w + x) * 3;
      img.rgb[at] = uint8_t(40 + 150 * x / w);
      img.rgb[at + 1] = uint8_t(60 + 150 * y / h);
      img.rgb[at + 2] = 128;
    }
  return img;
}

// A real 16 x 16 JPEG whose frame header (SOF0) is rewritten to declare w x h: a few hundred
// bytes that claim any size.
std::string jpeg_declaring(const Scratch& s, const std::string& name, int w, int h) {
  const std::string small = (s.dir / "small.jpg").string();
  data::write_jpeg(small, smooth_image(16, 16));
  std::ifstream in(small, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t sof = bytes.find("\xff\xc0");
  EXPECT_NE(sof, std::string::npos) << "no baseline frame header";
  // FF C0, length (2), precision (1), height (2), width (2).
  bytes[sof + 5] = char(h >> 8);
  bytes[sof + 6] = char(h & 255);
  bytes[sof + 7] = char(w >> 8);
  bytes[sof + 8] = char(w & 255);
  return s.file(name, bytes);
}

// A w x h progressive JPEG (SOF2, libjpeg's simple progression) of smooth_image, its frame header
// then rewritten to declare decl_w x decl_h when those are given: a small file that claims any
// size.
std::string progressive_jpeg(const Scratch& s, const std::string& name, int w, int h,
                             int decl_w = 0, int decl_h = 0) {
  const data::Image img = smooth_image(w, h);
  jpeg_compress_struct info;
  jpeg_error_mgr err;
  info.err = jpeg_std_error(&err);
  jpeg_create_compress(&info);
  unsigned char* out = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&info, &out, &size);
  info.image_width = JDIMENSION(w);
  info.image_height = JDIMENSION(h);
  info.input_components = 3;
  info.in_color_space = JCS_RGB;
  jpeg_set_defaults(&info);
  jpeg_simple_progression(&info);
  jpeg_start_compress(&info, TRUE);
  while (info.next_scanline < info.image_height) {
    JSAMPROW row =
        const_cast<JSAMPLE*>(img.rgb.data()) + size_t(info.next_scanline) * size_t(w) * 3;
    jpeg_write_scanlines(&info, &row, 1);
  }
  jpeg_finish_compress(&info);
  jpeg_destroy_compress(&info);
  std::string bytes(reinterpret_cast<const char*>(out), size);
  std::free(out);
  const size_t sof = bytes.find("\xff\xc2");
  EXPECT_NE(sof, std::string::npos) << "no progressive frame header";
  if (decl_w > 0) {
    bytes[sof + 5] = char(decl_h >> 8);
    bytes[sof + 6] = char(decl_h & 255);
    bytes[sof + 7] = char(decl_w >> 8);
    bytes[sof + 8] = char(decl_w & 255);
  }
  return s.file(name, bytes);
}

// A YUV4MPEG2 video (raw 4:2:0 frames; FFmpeg reads it without any encoder installed): frame i is
// uniformly grey at luma 20 + 20 i. `broken_at` >= 0 damages that frame's marker, so FFmpeg fails
// when (and only when) it reads that far.
std::string y4m_video(const Scratch& s, const std::string& name, int w, int h, int frames,
                      int broken_at = -1) {
  std::string bytes =
      "YUV4MPEG2 W" + std::to_string(w) + " H" + std::to_string(h) + " F10:1 Ip A1:1 C420jpeg\n";
  const size_t luma = size_t(w) * size_t(h), chroma = size_t((w + 1) / 2) * size_t((h + 1) / 2);
  for (int i = 0; i < frames; ++i) {
    bytes += i == broken_at ? "BROKE\n" : "FRAME\n";
    bytes += std::string(luma, char(20 + 20 * i));
    bytes += std::string(2 * chroma, char(128));
  }
  return s.file(name, bytes);
}

}  // namespace

TEST(VideoList, LabelsAtOrAboveTheClassCapAreRefusedNamingTheLine) {
  Scratch s;
  fs::create_directories(s.dir / "clip");
  // 2^62 would size the classifier head; 100000 a 100001 x 100001 confusion matrix.
  for (const std::string label : {"4611686018427387904", "100000", "10000"}) {
    const std::string list = s.file("list.txt", "clip 3\nclip 16 " + label + "\n");
    const std::string msg = error_of([&] { data::read_video_list(list); });
    EXPECT_TRUE(contains(msg, list + ":2")) << msg;
    EXPECT_TRUE(contains(msg, "label " + label)) << msg;
    EXPECT_TRUE(contains(msg, "10000")) << msg;  // says what the limit is
  }
  const std::string list = s.file("list.txt", "clip 9999\n");
  EXPECT_EQ(data::read_video_list(list).at(0).label, data::kMaxClasses - 1);
}

TEST(VideoList, FrameCountsAboveTheCapAreRefusedNamingTheLine) {
  Scratch s;
  fs::create_directories(s.dir / "clip");
  const std::string list = s.file("list.txt", "clip 4611686018427387904 3\n");
  const std::string msg = error_of([&] { data::read_video_list(list); });
  EXPECT_TRUE(contains(msg, list + ":1: num_frames 4611686018427387904")) << msg;
  EXPECT_EQ(data::read_video_list(s.file("ok.txt", "clip 300 3\n")).at(0).frames, 300);
}

TEST(VideoList, AnOverlongPathIsAnErrorNamingTheLine) {
  Scratch s;
  const std::string list = s.file("list.txt", std::string(5000, 'a') + " 3\n");
  const std::string msg = error_of([&] { data::read_video_list(list); });
  EXPECT_TRUE(contains(msg, list)) << msg;
  EXPECT_TRUE(contains(msg, "line 1")) << msg;
}

TEST(VideoList, ABinaryFileGivenAsAListIsRefusedByLine) {
  Scratch s;
  fs::create_directories(s.dir / "clip");
  // No newline in a megabyte: one line, which was read whole into memory.
  const std::string blob = s.file("video.mp4", std::string(1 << 20, 'x'));
  EXPECT_TRUE(contains(error_of([&] { data::read_video_list(blob); }),
                       blob + ":1: the line is longer than 65536"));
  const std::string nul = s.file("nul.txt", std::string("clip 3\nclip\0x 4\n", 15));
  EXPECT_TRUE(contains(error_of([&] { data::read_video_list(nul); }), nul + ":2: the line holds"));
  // The last line may end without a newline, and a line may fill the limit exactly.
  const std::string edge = s.file("edge.txt", "clip" + std::string(65536 - 6, ' ') + " 1\nclip 2");
  const auto entries = data::read_video_list(edge);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].label, 1);
  EXPECT_EQ(entries[1].label, 2);
}

TEST(VideoList, EntriesThatAreNeitherFramesFoldersNorFilesAreRefused) {
  Scratch s;
  // A named pipe would block the loader forever; a device would be read without end.
  const std::string fifo = (s.dir / "pipe.mp4").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const std::string list = s.file("list.txt", "pipe.mp4 3\n/dev/zero 4\n");
  const std::string msg = error_of([&] { data::read_video_list(list); });
  EXPECT_TRUE(contains(msg, fifo + " (line 1)")) << msg;
  EXPECT_TRUE(contains(msg, "/dev/zero (line 2)")) << msg;
}

TEST(Jpeg, DecodesAtTheSmallestScaleThatCoversTheSizeAsked) {
  Scratch s;
  const std::string p = (s.dir / "a.jpg").string();
  data::write_jpeg(p, smooth_image(64, 48), 100);
  const data::Image full = data::read_jpeg(p);
  EXPECT_EQ(full.width, 64);
  EXPECT_EQ(full.height, 48);
  // 2/8 would give 16 x 12 (short of 16 high); 3/8 gives 24 x 18.
  const data::Image scaled = data::read_jpeg(p, 16);
  EXPECT_EQ(scaled.width, 24);
  EXPECT_EQ(scaled.height, 18);
  // The scaled picture is the same picture: its corners are those of the full one.
  const auto px = [](const data::Image& im, int64_t x, int64_t y, int c) {
    return int(im.rgb[size_t((y * im.width + x) * 3 + c)]);
  };
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(px(scaled, 0, 0, c), px(full, 1, 1, c), 6) << c;
    EXPECT_NEAR(px(scaled, 23, 17, c), px(full, 62, 46, c), 6) << c;
  }
  // Never scaled up: asking for more than the image has gives the image.
  const data::Image big = data::read_jpeg(p, 100);
  EXPECT_EQ(big.width, 64);
  EXPECT_EQ(big.height, 48);
}

TEST(Jpeg, ALargeFrameDecodesScaledDownForASmallTarget) {
  Scratch s;
  const std::string p = (s.dir / "large.jpg").string();
  data::write_jpeg(p, smooth_image(2000, 1500));
  // Needed at 112: decoded at 1/8, 250 x 188 (ceil(1500 / 8)), not 2000 x 1500.
  const data::Image img = data::read_jpeg(p, 112);
  EXPECT_EQ(img.width, 250);
  EXPECT_EQ(img.height, 188);
  const Tensor t = data::load_frames({p}, {0}, 112);
  EXPECT_EQ(t.shape(), (Shape{1, 3, 112, 112}));
}

TEST(Jpeg, AHugeDeclaredSizeIsDecodedOnlyAtTheScaleAsked) {
  Scratch s;
  // A few hundred bytes declaring 6000 x 6000 (108 MB of RGB); needed at 112: 750 x 750.
  const std::string p = jpeg_declaring(s, "huge.jpg", 6000, 6000);
  const data::Image img = data::read_jpeg(p, 112);
  EXPECT_EQ(img.width, 750);
  EXPECT_EQ(img.height, 750);
}

TEST(Jpeg, AFileThatEndsEarlyIsAnErrorNotAGreyFrame) {
  Scratch s;
  const std::string whole = (s.dir / "whole.jpg").string();
  data::write_jpeg(whole, smooth_image(64, 64));
  std::ifstream in(whole, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (size_t keep : {size_t(200), bytes.size() * 2 / 3}) {  // in the headers; in the rows
    const std::string cut = s.file("cut.jpg", bytes.substr(0, keep));
    for (int64_t side : {0, 16}) {
      const std::string msg = error_of([&] { data::read_jpeg(cut, side); });
      EXPECT_TRUE(contains(msg, cut) && contains(msg, "Premature end")) << keep << ": " << msg;
    }
  }
  // Without only its end-of-image marker, a file has every row: it decodes.
  const std::string no_end = s.file("no_end.jpg", bytes.substr(0, bytes.size() - 2));
  EXPECT_EQ(data::read_jpeg(no_end).rgb, data::read_jpeg(whole).rgb);
}

TEST(Jpeg, DeclaredSizesAboveTheCapAreRefusedBeforeDecoding) {
  Scratch s;
  for (auto [w, h] : {std::pair<int, int>{16385, 16}, {16, 16385}, {9000, 8000}}) {
    const std::string p = jpeg_declaring(s, "big.jpg", w, h);
    const std::string msg = error_of([&] { data::read_jpeg(p, 16); });
    EXPECT_TRUE(contains(msg, p)) << msg;
    EXPECT_TRUE(contains(msg, std::to_string(w) + " x " + std::to_string(h))) << msg;
  }
}

TEST(Jpeg, WritesGoThroughTheAtomicWriterAndNeverReplaceALink) {
  Scratch s;
  const std::string target = s.file("target.jpg", "keep me");
  const std::string link = (s.dir / "link.jpg").string();
  fs::create_symlink(target, link);
  const std::string msg = error_of([&] { data::write_jpeg(link, smooth_image(8, 8)); });
  EXPECT_TRUE(contains(msg, link) && contains(msg, "symbolic link")) << msg;
  EXPECT_TRUE(fs::is_symlink(link));
  std::ifstream in(target);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "keep me");
  // A plain write leaves the frame and no temporary beside it.
  data::write_jpeg((s.dir / "a.jpg").string(), smooth_image(8, 8));
  for (const auto& d : fs::directory_iterator(s.dir))
    EXPECT_EQ(d.path().string().find(".tmp"), std::string::npos) << d.path();
}

TEST(VideoFile, ConvertsOnlyTheWantedFramesScaledToTheSizeAsked) {
  Scratch s;
  const std::string p = y4m_video(s, "grey.y4m", 64, 48, 10);
  EXPECT_EQ(data::count_video_frames(p), 10);
  const auto all = data::decode_video(p, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  ASSERT_EQ(all.size(), 10u);
  EXPECT_EQ(all[0].width, 64);
  EXPECT_EQ(all[0].height, 48);
  // Any order, repeats allowed; each frame scaled down to at most 16 x 16.
  const auto picked = data::decode_video(p, {7, 2, 2}, 16);
  ASSERT_EQ(picked.size(), 3u);
  const int64_t want[3] = {7, 2, 2};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(picked[i].width, 16);
    EXPECT_EQ(picked[i].height, 16);
    // Uniform frames: every scaled pixel is the full frame's pixel.
    for (uint8_t v : picked[i].rgb) ASSERT_EQ(v, all[size_t(want[i])].rgb[0]) << i;
  }
  EXPECT_NE(all[7].rgb[0], all[2].rgb[0]);
  // Frames smaller than the size asked keep their size.
  EXPECT_EQ(data::decode_video(p, {0}, 100).at(0).width, 64);
  const std::string msg = error_of([&] { data::decode_video(p, {10}); });
  EXPECT_TRUE(contains(msg, p) && contains(msg, "10 frames")) << msg;
}

TEST(VideoFile, DecodingStopsAfterTheLastWantedFrame) {
  Scratch s;
  // Frame 30 of 40 is damaged: frames before it can be had without reading that far.
  const std::string p = y4m_video(s, "late_damage.y4m", 32, 32, 40, 30);
  const auto early = data::decode_video(p, {5, 0}, 8);
  ASSERT_EQ(early.size(), 2u);
  EXPECT_EQ(early[0].width, 8);
  EXPECT_TRUE(contains(error_of([&] { data::decode_video(p, {35}); }), p));
  EXPECT_TRUE(contains(error_of([&] { data::count_video_frames(p); }), p));
}

TEST(VideoFile, FrameSizesAboveTheCapAreRefusedNamingTheFile) {
  Scratch s;
  const std::string p = y4m_video(s, "wide.y4m", 20000, 2, 1);
  const std::string msg = error_of([&] { data::decode_video(p, {0}, 112); });
  EXPECT_TRUE(contains(msg, p)) << msg;
  EXPECT_TRUE(contains(msg, "20000 x 2")) << msg;
  EXPECT_TRUE(contains(error_of([&] { data::count_video_frames(p); }), "20000 x 2"));
}

TEST(VideoFile, AY4mHeaderBeyondWhatFfmpegHoldsIsRefusedByItsSize) {
  Scratch s;
  // FFmpeg refuses 60000 x 60000 itself, with "Device or resource busy", naming no size.
  const std::string p =
      s.file("huge.y4m", "YUV4MPEG2 W60000 H60000 F25:1 Ip A1:1 C420jpeg\nFRAME\nxx");
  const std::string msg = error_of([&] { data::count_video_frames(p); });
  EXPECT_TRUE(contains(msg, "60000 x 60000")) << msg;
  EXPECT_FALSE(contains(msg, "busy")) << msg;
}

TEST(VideoFile, LoadEntryPicksTheSameFramesAsTheSamplingSays) {
  Scratch s;
  const std::string p = y4m_video(s, "grey.y4m", 24, 16, 10);
  const auto all = data::decode_video(p, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  const auto which = data::segment_frames(10, 4, 1, 0.5);  // 1, 3, 6, 8
  const auto got = data::load_entry({p, -1, 0, 1}, 0.5, 4, 8).to_vector<float>();
  ASSERT_EQ(got.size(), size_t(4 * 3 * 8 * 8));
  for (size_t k = 0; k < 4; ++k) {
    const float want = float((all[size_t(which[k])].rgb[0] / 255.0 - 0.45) / 0.25);
    EXPECT_NEAR(got[k * 3 * 64], want, 1e-6) << k;
    EXPECT_NEAR(got[k * 3 * 64 + 3 * 64 - 1], want, 1e-6) << k;
  }
  // A count known from an earlier read is used, and one not known yet is filled in.
  int64_t counted = -1;
  data::load_entry({p, -1, 0, 1}, 0.5, 4, 8, 1, &counted);
  EXPECT_EQ(counted, 10);
}

TEST(TrainVideo, ATestSetWithNoReadableVideoStopsTheRunBeforeTraining) {
  Scratch s;
  const std::string out = (s.dir / "vids").string();
  const auto made = run_cli("make-videos --out " + out + " --clips 4 --test-clips 1 --size 32");
  ASSERT_EQ(made.status, 0) << made.output;
  // The test list names a file that is no video: found only at the final evaluation before.
  s.file("vids/junk.mp4", "not a video");
  s.file("vids/test.txt", "junk.mp4 3\n");
  const std::string ckpt = (s.dir / "model.safetensors").string();
  const auto r = run_cli("train --model tsn-r18 --data " + out + "/train.txt --test-list " + out +
                         "/test.txt --steps 2 --size 32 --width 4 --save " + ckpt);
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "none of the 1 test videos")) << r.output;
  EXPECT_TRUE(contains(r.output, out + "/test.txt")) << r.output;
  EXPECT_FALSE(fs::exists(ckpt)) << "trained before refusing";
}

TEST(TrainVideo, ManyClassesLogTheConfusionCountsThatOccurNotTheSquareMatrix) {
  Scratch s;
  const std::string out = (s.dir / "vids").string();
  const auto made = run_cli("make-videos --out " + out + " --clips 2 --test-clips 1 --size 32");
  ASSERT_EQ(made.status, 0) << made.output;
  // Labels 0 and 2999: a 3000-class head, and (dense) 9,000,000 confusion counts to log.
  s.file("vids/many.txt", "train/clip_000000 16 0\ntrain/clip_000001 16 2999\n");
  const std::string log = (s.dir / "log.jsonl").string();
  const auto r = run_cli("train --model tsn-r18 --data " + out + "/many.txt --test-list " + out +
                         "/many.txt --steps 1 --size 32 --width 4 --log " + log);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "3000 classes")) << r.output;
  const std::string last = test_support::final_line(log);
  EXPECT_LT(last.size(), 100000u) << "the log line grows with the square of the classes";
  EXPECT_TRUE(contains(last, "\"test_clips\": 2")) << last.substr(0, 400);
  EXPECT_TRUE(contains(last, "\"confusion_counts\": [[0, ")) << last.substr(0, 400);
}

TEST(MakeVideos, AFrameSizeThatCannotBeRenderedIsRefusedByFlag) {
  Scratch s;
  const auto r = run_cli("make-videos --out " + (s.dir / "v").string() + " --size 100000");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "--size must be between 8 and 1024")) << r.output;
  data::SyntheticVideoSpec spec;
  spec.height = spec.width = 100000;
  EXPECT_TRUE(contains(error_of([&] { data::render_clip(0, 0, spec); }), "100000 x 100000"));
}

TEST(MakeVideos, AListPathThatIsALinkIsRefusedBeforeAnyClipIsRendered) {
  Scratch s;
  const std::string out = (s.dir / "vids").string();
  fs::create_directories(out);
  const std::string elsewhere = s.file("elsewhere.txt", "someone's file\n");
  fs::create_symlink(elsewhere, out + "/val.txt");
  const auto r = run_cli("make-videos --out " + out + " --clips 2 --test-clips 1 --size 16");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(contains(r.output, out + "/val.txt is a symbolic link")) << r.output;
  EXPECT_TRUE(fs::is_symlink(out + "/val.txt"));
  EXPECT_FALSE(fs::exists(out + "/train/clip_000000")) << "rendered before checking";
  EXPECT_FALSE(fs::exists(out + "/train.txt"));
}

TEST(Jpeg, AProgressiveFileAboveItsLimitIsRefusedBeforeItsCoefficientsAreHeld) {
  Scratch s;
  // libjpeg holds every coefficient of a multi-scan file at full size, whatever the scale asked:
  // 16384 x 4096 declared in 800 bytes cost 200 MB (4:2:0) before this limit.
  for (auto [w, h] : {std::pair<int, int>{16384, 4096}, {4097, 4096}}) {
    const std::string p = progressive_jpeg(s, "prog.jpg", 16, 16, w, h);
    const std::string msg = error_of([&] { data::read_jpeg(p, 112); });
    EXPECT_TRUE(contains(msg, p)) << msg;
    EXPECT_TRUE(contains(msg, "progressive")) << msg;
    EXPECT_TRUE(contains(msg, std::to_string(w) + " x " + std::to_string(h))) << msg;
    EXPECT_TRUE(contains(msg, "16777216 pixels")) << msg;  // says what the limit is
  }
  // At the limit it is read (its scans hold 16 x 16 pixels of data; libjpeg fills the rest, as
  // for AHugeDeclaredSizeIsDecodedOnlyAtTheScaleAsked), at 1/8 scale.
  const data::Image at = data::read_jpeg(progressive_jpeg(s, "at.jpg", 16, 16, 4096, 4096), 112);
  EXPECT_EQ(at.width, 512);
  EXPECT_EQ(at.height, 512);
  // A real progressive file decodes, scaled as a baseline one is, to the same picture.
  const std::string prog = progressive_jpeg(s, "real.jpg", 64, 48);
  const std::string base = (s.dir / "base.jpg").string();
  data::write_jpeg(base, smooth_image(64, 48));
  for (int64_t side : {0, 16}) {
    const data::Image a = data::read_jpeg(prog, side), b = data::read_jpeg(base, side);
    EXPECT_EQ(a.width, b.width);
    EXPECT_EQ(a.height, b.height);
    ASSERT_EQ(a.rgb.size(), b.rgb.size());
    for (size_t i = 0; i < a.rgb.size(); ++i) ASSERT_NEAR(int(a.rgb[i]), int(b.rgb[i]), 8) << i;
  }
}

TEST(VideoFile, APlaylistOrAConcatScriptIsRefusedWithoutOpeningWhatItNames) {
  Scratch s;
  // A real video the scripts name: followed, it would decode (10 frames of another file).
  const std::string seg = y4m_video(s, "seg.ts", 16, 16, 10);
  (void)seg;
  const std::string hls =
      s.file("v.mp4", "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nseg.ts\n#EXT-X-ENDLIST\n");
  const std::string concat = s.file("c.mp4", "ffconcat version 1.0\nfile seg.ts\n");
  for (const auto& [p, kind] :
       {std::pair<std::string, std::string>{hls, "'hls'"}, {concat, "'concat'"}}) {
    const std::string msg = error_of([&] { data::count_video_frames(p); });
    EXPECT_TRUE(contains(msg, p)) << msg;
    EXPECT_TRUE(contains(msg, kind)) << msg;
    EXPECT_TRUE(contains(msg, "not a video container")) << msg;
    EXPECT_TRUE(contains(error_of([&] { data::decode_video(p, {0}, 8); }), kind));
  }
}

TEST(VideoFile, APlaylistNamingANamedPipeIsRefusedWithoutOpeningThePipe) {
  Scratch s;
  // The probe's recipe: the segment is a FIFO, and the loader used to block on it forever. A
  // helper opens the pipe's other end whenever someone waits on it (so a regression fails
  // instead of hanging) and records that it happened.
  const std::string fifo = (s.dir / "seg.ts").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const std::string p =
      s.file("v.mp4", "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nseg.ts\n#EXT-X-ENDLIST\n");
  std::atomic<bool> done{false}, opened{false};
  std::thread unblock([&] {
    while (!done) {
      const int fd = open(fifo.c_str(), O_WRONLY | O_NONBLOCK);  // fails while no one reads
      if (fd >= 0) {
        opened = true;
        close(fd);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  const auto t0 = std::chrono::steady_clock::now();
  const std::string msg = error_of([&] { data::count_video_frames(p); });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  done = true;
  unblock.join();
  EXPECT_TRUE(contains(msg, p) && contains(msg, "'hls'")) << msg;
  EXPECT_FALSE(opened) << "the segment was opened";
  EXPECT_LT(seconds, 5.0);
}

TEST(VideoFile, TheContainersSpoolReadsStillOpen) {
  Scratch s;
  // YUV4MPEG2 under any name (the demuxer is chosen by content, then checked).
  const std::string p = y4m_video(s, "grey.mp4", 16, 16, 3);
  EXPECT_EQ(data::count_video_frames(p), 3);
  // Not a video at all: FFmpeg's reason, naming the file.
  const std::string junk = s.file("junk.mp4", "not a video");
  EXPECT_TRUE(contains(error_of([&] { data::count_video_frames(junk); }), junk));
}
