#include "tools/plot.h"

#include <cairo.h>
#include <fontconfig/fontconfig.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "engine/error.h"

namespace spool::cli {

namespace {

const double kColours[][3] = {{0.12, 0.47, 0.71}, {0.84, 0.15, 0.16}, {0.17, 0.63, 0.17},
                              {1.00, 0.50, 0.05}, {0.58, 0.40, 0.74}, {0.55, 0.34, 0.29}};

cairo_status_t append(void* out, const unsigned char* data, unsigned int n) {
  static_cast<std::string*>(out)->append(reinterpret_cast<const char*>(data), n);
  return CAIRO_STATUS_SUCCESS;
}

// Owns a white ARGB surface and its context; png() encodes it.
class Canvas {
 public:
  Canvas(int w, int h)
      : surface_(cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h)),
        cr_(cairo_create(surface_)) {
    SPOOL_CHECK(cairo_status(cr_) == CAIRO_STATUS_SUCCESS, "plot: cairo cannot make a ", w, " x ",
                h, " image: ", cairo_status_to_string(cairo_status(cr_)));
    cairo_set_source_rgb(cr_, 1, 1, 1);
    cairo_paint(cr_);
    cairo_select_font_face(cr_, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  }
  ~Canvas() {
    cairo_destroy(cr_);
    cairo_surface_destroy(surface_);
    // cairo and fontconfig keep their font caches for the life of the process; a command draws
    // a figure or two, so they are released after each (cairo's and fontconfig's own leak-check
    // sequence), and the sanitizer build sees nothing left. The next figure loads them again.
    cairo_debug_reset_static_data();
    FcFini();
  }
  Canvas(const Canvas&) = delete;
  Canvas& operator=(const Canvas&) = delete;
  cairo_t* cr() { return cr_; }
  std::string png() {
    std::string out;
    const cairo_status_t st = cairo_surface_write_to_png_stream(surface_, append, &out);
    SPOOL_CHECK(st == CAIRO_STATUS_SUCCESS,
                "plot: PNG encoding failed: ", cairo_status_to_string(st));
    return out;
  }

 private:
  cairo_surface_t* surface_;
  cairo_t* cr_;
};

// Text with its anchor: ax, ay in [0, 1] of its extents (0.5, 0.5: centred).
void text(cairo_t* cr, double x, double y, const std::string& s, double size, double ax = 0.5,
          double ay = 0.5) {
  cairo_set_font_size(cr, size);
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  cairo_move_to(cr, x - e.x_bearing - ax * e.width, y - e.y_bearing - ay * e.height);
  cairo_show_text(cr, s.c_str());
}

std::string tick_label(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", std::abs(v) < 1e-12 ? 0.0 : v);
  return buf;
}

// Round tick values covering [lo, hi].
std::vector<double> ticks(double lo, double hi) {
  const double span = hi - lo, raw = span / 5;
  const double mag = std::pow(10, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag) {
      step = m * mag;
      break;
    }
  std::vector<double> out;
  for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) out.push_back(v);
  return out;
}

// The chart inside the rectangle (x0, y0, w, h) of the canvas.
void draw_chart(cairo_t* cr, const Chart& c, double x0, double y0, double w, double h) {
  const double left = x0 + 70, right = x0 + w - 20, top = y0 + 40, bottom = y0 + h - 55;
  auto tr = [&](double y) { return c.log_y ? std::log10(y) : y; };
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
  for (const Series& s : c.series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      if ((c.log_y && s.y[i] <= 0) || !std::isfinite(s.y[i])) continue;
      xmin = std::min(xmin, s.x[i]);
      xmax = std::max(xmax, s.x[i]);
      ymin = std::min(ymin, tr(s.y[i]));
      ymax = std::max(ymax, tr(s.y[i]));
    }
  for (double r : c.horizontal)
    if (!c.log_y || r > 0) {
      ymin = std::min(ymin, tr(r));
      ymax = std::max(ymax, tr(r));
    }
  cairo_set_source_rgb(cr, 0, 0, 0);
  text(cr, x0 + w / 2, y0 + 18, c.title, 15);
  text(cr, (left + right) / 2, y0 + h - 14, c.x_label, 13);
  cairo_save(cr);
  cairo_translate(cr, x0 + 16, (top + bottom) / 2);
  cairo_rotate(cr, -M_PI / 2);
  text(cr, 0, 0, c.y_label + (c.log_y ? " (log scale)" : ""), 13);
  cairo_restore(cr);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, left, top, right - left, bottom - top);
  cairo_stroke(cr);
  if (!(xmin <= xmax)) {
    text(cr, (left + right) / 2, (top + bottom) / 2, "no points", 13);
    return;
  }
  if (xmax == xmin) xmax = xmin + 1;
  if (ymax == ymin) ymax = ymin + 1;
  const double pad = 0.05 * (ymax - ymin);
  ymin -= pad;
  ymax += pad;
  auto px = [&](double x) { return left + (x - xmin) / (xmax - xmin) * (right - left); };
  auto py = [&](double y) { return bottom - (tr(y) - ymin) / (ymax - ymin) * (bottom - top); };
  for (double t : ticks(xmin, xmax)) {
    text(cr, left + (t - xmin) / (xmax - xmin) * (right - left), bottom + 14, tick_label(t), 11);
  }
  if (c.log_y) {
    for (double e = std::ceil(ymin); e <= ymax; ++e)
      text(cr, left - 6, bottom - (e - ymin) / (ymax - ymin) * (bottom - top), "1e" + tick_label(e),
           11, 1.0);
  } else {
    for (double t : ticks(ymin, ymax))
      text(cr, left - 6, bottom - (t - ymin) / (ymax - ymin) * (bottom - top), tick_label(t), 11,
           1.0);
  }
  cairo_save(cr);
  cairo_rectangle(cr, left, top, right - left, bottom - top);
  cairo_clip(cr);
  const double dash[] = {6, 4};
  for (double r : c.horizontal) {
    if (c.log_y && r <= 0) continue;
    cairo_set_source_rgb(cr, 0.4, 0.4, 0.4);
    cairo_set_dash(cr, dash, 2, 0);
    cairo_move_to(cr, left, py(r));
    cairo_line_to(cr, right, py(r));
    cairo_stroke(cr);
  }
  cairo_set_dash(cr, nullptr, 0, 0);
  cairo_set_line_width(cr, 1.6);
  for (size_t k = 0; k < c.series.size(); ++k) {
    const Series& s = c.series[k];
    const double* rgb = kColours[k % 6];
    cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
    bool pen = false;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if ((c.log_y && s.y[i] <= 0) || !std::isfinite(s.y[i])) {
        pen = false;
        continue;
      }
      if (pen)
        cairo_line_to(cr, px(s.x[i]), py(s.y[i]));
      else
        cairo_move_to(cr, px(s.x[i]), py(s.y[i]));
      pen = true;
    }
    if (s.x.size() == 1) cairo_arc(cr, px(s.x[0]), py(s.y[0]), 2.5, 0, 2 * M_PI);
    cairo_stroke(cr);
  }
  cairo_restore(cr);
  // The legend, when there is more than one series.
  if (c.series.size() > 1)
    for (size_t k = 0; k < c.series.size(); ++k) {
      const double* rgb = kColours[k % 6];
      const double ly = top + 14 + 16 * double(k);
      cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
      cairo_move_to(cr, right - 150, ly);
      cairo_line_to(cr, right - 128, ly);
      cairo_stroke(cr);
      cairo_set_source_rgb(cr, 0, 0, 0);
      text(cr, right - 122, ly, c.series[k].label, 11, 0.0);
    }
}

}  // namespace

