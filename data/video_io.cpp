#include "data/video_io.h"

#include <jpeglib.h>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "engine/factory.h"
#include "ops/ops.h"

namespace spool::data {

namespace fs = std::filesystem;

std::vector<VideoEntry> read_video_list(const std::string& list_path, std::string root) {
  SPOOL_CHECK(fs::is_regular_file(list_path), "video list: no such file: ", list_path);
  if (root.empty()) root = fs::path(list_path).parent_path().string();
  std::ifstream in(list_path);
  SPOOL_CHECK(in, "video list: cannot read ", list_path);
  std::vector<VideoEntry> out;
  std::string text;
  int64_t line_no = 0;
  while (std::getline(in, text)) {
    ++line_no;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    std::istringstream fields(text);
    std::vector<std::string> f;
    for (std::string w; fields >> w;) f.push_back(w);
    if (f.empty()) continue;
    const std::string where = "video list: " + list_path + ":" + std::to_string(line_no);
    SPOOL_CHECK(f.size() == 2 || f.size() == 3, where, ": expected 'path label' or 'path ",
                "num_frames label', found ", f.size(), " fields");
    auto number = [&](const std::string& s, const char* what) {
      size_t used = 0;
      int64_t v = -1;
      try {
        v = std::stoll(s, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      SPOOL_CHECK(used == s.size() && v >= 0, where, ": ", what, " '", s,
                  "' is not a non-negative integer");
      return v;
    };
    VideoEntry e;
    e.path = fs::path(f[0]).is_absolute() ? f[0] : (fs::path(root) / f[0]).string();
    e.label = number(f.back(), "label");
    if (f.size() == 3) e.frames = number(f[1], "num_frames");
    e.line = line_no;
    out.push_back(e);
  }
  SPOOL_CHECK(!out.empty(), "video list: ", list_path, " names no videos");
  std::vector<std::string> missing;
  for (const auto& e : out)
    if (!fs::exists(e.path)) missing.push_back(e.path + " (line " + std::to_string(e.line) + ")");
  if (!missing.empty()) {
    std::string msg = "video list: " + list_path + ": " + std::to_string(missing.size()) + " of " +
                      std::to_string(out.size()) + " videos are missing:";
    for (size_t i = 0; i < std::min<size_t>(20, missing.size()); ++i) msg += "\n  " + missing[i];
    if (missing.size() > 20) msg += "\n  ... and " + std::to_string(missing.size() - 20) + " more";
    throw Error(msg);
  }
  return out;
}

namespace {

// libjpeg reports fatal errors through error_exit, which must not return: jump back instead of
// letting the library call exit().
struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_jpeg_error(j_common_ptr info) {
  auto* e = reinterpret_cast<JpegError*>(info->err);
  (*info->err->format_message)(info, e->message);
  std::longjmp(e->jump, 1);
}

}  // namespace

Image read_jpeg(const std::string& path) {
  std::FILE* const f = std::fopen(path.c_str(), "rb");
  SPOOL_CHECK(f, "jpeg: cannot open ", path);
  // Locals written after setjmp must not be read after the longjmp unless they live in memory:
  // the image is reached through a pointer fixed before setjmp.
  const auto img = std::make_unique<Image>();
  jpeg_decompress_struct info;
  JpegError err;
  info.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = on_jpeg_error;
  err.mgr.output_message = [](j_common_ptr) {};  // warnings are not printed
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&info);
    std::fclose(f);
    throw Error("jpeg: " + path + " is corrupt or not a JPEG file: " + err.message);
  }
  jpeg_create_decompress(&info);
  jpeg_stdio_src(&info, f);
  jpeg_read_header(&info, TRUE);
  info.out_color_space = JCS_RGB;
  jpeg_start_decompress(&info);
  img->width = info.output_width;
  img->height = info.output_height;
  img->rgb.resize(size_t(img->width * img->height * 3));
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = img->rgb.data() + size_t(info.output_scanline) * size_t(img->width) * 3;
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  std::fclose(f);
  SPOOL_CHECK(img->width > 0 && img->height > 0, "jpeg: ", path, " has no pixels");
  return std::move(*img);
}

void write_jpeg(const std::string& path, const Image& image, int quality) {
  SPOOL_CHECK(image.width > 0 && image.height > 0 &&
                  image.rgb.size() == size_t(image.width * image.height * 3),
              "jpeg: image of ", image.width, " x ", image.height, " with ", image.rgb.size(),
              " bytes is not RGB");
  const std::string tmp = path + ".tmp";
  std::FILE* const f = std::fopen(tmp.c_str(), "wb");
  SPOOL_CHECK(f, "jpeg: cannot write ", tmp);
  jpeg_compress_struct info;
  JpegError err;
  info.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = on_jpeg_error;
  if (setjmp(err.jump)) {
    jpeg_destroy_compress(&info);
    std::fclose(f);
    std::remove(tmp.c_str());
    throw Error("jpeg: writing " + path + " failed: " + err.message);
  }
  jpeg_create_compress(&info);
  jpeg_stdio_dest(&info, f);
  info.image_width = JDIMENSION(image.width);
  info.image_height = JDIMENSION(image.height);
  info.input_components = 3;
  info.in_color_space = JCS_RGB;
  jpeg_set_defaults(&info);
  jpeg_set_quality(&info, quality, TRUE);
  jpeg_start_compress(&info, TRUE);
  while (info.next_scanline < info.image_height) {
    JSAMPROW row = const_cast<JSAMPLE*>(image.rgb.data()) +
                   size_t(info.next_scanline) * size_t(image.width) * 3;
    jpeg_write_scanlines(&info, &row, 1);
  }
  jpeg_finish_compress(&info);
  jpeg_destroy_compress(&info);
  const bool ok = std::fflush(f) == 0;
  if (std::fclose(f) != 0 || !ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error("jpeg: writing " + path + " failed");
  }
}

std::vector<std::string> frame_files(const VideoEntry& e) {
  SPOOL_CHECK(fs::is_directory(e.path), "video: ", e.path,
              " is not a folder of JPEG frames (video files are not read in this version)");
  std::vector<std::string> files;
  for (const auto& d : fs::directory_iterator(e.path)) {
    std::string ext = d.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (d.is_regular_file() && (ext == ".jpg" || ext == ".jpeg"))
      files.push_back(d.path().string());
  }
  std::sort(files.begin(), files.end());
  SPOOL_CHECK(!files.empty(), "video: ", e.path, " holds no JPEG frames");
  return files;
}

Tensor frames_to_tensor(const std::vector<const Image*>& frames, int64_t size) {
  SPOOL_CHECK(size > 0, "load_frames: size must be positive");
  Tensors out;
  for (const Image* img : frames) {
    // Normalised at full resolution, channels first, then resized as crop_resize does.
    const int64_t h = img->height, w = img->width;
    std::vector<float> chw(size_t(3 * h * w));
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t p = 0; p < h * w; ++p)
        chw[size_t(c * h * w + p)] = float((img->rgb[size_t(p * 3 + c)] / 255.0 - 0.45) / 0.25);
    out.push_back(crop_resize(from_vector(chw, {1, 3, h, w}), {0, 0, double(w), double(h)}, size));
  }
  return cat(out, 0);
}

