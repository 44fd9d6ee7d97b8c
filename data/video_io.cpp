#include "data/video_io.h"

#include <jpeglib.h>
// After jpeglib.h, which it needs.
#include <jerror.h>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avstring.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "engine/checked.h"
#include "engine/factory.h"
#include "engine/files.h"
#include "ops/ops.h"

namespace spool::data {

namespace fs = std::filesystem;

namespace {

// A list field: a non-negative integer at most `limit`, or an error naming the line, the field and
// why (`limit_why`).
int64_t list_number(const std::string& where, const std::string& s, const char* what, int64_t limit,
                    const std::string& limit_why) {
  const bool digits = !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
  SPOOL_CHECK(digits, where, ": ", what, " '", s, "' is not a non-negative integer");
  // Past 18 digits the value is above every limit: compare lengths before converting.
  const size_t first = std::min(s.find_first_not_of('0'), s.size() - 1);
  const bool over = s.size() - first > 18 || std::stoll(s.substr(first)) > limit;
  SPOOL_CHECK(!over, where, ": ", what, " ", s, " is too large: ", limit_why);
  return std::stoll(s.substr(first));
}

// Why an entry cannot be read ("" when it is a folder or a regular file), without throwing.
std::string entry_problem(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found) return "missing";
  if (ec) return "cannot be checked: " + ec.message();
  if (st.type() == fs::file_type::directory || st.type() == fs::file_type::regular) return "";
  const char* kind = st.type() == fs::file_type::fifo        ? "a named pipe"
                     : st.type() == fs::file_type::character ? "a character device"
                     : st.type() == fs::file_type::block     ? "a block device"
                     : st.type() == fs::file_type::socket    ? "a socket"
                                                             : "not a plain file";
  return std::string(kind) + ", not a folder of frames or a video file";
}

}  // namespace