std::string chart_png(const Chart& chart, int width, int height) {
  Canvas canvas(width, height);
  draw_chart(canvas.cr(), chart, 0, 0, width, height);
  return canvas.png();
}

std::string grid_png(const rl::GridWorld& g, const std::vector<double>& values,
                     const std::vector<int>& actions, const Chart& curve) {
  SPOOL_CHECK(int64_t(values.size()) == g.states() && int64_t(actions.size()) == g.states(),
              "plot: ", values.size(), " values and ", actions.size(), " actions for ", g.states(),
              " cells");
  // Cells of 72 px up to a 720 px square panel, smaller for large grids (at least 4 px).
  const double cell = std::max(4.0, std::min(72.0, 720.0 / double(std::max(g.rows, g.cols))));
  const double gw = cell * double(g.cols), gh = cell * double(g.rows), margin = 30;
  const int width = int(gw + 2 * margin + 720), height = int(std::max(gh + 2 * margin, 480.0));
  Canvas canvas(width, height);
  cairo_t* cr = canvas.cr();
  const bool labels = cell >= 40;
  for (int64_t s = 0; s < g.states(); ++s) {
    const double x = margin + cell * double(s % g.cols), y = margin + cell * double(s / g.cols);
    if (g.forbidden[size_t(s)]) {
      cairo_set_source_rgb(cr, 0.98, 0.78, 0.35);
      cairo_rectangle(cr, x, y, cell, cell);
      cairo_fill(cr);
    }
    if (s == g.target) {
      cairo_set_source_rgb(cr, 0.55, 0.85, 0.95);
      cairo_rectangle(cr, x, y, cell, cell);
      cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, x, y, cell, cell);
    cairo_stroke(cr);
    // The greedy action: an arrow from the centre, or a circle for "stay".
    const double cx = x + cell / 2, cy = y + cell / (labels ? 2.6 : 2), len = cell * 0.3;
    static const double dx[] = {0, 1, 0, -1, 0}, dy[] = {-1, 0, 1, 0, 0};
    const int a = actions[size_t(s)];
    cairo_set_source_rgb(cr, 0.1, 0.5, 0.1);
    cairo_set_line_width(cr, std::max(1.0, cell / 30));
    if (a < 0) {
      // no action to show (the values of a stochastic policy)
    } else if (a == rl::kStay) {
      cairo_arc(cr, cx, cy, cell * 0.09, 0, 2 * M_PI);
      cairo_stroke(cr);
    } else {
      const double ex = cx + dx[a] * len, ey = cy + dy[a] * len;
      cairo_move_to(cr, cx - dx[a] * len * 0.4, cy - dy[a] * len * 0.4);
      cairo_line_to(cr, ex, ey);
      cairo_stroke(cr);
      const double head = cell * 0.1;
      cairo_move_to(cr, ex, ey);
      cairo_line_to(cr, ex - dx[a] * head - dy[a] * head * 0.7,
                    ey - dy[a] * head + dx[a] * head * 0.7);
      cairo_line_to(cr, ex - dx[a] * head + dy[a] * head * 0.7,
                    ey - dy[a] * head - dx[a] * head * 0.7);
      cairo_close_path(cr);
      cairo_fill(cr);
    }
    if (labels) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.2f", values[size_t(s)]);
      cairo_set_source_rgb(cr, 0, 0, 0);
      text(cr, x + cell / 2, y + cell * 0.8, buf, cell / 5.5);
    }
  }
  draw_chart(cr, curve, gw + 2 * margin, 0, 720, height);
  return canvas.png();
}

}  // namespace spool::cli