Tensor load_frames(const std::vector<std::string>& files, const std::vector<int64_t>& which,
                   int64_t size) {
  std::vector<Image> images;
  for (int64_t w : which) {
    SPOOL_CHECK(w >= 0 && w < int64_t(files.size()), "load_frames: frame ", w, " of a video with ",
                files.size(), " frames");
    images.push_back(read_jpeg(files[size_t(w)]));
  }
  std::vector<const Image*> ptrs;
  for (const auto& i : images) ptrs.push_back(&i);
  return frames_to_tensor(ptrs, size);
}

std::vector<int64_t> spread_frames(int64_t frames, int64_t segments, double offset) {
  std::vector<int64_t> out;
  const double seg = double(frames) / double(segments);
  for (int64_t k = 0; k < segments; ++k)
    out.push_back(std::min(frames - 1, int64_t(seg * (double(k) + offset))));
  return out;
}

std::vector<int64_t> segment_frames(int64_t frames, int64_t segments, int64_t length,
                                    double offset) {
  SPOOL_CHECK(frames > 0 && segments > 0 && length > 0, "segment_frames: ", frames, " frames, ",
              segments, " segments, snippets of ", length, ": all must be positive");
  std::vector<int64_t> out;
  for (int64_t start : spread_frames(frames, segments, offset)) {
    start = std::max<int64_t>(0, std::min(start, frames - length));
    for (int64_t j = 0; j < length; ++j) out.push_back(std::min(frames - 1, start + j));
  }
  return out;
}

Tensor load_entry(const VideoEntry& e, double offset, int64_t segments, int64_t size,
                  int64_t length) {
  if (fs::is_directory(e.path)) {
    const auto files = frame_files(e);
    return load_frames(files, segment_frames(int64_t(files.size()), segments, length, offset),
                       size);
  }
  const std::vector<Image> all = decode_video(e.path);
  std::vector<const Image*> picked;
  for (int64_t i : segment_frames(int64_t(all.size()), segments, length, offset))
    picked.push_back(&all[size_t(i)]);
  return frames_to_tensor(picked, size);
}