std::vector<VideoEntry> read_video_list(const std::string& list_path, std::string root) {
  std::error_code ec;
  SPOOL_CHECK(fs::is_regular_file(list_path, ec), "video list: no such file: ", list_path);
  if (root.empty()) root = fs::path(list_path).parent_path().string();
  std::ifstream in(list_path);
  SPOOL_CHECK(in, "video list: cannot read ", list_path);
  std::vector<VideoEntry> out;
  std::vector<char> buf(size_t(kMaxListLine) + 1);
  int64_t line_no = 0;
  while (in.getline(buf.data(), std::streamsize(buf.size())) || in.gcount() > 0) {
    ++line_no;
    // getline fails having filled the buffer when the line goes on (a binary file, say).
    SPOOL_CHECK(!in.fail(), "video list: ", list_path, ":", line_no, ": the line is longer than ",
                kMaxListLine, " characters; is this an annotation list?");
    // gcount includes the newline, when there was one.
    std::string text(buf.data(), size_t(in.gcount()) - (in.eof() ? 0 : 1));
    SPOOL_CHECK(text.find('\0') == std::string::npos, "video list: ", list_path, ":", line_no,
                ": the line holds a NUL byte; is this an annotation list?");
    if (!text.empty() && text.back() == '\r') text.pop_back();
    std::istringstream fields(text);
    std::vector<std::string> f;
    for (std::string w; fields >> w;) f.push_back(w);
    if (f.empty()) continue;
    const std::string where = "video list: " + list_path + ":" + std::to_string(line_no);
    SPOOL_CHECK(f.size() == 2 || f.size() == 3, where, ": expected 'path label' or 'path ",
                "num_frames label', found ", f.size(), " fields");
    VideoEntry e;
    e.path = fs::path(f[0]).is_absolute() ? f[0] : (fs::path(root) / f[0]).string();
    e.label = list_number(
        where, f.back(), "label", kMaxClasses - 1,
        "labels must be below " + std::to_string(kMaxClasses) + " (spool's limit on classes)");
    if (f.size() == 3)
      e.frames = list_number(where, f[1], "num_frames", kMaxListFrames,
                             "a video has at most " + std::to_string(kMaxListFrames) + " frames");
    e.line = line_no;
    out.push_back(e);
  }
  SPOOL_CHECK(!in.bad(), "video list: reading ", list_path, " failed");
  SPOOL_CHECK(!out.empty(), "video list: ", list_path, " names no videos");
  std::vector<std::string> bad;
  bool all_missing = true;
  for (const auto& e : out) {
    const std::string problem = entry_problem(e.path);
    if (problem.empty()) continue;
    all_missing = all_missing && problem == "missing";
    bad.push_back(e.path + " (line " + std::to_string(e.line) + ")" +
                  (problem == "missing" ? "" : ": " + problem));
  }
  if (!bad.empty()) {
    std::string msg = "video list: " + list_path + ": " + std::to_string(bad.size()) + " of " +
                      std::to_string(out.size()) + " videos are " +
                      (all_missing ? "missing:" : "missing or unreadable:");
    for (size_t i = 0; i < std::min<size_t>(20, bad.size()); ++i) msg += "\n  " + bad[i];
    if (bad.size() > 20) msg += "\n  ... and " + std::to_string(bad.size() - 20) + " more";
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
  bool ended = false;  // the file ended (libjpeg goes on as if at its end-of-image marker)
};

void on_jpeg_error(j_common_ptr info) {
  auto* e = reinterpret_cast<JpegError*>(info->err);
  (*info->err->format_message)(info, e->message);
  std::longjmp(e->jump, 1);
}

// Warnings are not printed, and most (stray bytes between markers) are harmless. But when the
// file ends before the entropy-coded data does (libjpeg warns of the end of the file, then of
// the marker it made up where data was wanted), the rest of the picture would be made up as
// grey: that is an error, raised at once. A file that lacks only its end-of-image marker has every
// row, and is read.
void on_jpeg_warning(j_common_ptr info, int level) {
  if (level != -1) return;
  auto* e = reinterpret_cast<JpegError*>(info->err);
  const int code = info->err->msg_code;
  if (code == JWRN_JPEG_EOF) e->ended = true;
  const bool in_headers =
      info->is_decompressor && reinterpret_cast<j_decompress_ptr>(info)->output_height == 0;
  if ((code == JWRN_JPEG_EOF && in_headers) || (code == JWRN_HIT_MARKER && e->ended)) {
    info->err->msg_code = JWRN_JPEG_EOF;
    on_jpeg_error(info);
  }
}

// Refuses a frame whose declared size is above the limits, before anything is allocated for it.
void check_frame_size(const char* kind, const std::string& path, int64_t w, int64_t h) {
  SPOOL_CHECK(
      w > 0 && h > 0 && w <= kMaxFrameSide && h <= kMaxFrameSide && w * h <= kMaxFramePixels, kind,
      ": ", path, " declares ", w, " x ", h, " pixels; frames are limited to ", kMaxFrameSide,
      " on a side and ", kMaxFramePixels, " pixels in all");
}

// One decompression: libjpeg's state and the file, released however the read ends.
struct JpegReader {
  jpeg_decompress_struct info;
  JpegError err;
  std::FILE* file = nullptr;
  bool created = false;
  ~JpegReader() {
    if (created) jpeg_destroy_decompress(&info);
    if (file) std::fclose(file);
  }
};

// One compression into memory.
struct JpegWriter {
  jpeg_compress_struct info;
  JpegError err;
  unsigned char* bytes = nullptr;  // malloc'd by libjpeg's memory destination
  unsigned long size = 0;
  bool created = false;
  ~JpegWriter() {
    if (created) jpeg_destroy_compress(&info);
    std::free(bytes);
  }
};

}  // namespace

