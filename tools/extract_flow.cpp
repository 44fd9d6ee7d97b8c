// spool extract-flow: the optical flow of every video in an annotation list, written as the
// action-recognition tools write it (data/flow.h): OUT/<entry>/flow_x_00001.jpg,
// flow_y_00001.jpg, ... for the T - 1 pairs of consecutive frames, and OUT/<list's name>, the
// same list over the flow folders ("<entry> <T - 1> <label>"), so `spool train --modality flow
// --data OUT/<list>` reads them. TV-L1 (OpenCV contrib's optflow module, its default parameters)
// or Farneback (OpenCV's video module). Entries run in parallel (--jobs), each finished one is
// marked (flow.done, written last), and a second run skips the marked ones: an interrupted run
// resumes. The last line reports the cost per frame against decoding the RGB frames.
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/optflow.hpp>
#include <opencv2/video/tracking.hpp>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>

#include "data/flow.h"
#include "data/video_io.h"
#include "engine/clock.h"
#include "engine/files.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace spool::cli {

namespace {

namespace fs = std::filesystem;

double seconds_since(double start_ms) { return (now_ms() - start_ms) / 1e3; }

struct EntryCost {
  int64_t frames = 0, fields = 0;
  double decode_s = 0, flow_s = 0, write_s = 0;
};

// Where an entry's flow goes: its path relative to the list's folder (a video file without its
// extension), under `out`.
std::string flow_name(const data::VideoEntry& e, const std::string& root) {
  fs::path rel = fs::path(e.path).lexically_normal().lexically_relative(
      fs::path(root.empty() ? "." : root).lexically_normal());
  if (rel.empty() || *rel.begin() == "..") rel = fs::path(e.path).filename();
  std::error_code ec;
  if (!fs::is_directory(e.path, ec)) rel.replace_extension();
  return rel.string();
}

// The frames of an entry as grayscale images, each scaled down to at most max_side on a side.
std::vector<cv::Mat> gray_frames(const data::VideoEntry& e, int64_t max_side) {
  std::vector<data::Image> images;
  std::error_code ec;
  if (fs::is_directory(e.path, ec)) {
    for (const auto& f : data::frame_files(e)) images.push_back(data::read_jpeg(f));
  } else {
    const int64_t n = data::count_video_frames(e.path);
    std::vector<int64_t> all(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) all[size_t(i)] = i;
    images = data::decode_video(e.path, all, max_side);
  }
  std::vector<cv::Mat> out;
  for (auto& img : images) {
    cv::Mat rgb(int(img.height), int(img.width), CV_8UC3, img.rgb.data()), gray;
    cv::cvtColor(rgb, gray, cv::COLOR_RGB2GRAY);
    const int64_t side = std::max(img.width, img.height);
    if (max_side > 0 && side > max_side) {
      cv::Mat small;
      const double s = double(max_side) / double(side);
      cv::resize(gray, small, cv::Size(), s, s, cv::INTER_AREA);
      gray = small;
    }
    out.push_back(gray);
  }
  return out;
}

// The flow of one entry into `dir`; the marker last.
EntryCost extract(const data::VideoEntry& e, const std::string& dir, const std::string& algorithm,
                  int64_t max_side) {
  EntryCost c;
  auto t = now_ms();
  const std::vector<cv::Mat> frames = gray_frames(e, max_side);
  c.decode_s = seconds_since(t);
  c.frames = int64_t(frames.size());
  SPOOL_CHECK(frames.size() >= 2, "extract-flow: ", e.path, " has ", frames.size(),
              " frame(s); flow needs at least 2");
  std::error_code ec;
  fs::create_directories(dir, ec);
  SPOOL_CHECK(!ec, "extract-flow: cannot create ", dir, ": ", ec.message());
  cv::Ptr<cv::DenseOpticalFlow> tvl1;
  if (algorithm == "tvl1") tvl1 = cv::optflow::DualTVL1OpticalFlow::create();
  for (size_t i = 0; i + 1 < frames.size(); ++i) {
    t = now_ms();
    cv::Mat flow;
    if (tvl1)
      tvl1->calc(frames[i], frames[i + 1], flow);
    else
      cv::calcOpticalFlowFarneback(frames[i], frames[i + 1], flow, 0.5, 3, 15, 3, 5, 1.2, 0);
    c.flow_s += seconds_since(t);
    t = now_ms();
    const int64_t h = flow.rows, w = flow.cols;
    std::vector<uint8_t> x(size_t(h * w)), y(size_t(h * w));
    for (int64_t r = 0; r < h; ++r) {
      const auto* row = flow.ptr<cv::Vec2f>(int(r));
      for (int64_t col = 0; col < w; ++col) {
        x[size_t(r * w + col)] = data::flow_byte(row[col][0]);
        y[size_t(r * w + col)] = data::flow_byte(row[col][1]);
      }
    }
    char name[32];
    std::snprintf(name, sizeof name, "%05zu.jpg", i + 1);
    // Durable once, by the marker: a crash before it makes the entry run again.
    data::write_gray_jpeg(dir + "/flow_x_" + name, w, h, x, 90, Sync::replaceable);
    data::write_gray_jpeg(dir + "/flow_y_" + name, w, h, y, 90, Sync::replaceable);
    c.write_s += seconds_since(t);
    ++c.fields;
  }
  write_file(dir + "/flow.done", std::to_string(c.fields) + "\n", "extract-flow");
  return c;
}

// The number of fields a finished entry holds, or -1 when it is not finished.
int64_t finished_fields(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_regular_file(dir + "/flow.done", ec)) return -1;
  try {
    const auto [x, y] = data::flow_files(dir);
    return int64_t(x.size());
  } catch (const Error&) {
    return -1;
  }
}

}  // namespace