Tensor rgb_difference(const Tensor& snippets, int64_t length) {
  SPOOL_CHECK(length >= 2 && snippets.dim() == 4 && snippets.size(0) % length == 0,
              "rgb_difference: snippets ", describe(snippets), " are not [K * ", length,
              ", C, H, W] with at least 2 frames a snippet");
  const int64_t k = snippets.size(0) / length, c = snippets.size(1), h = snippets.size(2),
                w = snippets.size(3);
  const Tensor s = reshape(contiguous(snippets), {k, length, c, h, w});
  const Tensor d = slice(s, 1, 1, length) - slice(s, 1, 0, length - 1);
  return reshape(contiguous(d), {k, (length - 1) * c, h, w});
}

CropBox multiscale_crop(int64_t base, double u_w, double u_h, double u_x, double u_y) {
  static const double kScales[4] = {1.0, 0.875, 0.75, 0.66};
  const int iw = std::min(3, int(u_w * 4.0));
  // The height's scale is one of the (up to three) scales within one step of the width's.
  const int lo = std::max(0, iw - 1), hi = std::min(3, iw + 1);
  const int ih = std::min(hi, lo + int(u_h * double(hi - lo + 1)));
  CropBox b;
  b.w = std::round(double(base) * kScales[iw]);
  b.h = std::round(double(base) * kScales[ih]);
  b.x = std::floor(u_x * (double(base) - b.w + 1.0));
  b.y = std::floor(u_y * (double(base) - b.h + 1.0));
  return b;
}

CropBox center_crop(int64_t base, int64_t size) {
  const double off = std::floor(double(base - size) / 2.0);
  return {off, off, double(size), double(size)};
}

Tensor crop_resize(const Tensor& frames, const CropBox& box, int64_t size) {
  SPOOL_CHECK(frames.dim() == 4 && frames.dtype() == DType::f32, "crop_resize: frames ",
              describe(frames), " must be f32 [M, C, H, W]");
  const int64_t m = frames.size(0) * frames.size(1), h = frames.size(2), w = frames.size(3);
  SPOOL_CHECK(size > 0 && box.w > 0 && box.h > 0 && box.x >= 0 && box.y >= 0 &&
                  box.x + box.w <= double(w) && box.y + box.h <= double(h),
              "crop_resize: box (", box.x, ", ", box.y, ") ", box.w, " x ", box.h,
              " does not fit in ", w, " x ", h, " frames, or size ", size, " is not positive");
  const auto src = contiguous(frames).to_vector<float>();
  std::vector<float> out(size_t(m * size * size));
  // Source coordinate of each output column / row, and the two neighbours' weights.
  auto axis = [size](double start, double extent, int64_t limit) {
    std::vector<std::pair<int64_t, double>> at(static_cast<size_t>(size));
    for (int64_t o = 0; o < size; ++o) {
      double s = start + (double(o) + 0.5) * extent / double(size) - 0.5;
      s = std::clamp(s, 0.0, double(limit - 1));
      const int64_t i = std::min(int64_t(s), limit - 1);
      at[size_t(o)] = {i, s - double(i)};
    }
    return at;
  };
  const auto xs = axis(box.x, box.w, w), ys = axis(box.y, box.h, h);
  for (int64_t p = 0; p < m; ++p) {
    const float* plane = src.data() + p * h * w;
    float* dst = out.data() + p * size * size;
    for (int64_t oy = 0; oy < size; ++oy) {
      const auto [y0, fy] = ys[size_t(oy)];
      const int64_t y1 = std::min(y0 + 1, h - 1);
      for (int64_t ox = 0; ox < size; ++ox) {
        const auto [x0, fx] = xs[size_t(ox)];
        const int64_t x1 = std::min(x0 + 1, w - 1);
        const double top = plane[y0 * w + x0] * (1 - fx) + (fx > 0 ? plane[y0 * w + x1] * fx : 0);
        const double bottom =
            fy > 0 ? plane[y1 * w + x0] * (1 - fx) + (fx > 0 ? plane[y1 * w + x1] * fx : 0) : 0;
        dst[oy * size + ox] = float(top * (1 - fy) + bottom * fy);
      }
    }
  }
  return from_vector(out, {frames.size(0), frames.size(1), size, size});
}