Image read_jpeg(const std::string& path, int64_t min_side) {
  // Everything written after setjmp and read after the longjmp lives behind this pointer, fixed
  // before setjmp.
  const auto r = std::make_unique<JpegReader>();
  r->file = std::fopen(path.c_str(), "rb");
  SPOOL_CHECK(r->file, "jpeg: cannot open ", path);
  Image img;
  jpeg_decompress_struct& info = r->info;
  info.err = jpeg_std_error(&r->err.mgr);
  r->err.mgr.error_exit = on_jpeg_error;
  r->err.mgr.emit_message = on_jpeg_warning;
  if (setjmp(r->err.jump))
    throw Error("jpeg: " + path + " is corrupt or not a JPEG file: " + r->err.message);
  jpeg_create_decompress(&info);
  r->created = true;
  jpeg_stdio_src(&info, r->file);
  jpeg_read_header(&info, TRUE);
  check_frame_size("jpeg", path, info.image_width, info.image_height);
  if (jpeg_has_multiple_scans(&info)) {
    // A progressive (or multi-scan sequential) file is decoded from a buffer of all its DCT
    // coefficients at full size, whatever scale is asked for: 2 bytes a coefficient, 64 per
    // block of each component (jdcoefct.c). Both that buffer and the pixels are limited.
    int64_t coefficient_bytes = 0;
    for (int c = 0; c < info.num_components; ++c) {
      const jpeg_component_info& comp = info.comp_info[c];
      const int64_t w = (int64_t(comp.width_in_blocks) + comp.h_samp_factor - 1) /
                        comp.h_samp_factor * comp.h_samp_factor;
      const int64_t h = (int64_t(comp.height_in_blocks) + comp.v_samp_factor - 1) /
                        comp.v_samp_factor * comp.v_samp_factor;
      coefficient_bytes += w * h * DCTSIZE2 * int64_t(sizeof(JCOEF));
    }
    const int64_t pixels = int64_t(info.image_width) * int64_t(info.image_height);
    SPOOL_CHECK(pixels <= kMaxProgressivePixels && coefficient_bytes <= kMaxJpegCoefficientBytes,
                "jpeg: ", path, " is a progressive (multi-scan) JPEG of ", info.image_width, " x ",
                info.image_height, " pixels in ", info.num_components, " components (",
                coefficient_bytes,
                " bytes of coefficients, held whole at any scale); such "
                "files are limited to ",
                kMaxProgressivePixels, " pixels (4096 x 4096) and ", kMaxJpegCoefficientBytes,
                " bytes of coefficients");
  }
  info.out_color_space = JCS_RGB;
  if (min_side > 0) {
    // The smallest scale m/8 that still covers min_side (or the whole image) both ways.
    const int64_t need_w = std::min<int64_t>(min_side, info.image_width),
                  need_h = std::min<int64_t>(min_side, info.image_height);
    for (unsigned m = 1; m <= 8; ++m) {
      info.scale_num = m;
      info.scale_denom = 8;
      jpeg_calc_output_dimensions(&info);
      if (int64_t(info.output_width) >= need_w && int64_t(info.output_height) >= need_h) break;
    }
  }
  jpeg_start_decompress(&info);
  img.width = info.output_width;
  img.height = info.output_height;
  img.rgb.resize(size_t(
      checked_product(std::vector<int64_t>{img.width, img.height, 3}, "jpeg: decoded size")));
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = img.rgb.data() + size_t(info.output_scanline) * size_t(img.width) * 3;
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  SPOOL_CHECK(img.width > 0 && img.height > 0, "jpeg: ", path, " has no pixels");
  return img;
}

namespace {
// Compresses `components` (1: grayscale, 3: RGB) interleaved bytes a pixel and writes them.
void compress_jpeg(const std::string& path, int64_t width, int64_t height, int components,
                   const uint8_t* pixels, int quality, Sync sync) {
  const auto w = std::make_unique<JpegWriter>();
  jpeg_compress_struct& info = w->info;
  info.err = jpeg_std_error(&w->err.mgr);
  w->err.mgr.error_exit = on_jpeg_error;
  if (setjmp(w->err.jump)) throw Error("jpeg: compressing " + path + " failed: " + w->err.message);
  jpeg_create_compress(&info);
  w->created = true;
  jpeg_mem_dest(&info, &w->bytes, &w->size);
  info.image_width = JDIMENSION(width);
  info.image_height = JDIMENSION(height);
  info.input_components = components;
  info.in_color_space = components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&info);
  jpeg_set_quality(&info, quality, TRUE);
  jpeg_start_compress(&info, TRUE);
  while (info.next_scanline < info.image_height) {
    JSAMPROW row = const_cast<JSAMPLE*>(pixels) +
                   size_t(info.next_scanline) * size_t(width) * size_t(components);
    jpeg_write_scanlines(&info, &row, 1);
  }
  jpeg_finish_compress(&info);
  write_file(path, std::string_view(reinterpret_cast<const char*>(w->bytes), w->size), "jpeg",
             sync);
}
}  // namespace

void write_jpeg(const std::string& path, const Image& image, int quality, Sync sync) {
  SPOOL_CHECK(image.width > 0 && image.height > 0 && image.width <= kMaxFrameSide &&
                  image.height <= kMaxFrameSide &&
                  image.rgb.size() == size_t(image.width * image.height * 3),
              "jpeg: image of ", image.width, " x ", image.height, " with ", image.rgb.size(),
              " bytes is not RGB (or is above ", kMaxFrameSide, " on a side)");
  compress_jpeg(path, image.width, image.height, 3, image.rgb.data(), quality, sync);
}