int cmd_extract_flow(int argc, char** argv) {
  Args a(argc, argv, 2,
         {{"data", true, "LIST: an annotation list of frame folders or video files (required)"},
          {"out", true, "DIR: where the flow folders and the flow list go (required)"},
          {"algorithm", true, "tvl1 (default; OpenCV contrib's TV-L1) or farneback"},
          {"jobs", true, "videos in parallel (default: the machine's cores)"},
          {"size", true,
           "frames scaled down to at most this many pixels a side first (0: as "
           "they are; default 0)"}},
         "extract-flow");
  if (!a.has("data") || !a.has("out"))
    throw UsageError("extract-flow: --data LIST and --out DIR are required");
  const std::string list = a.str("data", ""), out = a.str("out", "");
  if (out.empty()) throw UsageError("extract-flow: --out is empty (it names the folder to fill)");
  const std::string algorithm = a.str("algorithm", "tvl1");
  if (algorithm != "tvl1" && algorithm != "farneback")
    throw UsageError("extract-flow: --algorithm '" + algorithm + "' is not tvl1 or farneback");
  const int64_t jobs =
      a.positive_int("jobs", std::max<int64_t>(1, int64_t(std::thread::hardware_concurrency())));
  const int64_t max_side = a.has("size") ? a.positive_int("size", 0) : 0;
  std::vector<data::VideoEntry> entries;
  try {
    entries = data::read_video_list(list);
  } catch (const Error& e) {
    throw UsageError(std::string("extract-flow: --data: ") + e.what());
  }
  const std::string root = fs::path(list).parent_path().string();
  const std::string list_out = (fs::path(out) / fs::path(list).filename()).string();
  std::error_code ec;
  if (fs::exists(list_out, ec) && fs::equivalent(list_out, list, ec))
    throw UsageError("extract-flow: --out " + out + " would write the flow list over --data " +
                     list + "; give another folder");
  fs::create_directories(out, ec);
  if (ec) throw UsageError("extract-flow: --out: cannot create " + out + ": " + ec.message());
  check_output_path(list_out, "extract-flow --out");

  std::vector<std::string> dirs;
  for (const auto& e : entries) dirs.push_back((fs::path(out) / flow_name(e, root)).string());
  std::vector<int64_t> fields(entries.size(), -1);
  std::vector<std::string> errors(entries.size());
  int64_t resumed = 0;
  for (size_t i = 0; i < entries.size(); ++i)
    if ((fields[i] = finished_fields(dirs[i])) >= 0) ++resumed;

  // OpenCV's own threads would compete with the jobs for the same cores.
  if (jobs > 1) cv::setNumThreads(1);
  std::atomic<size_t> next{0};
  std::mutex mu;
  EntryCost total;
  int64_t done = resumed;
  Progress progress(int64_t(entries.size()));
  const auto start = now_ms();
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < entries.size();) {
      if (fields[i] >= 0) continue;
      EntryCost c;
      std::string error;
      try {
        c = extract(entries[i], dirs[i], algorithm, max_side);
      } catch (const std::exception& ex) {  // Error, or OpenCV's cv::Exception
        error = ex.what();
      }
      std::lock_guard<std::mutex> lock(mu);
      if (error.empty()) {
        fields[i] = c.fields;
        total.frames += c.frames;
        total.fields += c.fields;
        total.decode_s += c.decode_s;
        total.flow_s += c.flow_s;
        total.write_s += c.write_s;
      } else {
        errors[i] = error;
      }
      progress.update(++done, "videos");
    }
  };
  std::vector<std::thread> threads;
  for (int64_t j = 0; j < std::min<int64_t>(jobs, int64_t(entries.size())); ++j)
    threads.emplace_back(work);
  for (auto& t : threads) t.join();
  progress.finish();
  const double wall = seconds_since(start);

  std::string lines;
  int64_t failed = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!errors[i].empty()) {
      ++failed;
      std::fprintf(stderr, "warning: no flow for %s (list line %lld): %s\n",
                   entries[i].path.c_str(), (long long)entries[i].line, errors[i].c_str());
      continue;
    }
    lines += flow_name(entries[i], root) + " " + std::to_string(fields[i]) + " " +
             std::to_string(entries[i].label) + "\n";
  }
  write_file(list_out, lines, "extract-flow --out");
  auto per = [](double s, int64_t n) { return n > 0 ? 1e3 * s / double(n) : 0.0; };
  std::printf("%s\n", Json()
                          .add("algorithm", algorithm)
                          .add("videos", int64_t(entries.size()))
                          .add("extracted", int64_t(entries.size()) - resumed - failed)
                          .add("resumed", resumed)
                          .add("failed", failed)
                          .add("frames", total.frames)
                          .add("fields", total.fields)
                          .add("jobs", jobs)
                          .add("wall_s", wall)
                          .add("decode_ms_per_frame", per(total.decode_s, total.frames))
                          .add("flow_ms_per_field", per(total.flow_s, total.fields))
                          .add("write_ms_per_field", per(total.write_s, total.fields))
                          .add("list", list_out)
                          .str()
                          .c_str());
  return failed > 0 && failed == int64_t(entries.size()) ? 1 : 0;
}

}  // namespace spool::cli