namespace {

std::string av_message(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(code, buf, sizeof buf);
  return buf;
}

// Owns FFmpeg's objects for one decode.
struct Decoder {
  AVFormatContext* fmt = nullptr;
  AVCodecContext* ctx = nullptr;
  AVPacket* pkt = nullptr;
  AVFrame* frame = nullptr;
  SwsContext* sws = nullptr;
  ~Decoder() {
    sws_freeContext(sws);
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&ctx);
    avformat_close_input(&fmt);
  }
};

}  // namespace

std::vector<Image> decode_video(const std::string& path) {
  av_log_set_level(AV_LOG_QUIET);  // errors are reported by spool, naming the file
  Decoder d;
  auto fail = [&](const std::string& what, int code) {
    return Error("video: " + path + ": " + what + (code ? ": " + av_message(code) : ""));
  };
  int rc = avformat_open_input(&d.fmt, path.c_str(), nullptr, nullptr);
  if (rc < 0) throw fail("cannot open", rc);
  if ((rc = avformat_find_stream_info(d.fmt, nullptr)) < 0) throw fail("no stream information", rc);
  const AVCodec* codec = nullptr;
  const int stream = av_find_best_stream(d.fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
  if (stream < 0 || !codec) throw fail("no decodable video stream", stream < 0 ? stream : 0);
  d.ctx = avcodec_alloc_context3(codec);
  if (!d.ctx) throw fail("out of memory", 0);
  if ((rc = avcodec_parameters_to_context(d.ctx, d.fmt->streams[stream]->codecpar)) < 0 ||
      (rc = avcodec_open2(d.ctx, codec, nullptr)) < 0)
    throw fail("cannot open the decoder", rc);
  d.pkt = av_packet_alloc();
  d.frame = av_frame_alloc();
  if (!d.pkt || !d.frame) throw fail("out of memory", 0);
  std::vector<Image> out;
  auto drain = [&] {
    while (true) {
      const int r = avcodec_receive_frame(d.ctx, d.frame);
      if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return;
      if (r < 0) throw fail("decoding failed", r);
      const int w = d.frame->width, h = d.frame->height;
      d.sws = sws_getCachedContext(d.sws, w, h, AVPixelFormat(d.frame->format), w, h,
                                   AV_PIX_FMT_RGB24, SWS_BILINEAR, nullptr, nullptr, nullptr);
      if (!d.sws) throw fail("cannot convert its pixel format to RGB", 0);
      Image img{w, h, std::vector<uint8_t>(size_t(w) * size_t(h) * 3)};
      uint8_t* dst[4] = {img.rgb.data(), nullptr, nullptr, nullptr};
      int stride[4] = {3 * w, 0, 0, 0};
      sws_scale(d.sws, d.frame->data, d.frame->linesize, 0, h, dst, stride);
      out.push_back(std::move(img));
    }
  };
  while ((rc = av_read_frame(d.fmt, d.pkt)) >= 0) {
    if (d.pkt->stream_index == stream) {
      const int r = avcodec_send_packet(d.ctx, d.pkt);
      av_packet_unref(d.pkt);
      if (r < 0 && r != AVERROR(EAGAIN)) throw fail("decoding failed", r);
      drain();
    } else {
      av_packet_unref(d.pkt);
    }
  }
  if (rc != AVERROR_EOF) throw fail("reading failed", rc);
  avcodec_send_packet(d.ctx, nullptr);  // flush the decoder's delayed frames
  drain();
  if (out.empty()) throw fail("no frames decoded", 0);
  return out;
}

std::string write_clip_folder(const std::string& dir, const std::string& name, const Tensor& clip,
                              int64_t label) {
  SPOOL_CHECK(clip.dim() == 4 && clip.size(1) == 3, "write_clip_folder: clip ", describe(clip),
              " must be [T, 3, H, W]");
  const fs::path folder = fs::path(dir) / name;
  fs::create_directories(folder);
  const int64_t t = clip.size(0), h = clip.size(2), w = clip.size(3);
  const auto v = contiguous(clip).to_vector<float>();
  for (int64_t f = 0; f < t; ++f) {
    Image img{w, h, std::vector<uint8_t>(size_t(w * h * 3))};
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        for (int64_t c = 0; c < 3; ++c) {
          const double u = double(v[size_t(((f * 3 + c) * h + y) * w + x)]) * 0.25 + 0.45;
          img.rgb[size_t((y * w + x) * 3 + c)] = uint8_t(std::clamp(u * 255.0 + 0.5, 0.0, 255.0));
        }
    char file[32];
    std::snprintf(file, sizeof file, "img_%05lld.jpg", (long long)(f + 1));
    write_jpeg((folder / file).string(), img, 92);
  }
  return name + " " + std::to_string(t) + " " + std::to_string(label);
}

}  // namespace spool::data