void write_gray_jpeg(const std::string& path, int64_t width, int64_t height,
                     const std::vector<uint8_t>& gray, int quality, Sync sync) {
  SPOOL_CHECK(width > 0 && height > 0 && width <= kMaxFrameSide && height <= kMaxFrameSide &&
                  gray.size() == size_t(width * height),
              "jpeg: grayscale image of ", width, " x ", height, " with ", gray.size(),
              " bytes is not width x height bytes (or is above ", kMaxFrameSide, " on a side)");
  compress_jpeg(path, width, height, 1, gray.data(), quality, sync);
}

std::vector<std::string> frame_files(const VideoEntry& e) {
  std::error_code ec;
  SPOOL_CHECK(fs::is_directory(e.path, ec), "video: ", e.path, " is not a folder of JPEG frames");
  std::vector<std::string> files;
  fs::directory_iterator it(e.path, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::string ext = it->path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    std::error_code kind;
    if ((ext == ".jpg" || ext == ".jpeg") && it->is_regular_file(kind))
      files.push_back(it->path().string());
  }
  SPOOL_CHECK(!ec, "video: cannot list the frames of ", e.path, ": ", ec.message());
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
    images.push_back(read_jpeg(files[size_t(w)], size));
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
                  int64_t length, int64_t* counted) {
  std::error_code ec;
  if (fs::is_directory(e.path, ec)) {
    const auto files = frame_files(e);
    return load_frames(files, segment_frames(int64_t(files.size()), segments, length, offset),
                       size);
  }
  const int64_t frames = counted && *counted >= 0 ? *counted : count_video_frames(e.path);
  if (counted) *counted = frames;
  const std::vector<Image> picked =
      decode_video(e.path, segment_frames(frames, segments, length, offset), size);
  std::vector<const Image*> ptrs;
  for (const auto& i : picked) ptrs.push_back(&i);
  return frames_to_tensor(ptrs, size);
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

// FFmpeg's objects for one read, released however the read ends (a member, so a constructor that
// throws part-way still releases them).
struct AvHandles {
  AVIOContext* io = nullptr;  // the file, opened by spool (fmt reads through it, never closes it)
  AVFormatContext* fmt = nullptr;
  AVCodecContext* ctx = nullptr;
  AVPacket* pkt = nullptr;
  AVFrame* frame = nullptr;
  SwsContext* sws = nullptr;
  AvHandles() = default;
  AvHandles(const AvHandles&) = delete;
  AvHandles& operator=(const AvHandles&) = delete;
  ~AvHandles() {
    sws_freeContext(sws);
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&ctx);
    avformat_close_input(&fmt);
    avio_closep(&io);
  }
};

// The demuxers spool reads video files with (FFmpeg's names; a demuxer matches when one of the
// names in its own list is here: "mov" is mov,mp4,m4a,3gp,3g2,mj2). None of them opens another
// file. Left out on purpose: playlists and scripts that name other files (hls, concat, dash,
// image2's numbered files...), whose entries would be opened from wherever the file says; the
// file protocol alone still reaches every local file, FIFOs and devices included.
constexpr const char* kVideoDemuxers =
    "mov,matroska,webm,avi,mpegts,mpeg,flv,ogg,asf,yuv4mpegpipe,h264,hevc,m4v,mpegvideo";
constexpr const char* kVideoContainersInWords =
    "MP4/MOV, Matroska/WebM, AVI, MPEG-TS, MPEG-PS, FLV, Ogg, ASF/WMV, YUV4MPEG2, raw H.264, "
    "HEVC, MPEG-4 or MPEG-1/2 video";

// One video file, read frame by frame.
class VideoReader {
 public:
  explicit VideoReader(const std::string& path) : path_(path) {
    av_log_set_level(AV_LOG_QUIET);  // errors are reported by spool, naming the file
    // The path is a file, whatever it looks like ("pipe:0", "http://..."). Its container is
    // found from its first bytes (as avformat_open_input would) and must be one of
    // kVideoDemuxers before a demuxer reads its header: an HLS playlist or a concat script
    // disguised as a video would open the files it names (a FIFO there blocked the loader
    // forever). The open file is then handed to that demuxer, so what was probed is what is
    // read; format_whitelist and protocol_whitelist hold the same rules inside FFmpeg.
    const std::string url = "file:" + path;
    AVDictionary* opts = nullptr;
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    int rc = avio_open2(&av_.io, url.c_str(), AVIO_FLAG_READ, nullptr, &opts);
    av_dict_free(&opts);
    if (rc < 0) throw fail("cannot open", rc);
    const AVInputFormat* format = nullptr;
    if ((rc = av_probe_input_buffer2(av_.io, &format, url.c_str(), nullptr, 0, 0)) < 0)
      throw fail("cannot open", rc);
    if (av_match_list(format->name, kVideoDemuxers, ',') <= 0)
      throw fail(std::string("is a '") + format->name + "' file (" +
                     (format->long_name ? format->long_name : "no description") +
                     "), not a video container spool reads (" + kVideoContainersInWords + ")",
                 0);
    if (std::string(format->name) == "yuv4mpegpipe") check_y4m_header();
    av_.fmt = avformat_alloc_context();
    if (!av_.fmt) throw fail("out of memory", 0);
    av_.fmt->pb = av_.io;  // custom I/O: avformat_close_input leaves it to AvHandles
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    av_dict_set(&opts, "format_whitelist", kVideoDemuxers, 0);
    rc = avformat_open_input(&av_.fmt, url.c_str(), format, &opts);  // frees fmt on failure
    av_dict_free(&opts);
    if (rc < 0) throw fail(std::string("its ") + format->name + " header cannot be read", rc);
    if ((rc = avformat_find_stream_info(av_.fmt, nullptr)) < 0)
      throw fail("no stream information", rc);
    const AVCodec* codec = nullptr;
    stream_ = av_find_best_stream(av_.fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (stream_ < 0 || !codec) throw fail("no decodable video stream", stream_ < 0 ? stream_ : 0);
    const AVCodecParameters* par = av_.fmt->streams[stream_]->codecpar;
    if (par->width > 0 || par->height > 0)
      check_frame_size("video", path_, par->width, par->height);
    av_.ctx = avcodec_alloc_context3(codec);
    if (!av_.ctx) throw fail("out of memory", 0);
    if ((rc = avcodec_parameters_to_context(av_.ctx, par)) < 0 ||
        (rc = avcodec_open2(av_.ctx, codec, nullptr)) < 0)
      throw fail("cannot open the decoder", rc);
    av_.pkt = av_packet_alloc();
    av_.frame = av_frame_alloc();
    if (!av_.pkt || !av_.frame) throw fail("out of memory", 0);
  }

  // The next frame in the order the decoder returns them (valid until the next call), or null
  // after the last. Its size is checked against the limits (a stream may change size).
  const AVFrame* next() {
    while (true) {
      const int r = avcodec_receive_frame(av_.ctx, av_.frame);
      if (r == 0) {
        check_frame_size("video", path_, av_.frame->width, av_.frame->height);
        return av_.frame;
      }
      if (r == AVERROR_EOF) return nullptr;
      if (r != AVERROR(EAGAIN)) throw fail("decoding failed", r);
      if (flushed_) return nullptr;
      const int rc = av_read_frame(av_.fmt, av_.pkt);
      if (rc == AVERROR_EOF) {
        avcodec_send_packet(av_.ctx, nullptr);  // flush the decoder's delayed frames
        flushed_ = true;
        continue;
      }
      if (rc < 0) throw fail("reading failed", rc);
      if (av_.pkt->stream_index == stream_) {
        const int s = avcodec_send_packet(av_.ctx, av_.pkt);
        av_packet_unref(av_.pkt);
        if (s < 0) throw fail("decoding failed", s);
      } else {
        av_packet_unref(av_.pkt);
      }
    }
  }

  // `f` as RGB, scaled down to at most max_side x max_side (0: as it is).
  Image to_rgb(const AVFrame* f, int64_t max_side) {
    const int w = f->width, h = f->height;
    const int ow = max_side > 0 ? int(std::min<int64_t>(w, max_side)) : w;
    const int oh = max_side > 0 ? int(std::min<int64_t>(h, max_side)) : h;
    av_.sws = sws_getCachedContext(
        av_.sws, w, h, AVPixelFormat(f->format), ow, oh, AV_PIX_FMT_RGB24,
        SWS_BILINEAR | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr, nullptr);
    if (!av_.sws) throw fail("cannot convert its pixel format to RGB", 0);
    // libswscale's vector code writes past the end of a row: it writes into padded rows, which
    // are then copied out.
    const int stride = FFALIGN(3 * ow + 64, 64);
    std::vector<uint8_t> padded(size_t(stride) * size_t(oh + 1));
    uint8_t* dst[4] = {padded.data(), nullptr, nullptr, nullptr};
    int strides[4] = {stride, 0, 0, 0};
    sws_scale(av_.sws, f->data, f->linesize, 0, h, dst, strides);
    Image img{ow, oh, std::vector<uint8_t>(size_t(ow) * size_t(oh) * 3)};
    for (int y = 0; y < oh; ++y)
      std::copy_n(padded.data() + size_t(y) * size_t(stride), size_t(3 * ow),
                  img.rgb.data() + size_t(y) * size_t(3 * ow));
    return img;
  }

  Error fail(const std::string& what, int code) const {
    return Error("video: " + path_ + ": " + what + (code ? ": " + av_message(code) : ""));
  }

  // YUV4MPEG2 states the frame size in its first line ("YUV4MPEG2 W1920 H1080 ..."): checked
  // against the frame limits here, since FFmpeg refuses a size it cannot hold with an error
  // text that names no size ("Device or resource busy" for 60000 x 60000).
  void check_y4m_header() {
    char line[256] = {};
    const int n = avio_read(av_.io, reinterpret_cast<unsigned char*>(line), int(sizeof line) - 1);
    if (avio_seek(av_.io, 0, SEEK_SET) < 0) throw fail("cannot rewind", 0);
    if (n <= 0) return;  // FFmpeg names what is wrong
    line[n] = 0;
    if (char* end = std::strchr(line, '\n')) *end = 0;
    int64_t w = -1, h = -1;
    for (char* t = std::strtok(line, " "); t; t = std::strtok(nullptr, " ")) {
      if (t[0] != 'W' && t[0] != 'H') continue;
      char* e = nullptr;
      errno = 0;
      const long long v = std::strtoll(t + 1, &e, 10);
      const int64_t size = (errno == ERANGE || *e || e == t + 1) ? -1 : int64_t(v);
      (t[0] == 'W' ? w : h) = size;
    }
    if (w >= 0 || h >= 0) check_frame_size("video", path_, w, h);
  }

 private:
  std::string path_;
  AvHandles av_;
  int stream_ = -1;
  bool flushed_ = false;
};

}  // namespace

std::vector<Image> decode_video(const std::string& path, const std::vector<int64_t>& which,
                                int64_t max_side) {
  SPOOL_CHECK(!which.empty(), "decode_video: no frames asked for from ", path);
  for (int64_t i : which) SPOOL_CHECK(i >= 0, "decode_video: frame ", i, " of ", path);
  std::vector<int64_t> wanted = which;
  std::sort(wanted.begin(), wanted.end());
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  const int64_t last = wanted.back();
  VideoReader reader(path);
  std::vector<Image> out(which.size());
  int64_t index = 0;
  for (; index <= last; ++index) {
    const AVFrame* f = reader.next();
    if (!f) break;
    if (!std::binary_search(wanted.begin(), wanted.end(), index)) continue;
    const Image img = reader.to_rgb(f, max_side);
    for (size_t k = 0; k < which.size(); ++k)
      if (which[k] == index) out[k] = img;
  }
  if (index <= last)
    throw reader.fail("has " + std::to_string(index) + " frames; frame " + std::to_string(last) +
                          " was asked for",
                      0);
  return out;
}

int64_t count_video_frames(const std::string& path) {
  VideoReader reader(path);
  int64_t n = 0;
  while (reader.next()) ++n;
  if (n == 0) throw reader.fail("no frames decoded", 0);
  return n;
}

std::string write_clip_folder(const std::string& dir, const std::string& name, const Tensor& clip,
                              int64_t label) {
  SPOOL_CHECK(clip.dim() == 4 && clip.size(1) == 3, "write_clip_folder: clip ", describe(clip),
              " must be [T, 3, H, W]");
  const fs::path folder = fs::path(dir) / name;
  std::error_code ec;
  fs::create_directories(folder, ec);
  SPOOL_CHECK(!ec, "write_clip_folder: cannot create ", folder.string(), ": ", ec.message());
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
    write_jpeg((folder / file).string(), img, 92, Sync::replaceable);  // made again at will
  }
  return name + " " + std::to_string(t) + " " + std::to_string(label);
}

}  // namespace spool::data
