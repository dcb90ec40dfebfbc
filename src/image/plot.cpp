#include "vigil/image/plot.h"

#include <mgl2/mgl.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <mutex>
#include <random>
#include <string_view>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"

namespace vigil::image {
namespace {

// MathGL keeps process-wide state (font cache, warning hooks); one plot at a time.
std::mutex& mgl_mutex() {
  static std::mutex m;
  return m;
}

// Colour-blind-friendly palette (matplotlib's tab10) as MathGL "{xRRGGBB}" colours.
constexpr std::array<const char*, 10> kPalette = {"{x1F77B4}", "{xFF7F0E}", "{x2CA02C}", "{xD62728}",
                                                  "{x9467BD}", "{x8C564B}", "{xE377C2}", "{x7F7F7F}",
                                                  "{xBCBD22}", "{x17BECF}"};
constexpr const char* kBarColour = "{x4C72B0}";
constexpr const char* kGridColour = "{xDDDDDD}";

// MathGL parses text as TeX: '_' '^' start sub/superscripts, braces group and '@' boxes, so class names such
// as "no_gun" would render as subscripts without escaping.
std::string tex_escape(std::string_view s, size_t max_chars = 40) {
  std::string out;
  size_t n = 0;
  for (char c : s) {
    if (++n > max_chars) {
      out += "..";
      break;
    }
    if (c == '\\' || c == '_' || c == '^' || c == '{' || c == '}' || c == '@') out += '\\';
    out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (!std::isfinite(v)) return fmt::format("{}", v);
  if (v == std::round(v) && std::abs(v) < 1e12) return fmt::format("{:.0f}", v);
  return fmt::format("{:.3g}", v);
}

constexpr double kFontSize = 2.2;

// Approximate advance of one character at relative size 1, in pixels: MathGL scales its font with the canvas
// height (measured: ~7.5 px per character for a 600 px tall plot).
double char_px_for(int height) {
  return 3.4 * kFontSize * height / 600.0;
}

// Margins around the plot area, in pixels.
struct Margins {
  double left = 80, right = 30, top = 50, bottom = 60;
};

// One MathGL canvas whose plot area sits exactly at the given pixel margins, so text can be placed in pixels.
class Canvas {
 public:
  Canvas(const PlotSpec& spec, const Margins& m) : spec_(spec), m_(m), gr_(0, spec.width, spec.height) {
    // Font size is relative to the canvas; this gives ~13 px tick labels on a 900x600 plot.
    gr_.SetFontSize(kFontSize);
    const double w = spec.width, h = spec.height;
    gr_.InPlot(m.left / w, 1 - m.right / w, m.bottom / h, 1 - m.top / h, false);
    // The default factor shrinks the plot area to leave room for 3D rotation, which 2D plots never need;
    // it must be set after InPlot, which resets it.
    gr_.SetPlotFactor(1);
    gr_.SetCut(false);
  }

  mglGraph& g() { return gr_; }
  double plot_width() const { return spec_.width - m_.left - m_.right; }
  double plot_height() const { return spec_.height - m_.top - m_.bottom; }
  // Approximate width of one character at relative size 1, for layout decisions.
  double char_px() const { return char_px_for(spec_.height); }

  void set_ranges(double x0, double x1, double y0, double y1) {
    x0_ = x0, x1_ = x1, y0_ = y0, y1_ = y1;
    gr_.SetRanges(x0, x1, y0, y1);
    if (spec_.log_y) gr_.SetFunc("", "lg(y)");
  }

  // Data coordinates of a pixel (origin top-left), also outside the plot area.
  mglPoint at_px(double px, double py) const {
    double fx = (px - m_.left) / plot_width();
    double fy = (spec_.height - m_.bottom - py) / plot_height();
    double x = x0_ + fx * (x1_ - x0_);
    double y = spec_.log_y ? std::pow(10.0, std::log10(y0_) + fy * (std::log10(y1_) - std::log10(y0_)))
                           : y0_ + fy * (y1_ - y0_);
    return {x, y};
  }
  double px_x(double x) const { return m_.left + (x - x0_) / (x1_ - x0_) * plot_width(); }
  double px_y(double y) const {
    double f = spec_.log_y ? (std::log10(y) - std::log10(y0_)) / (std::log10(y1_) - std::log10(y0_))
                           : (y - y0_) / (y1_ - y0_);
    return spec_.height - m_.bottom - f * plot_height();
  }

  // Text at a pixel position; `style` is MathGL's colour + ":L"/":C"/":R" alignment.
  void text(double px, double py, const std::string& s, const std::string& style, double size = -1) {
    gr_.Puts(at_px(px, py), s.c_str(), style.c_str(), size);
  }
  // Text running from (px, py) along the pixel direction (dx, dy).
  void text_dir(double px, double py, double dx, double dy, const std::string& s, const std::string& style,
                double size = -1) {
    gr_.Puts(at_px(px, py), at_px(px + dx, py + dy), s.c_str(), style.c_str(), size);
  }

  // Title, axis labels, grid, numeric ticks (on the axes in `axes`, e.g. "xy" or "y") and the frame.
  void frame(const char* axes) {
    gr_.SetRotatedText(false);  // horizontal tick labels on the y axis
    // MathGL would otherwise factor out "x10^3" into a label it places outside the canvas.
    gr_.SetTuneTicks(0);
    gr_.SetTickTempl('x', "%g");  // "1000", not MathGL's "1e3"
    if (!spec_.log_y) gr_.SetTickTempl('y', "%g");
    if (*axes) {
      gr_.Grid(axes, kGridColour);
      gr_.Axis(axes);
    }
    gr_.Box("k", false);
    gr_.SetRotatedText(true);
    if (!spec_.title.empty())
      text(spec_.width / 2.0, m_.top / 2.0, tex_escape(spec_.title, 120), "k:C", -1.5);
    if (!spec_.xlabel.empty()) {
      text(m_.left + plot_width() / 2, spec_.height - 0.35 * char_px() * 4, tex_escape(spec_.xlabel, 120),
           "k:C", -1.15);
    }
    if (!spec_.ylabel.empty()) {
      text_dir(2.4 * char_px(), m_.top + plot_height() / 2, 0, -10, tex_escape(spec_.ylabel, 120), "k:C",
               -1.15);
    }
  }

  void no_data() {
    set_ranges(0, 1, spec_.log_y ? 1 : 0, spec_.log_y ? 10 : 1);
    frame("");
    text(m_.left + plot_width() / 2, m_.top + plot_height() / 2, "no data", "{x7F7F7F}:C", -1.6);
  }

  // Draws a filled rectangle in data coordinates.
  void rect(double x0, double y0, double x1, double y1, const char* colour) {
    gr_.Face(mglPoint(x0, y0), mglPoint(x1, y0), mglPoint(x0, y1), mglPoint(x1, y1), colour);
  }

  void save(const fs::path& png);

 private:
  PlotSpec spec_;
  Margins m_;
  mglGraph gr_;
  double x0_ = 0, x1_ = 1, y0_ = 0, y1_ = 1;
};

void Canvas::save(const fs::path& png) {
  try {
    if (png.has_parent_path()) ensure_dir(png.parent_path());
  } catch (const IoError& e) {
    throw IoError(fmt::format("cannot write plot {}: {}", to_utf8(png), e.what()));
  }
  thread_local std::mt19937_64 rng{std::random_device{}()};
  fs::path tmp = png;
  tmp += fmt::format(".tmp{:x}.png", rng());
  gr_.WritePNG(tmp.c_str(), "", false);
  std::error_code ec;
  auto size = fs::file_size(tmp, ec);
  if (ec || size == 0) {
    fs::remove(tmp, ec);
    throw IoError(fmt::format("cannot write plot {}", to_utf8(png)));
  }
  fs::rename(tmp, png, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw IoError(fmt::format("cannot move plot into place {}: {}", to_utf8(png), ec.message()));
  }
}

void validate_spec(const PlotSpec& spec) {
  VIGIL_CHECK(spec.width >= 100 && spec.height >= 100 && spec.width <= 10000 && spec.height <= 10000,
              "expected plot size between 100x100 and 10000x10000, got {}x{}", spec.width, spec.height);
  for (const auto* r : {&spec.x_range, &spec.y_range}) {
    VIGIL_CHECK(!*r || (*r)->first < (*r)->second, "expected a plot range with min < max, got [{}, {}]",
                (*r)->first, (*r)->second);
  }
}

// Pads [lo, hi] by `frac` of its span, widening a zero span so MathGL gets a valid range.
std::pair<double, double> padded(double lo, double hi, double frac) {
  if (!(hi > lo)) return {lo - 0.5, hi + 0.5};
  double pad = (hi - lo) * frac;
  return {lo - pad, hi + pad};
}

// Value axis for bars: from zero (or the smallest positive value on a log axis) to a little above the top.
std::pair<double, double> bar_value_range(const std::vector<double>& values, bool log_y) {
  double lo = 0, hi = 0, min_pos = INFINITY;
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    lo = std::min(lo, v), hi = std::max(hi, v);
    if (v > 0) min_pos = std::min(min_pos, v);
  }
  if (log_y) {
    if (!std::isfinite(min_pos)) return {1, 10};
    return {min_pos / 2, hi * 3};
  }
  if (hi == lo) hi = lo + 1;
  double span = hi - lo;
  return {lo < 0 ? lo - 0.12 * span : 0, hi > 0 ? hi + 0.12 * span : 0};
}

// Draws bars [edges[i], edges[i+1]) x [base, values[i]] and, when `labels`, each value above its bar.
void draw_bars(Canvas& c, const std::vector<double>& left, const std::vector<double>& right,
               const std::vector<double>& values, double base, bool labels) {
  double label_size = left.size() > 30 ? -0.6 : (left.size() > 15 ? -0.75 : -0.9);
  for (size_t i = 0; i < values.size(); ++i) {
    double v = values[i];
    if (!std::isfinite(v) || v == base) continue;
    c.rect(left[i], base, right[i], v, kBarColour);
    if (!labels) continue;
    double px = c.px_x((left[i] + right[i]) / 2);
    double py = c.px_y(v) + (v >= base ? -0.9 : 0.9) * c.char_px() * 1.6;
    c.text(px, py, format_value(v), "k:C", label_size);
  }
}

struct CategoryLayout {
  bool vertical = false;
  double bottom = 60;  // pixels needed below the plot area
};

CategoryLayout category_layout(const std::vector<std::string>& labels, double plot_px, double char_px) {
  size_t longest = 0;
  for (const auto& l : labels) longest = std::max(longest, std::min<size_t>(l.size(), 28));
  CategoryLayout out;
  double per_label = plot_px / std::max<size_t>(labels.size(), 1);
  out.vertical = static_cast<double>(longest) * char_px * 0.9 > per_label * 0.9;
  out.bottom = out.vertical ? 0.9 * longest * char_px + 6 * char_px : 8 * char_px;
  return out;
}

// Category names under each slot of a bar chart / heatmap column.
void draw_category_labels(Canvas& c, const std::vector<std::string>& labels, double bottom_px,
                          bool vertical) {
  double size = labels.size() > 30 ? -0.75 : -0.9;
  for (size_t i = 0; i < labels.size(); ++i) {
    double px = c.px_x(static_cast<double>(i) + 0.5);
    std::string s = tex_escape(labels[i], 28);
    if (vertical) {
      // Reading upwards and ending just under the slot. Only vertical works: MathGL maps a text direction
      // through the axis ranges, so other angles come out skewed by the plot's aspect ratio.
      c.text_dir(px + 0.6 * c.char_px(), bottom_px + 0.8 * c.char_px(), 0, -10, s, "k:R", size);
    } else {
      c.text(px, bottom_px + 2.2 * c.char_px(), s, "k:C", size);
    }
  }
}

}  // namespace

void bar_chart(const std::vector<std::string>& labels, const std::vector<double>& values,
               const PlotSpec& spec, const fs::path& png) {
  validate_spec(spec);
  VIGIL_CHECK(labels.size() == values.size(),
              "expected as many labels as values, got {} labels and {} values", labels.size(), values.size());
  std::lock_guard lock(mgl_mutex());
  Margins m;
  double char_px = char_px_for(spec.height);
  auto layout = category_layout(labels, spec.width - m.left - m.right, char_px);
  m.bottom = std::min(layout.bottom, spec.height * 0.45);
  Canvas c(spec, m);
  if (values.empty()) {
    c.no_data();
    c.save(png);
    return;
  }
  auto [lo, hi] = bar_value_range(values, spec.log_y);
  c.set_ranges(0, static_cast<double>(values.size()), lo, hi);
  c.frame("y");
  std::vector<double> left, right;
  for (size_t i = 0; i < values.size(); ++i) {
    left.push_back(i + 0.15);
    right.push_back(i + 0.85);
  }
  draw_bars(c, left, right, values, spec.log_y ? lo : 0.0, true);
  draw_category_labels(c, labels, spec.height - m.bottom, layout.vertical);
  c.save(png);
}

void histogram(const std::vector<double>& values, int bins, const PlotSpec& spec, const fs::path& png) {
  validate_spec(spec);
  VIGIL_CHECK(bins >= 1 && bins <= 10000, "expected 1..10000 histogram bins, got {}", bins);
  std::vector<double> finite;
  for (double v : values) {
    if (std::isfinite(v)) finite.push_back(v);
  }
  std::lock_guard lock(mgl_mutex());
  Canvas c(spec, Margins{});
  if (finite.empty()) {
    c.no_data();
    c.save(png);
    return;
  }
  auto [mn, mx] = std::minmax_element(finite.begin(), finite.end());
  auto [lo, hi] = padded(*mn, *mx, 0.0);
  double width = (hi - lo) / bins;
  std::vector<double> counts(bins, 0.0), left(bins), right(bins);
  for (double v : finite) counts[std::min(bins - 1, static_cast<int>((v - lo) / width))] += 1;
  // A hairline gap keeps neighbouring bars of equal height distinguishable.
  for (int b = 0; b < bins; ++b) left[b] = lo + (b + 0.03) * width, right[b] = lo + (b + 0.97) * width;
  auto [ylo, yhi] = bar_value_range(counts, spec.log_y);
  c.set_ranges(lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo), ylo, yhi);
  c.frame("xy");
  draw_bars(c, left, right, counts, spec.log_y ? ylo : 0.0, bins <= 30);
  c.save(png);
}

void scatter(const std::vector<double>& x, const std::vector<double>& y, const PlotSpec& spec,
             const fs::path& png) {
  validate_spec(spec);
  VIGIL_CHECK(x.size() == y.size(), "expected x and y of the same length, got {} and {}", x.size(), y.size());
  std::vector<double> xs, ys;
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isfinite(x[i]) && std::isfinite(y[i]) && (!spec.log_y || y[i] > 0)) {
      xs.push_back(x[i]);
      ys.push_back(y[i]);
    }
  }
  std::lock_guard lock(mgl_mutex());
  Canvas c(spec, Margins{});
  if (xs.empty()) {
    c.no_data();
    c.save(png);
    return;
  }
  auto [xmn, xmx] = std::minmax_element(xs.begin(), xs.end());
  auto [ymn, ymx] = std::minmax_element(ys.begin(), ys.end());
  auto xr = spec.x_range.value_or(padded(*xmn, *xmx, 0.05));
  auto yr = spec.y_range.value_or(spec.log_y ? std::pair{*ymn / 2, *ymx * 2} : padded(*ymn, *ymx, 0.05));
  c.set_ranges(xr.first, xr.second, yr.first, yr.second);
  c.frame("xy");
  mglData dx(static_cast<long>(xs.size())), dy(static_cast<long>(ys.size()));
  for (size_t i = 0; i < xs.size(); ++i) dx.a[i] = xs[i], dy.a[i] = ys[i];
  c.g().SetMarkSize(xs.size() > 2000 ? 0.5 : 0.8);
  c.g().Plot(dx, dy, fmt::format(" #o{}", kPalette[0]).c_str());
  c.save(png);
}

namespace {

// Index of the plot corner (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) with the fewest points,
// so the legend hides as little of the curves as possible.
int emptiest_corner(const std::vector<Series>& series, double x0, double x1, double y0, double y1) {
  std::array<size_t, 4> hits{};
  for (const auto& s : series) {
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      double fx = (s.x[i] - x0) / (x1 - x0), fy = (s.y[i] - y0) / (y1 - y0);
      if (fx < 0.55 && fy > 0.45) ++hits[0];
      if (fx > 0.45 && fy > 0.45) ++hits[1];
      if (fx < 0.55 && fy < 0.55) ++hits[2];
      if (fx > 0.45 && fy < 0.55) ++hits[3];
    }
  }
  // Prefer bottom-left on ties: PR and ROC-like curves leave it empty.
  int best = 2;
  for (int k : {3, 1, 0}) {
    if (hits[k] < hits[best]) best = k;
  }
  return best;
}

void draw_legend(Canvas& c, const std::vector<Series>& series, int corner, double left, double top, double w,
                 double h) {
  double cp = c.char_px(), row = 2.4 * cp;
  size_t longest = 0;
  for (const auto& s : series) longest = std::max(longest, std::min<size_t>(s.name.size(), 40));
  double bw = (longest * 0.9 + 8) * cp, bh = row * series.size() + cp;
  double bx = (corner % 2 == 0) ? left + 1.5 * cp : left + w - bw - 1.5 * cp;
  double by = (corner < 2) ? top + 1.5 * cp : top + h - bh - 1.5 * cp;
  mglPoint p0 = c.at_px(bx, by + bh), p1 = c.at_px(bx + bw, by);
  c.rect(p0.x, p0.y, p1.x, p1.y, "w");
  mglPoint corners[] = {c.at_px(bx, by), c.at_px(bx + bw, by), c.at_px(bx + bw, by + bh),
                        c.at_px(bx, by + bh)};
  for (int k = 0; k < 4; ++k) c.g().Line(corners[k], corners[(k + 1) % 4], "{x999999}");
  for (size_t i = 0; i < series.size(); ++i) {
    double y = by + cp * 0.5 + row * (i + 0.5);
    std::string colour = kPalette[i % kPalette.size()];
    c.g().Line(c.at_px(bx + cp, y), c.at_px(bx + 5 * cp, y), (colour + "-3").c_str());
    c.text(bx + 6 * cp, y, tex_escape(series[i].name), "k:L", -0.9);
  }
}

}  // namespace

void line_plot(const std::vector<Series>& series, const PlotSpec& spec, const fs::path& png) {
  validate_spec(spec);
  double xmn = INFINITY, xmx = -INFINITY, ymn = INFINITY, ymx = -INFINITY;
  for (const auto& s : series) {
    VIGIL_CHECK(s.x.size() == s.y.size(), "expected x and y of the same length in series '{}', got {} and {}",
                s.name, s.x.size(), s.y.size());
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i]) || (spec.log_y && s.y[i] <= 0)) continue;
      xmn = std::min(xmn, s.x[i]), xmx = std::max(xmx, s.x[i]);
      ymn = std::min(ymn, s.y[i]), ymx = std::max(ymx, s.y[i]);
    }
  }
  std::lock_guard lock(mgl_mutex());
  Margins m;
  Canvas c(spec, m);
  if (!std::isfinite(xmn)) {
    c.no_data();
    c.save(png);
    return;
  }
  auto xr = spec.x_range.value_or(padded(xmn, xmx, 0.02));
  auto yr = spec.y_range.value_or(spec.log_y ? std::pair{ymn / 2, ymx * 2} : padded(ymn, ymx, 0.05));
  c.set_ranges(xr.first, xr.second, yr.first, yr.second);
  c.frame("xy");
  for (size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    if (s.x.empty()) continue;
    mglData dx(static_cast<long>(s.x.size())), dy(static_cast<long>(s.y.size()));
    for (size_t i = 0; i < s.x.size(); ++i) dx.a[i] = s.x[i], dy.a[i] = s.y[i];
    std::string style = std::string(kPalette[k % kPalette.size()]) + (s.x.size() == 1 ? " #o" : "-3");
    c.g().Plot(dx, dy, style.c_str());
  }
  double pw = c.plot_width(), ph = c.plot_height();
  int corner = spec.log_y ? 1 : emptiest_corner(series, xr.first, xr.second, yr.first, yr.second);
  draw_legend(c, series, corner, m.left, m.top, pw, ph);
  c.save(png);
}

namespace {

// White to dark blue, as MathGL colour "{xRRGGBB}"; `t` in [0, 1].
std::string heat_colour(double t) {
  t = std::clamp(std::isfinite(t) ? t : 0.0, 0.0, 1.0);
  auto mix = [t](int a, int b) { return static_cast<int>(std::lround(a + (b - a) * t)); };
  return fmt::format("{{x{:02X}{:02X}{:02X}}}", mix(0xF7, 0x08), mix(0xFB, 0x30), mix(0xFF, 0x6B));
}

struct HeatRange {
  double lo = 0, hi = 1;
  bool integers = true;
};

HeatRange heat_range(const std::vector<std::vector<double>>& m) {
  HeatRange r{INFINITY, -INFINITY, true};
  for (const auto& row : m) {
    for (double v : row) {
      if (!std::isfinite(v)) continue;
      r.lo = std::min(r.lo, v), r.hi = std::max(r.hi, v);
      if (v != std::round(v)) r.integers = false;
    }
  }
  if (!std::isfinite(r.lo)) r.lo = 0, r.hi = 1;
  if (r.lo > 0 && r.hi > 0) r.lo = 0;  // counts and rates read best against a zero baseline
  if (r.hi <= r.lo) r.hi = r.lo + 1;
  return r;
}

// A vertical colour strip right of the plot with its low, middle and high values.
void draw_colour_bar(Canvas& c, const HeatRange& r, double left_px, double top_px, double h_px) {
  const int steps = 64;
  double w = 1.8 * c.char_px();
  for (int i = 0; i < steps; ++i) {
    mglPoint a = c.at_px(left_px, top_px + h_px * (steps - i) / steps);
    mglPoint b = c.at_px(left_px + w, top_px + h_px * (steps - i - 1) / steps);
    c.rect(a.x, a.y, b.x, b.y, heat_colour((i + 0.5) / steps).c_str());
  }
  for (int k = 0; k <= 2; ++k) {
    double v = r.lo + (r.hi - r.lo) * k / 2.0;
    std::string s = r.integers && v == std::round(v) ? format_value(v) : fmt::format("{:.2f}", v);
    c.text(left_px + w + 0.6 * c.char_px(), top_px + h_px * (1 - k / 2.0), s, "k:L", -0.85);
  }
}

}  // namespace

void heatmap(const std::vector<std::vector<double>>& m, const std::vector<std::string>& row_labels,
             const std::vector<std::string>& col_labels, const PlotSpec& spec, const fs::path& png,
             bool annotate) {
  validate_spec(spec);
  size_t rows = m.size(), cols = rows ? m[0].size() : 0;
  for (const auto& row : m) {
    VIGIL_CHECK(row.size() == cols, "expected every heatmap row to have {} columns, got {}", cols,
                row.size());
  }
  VIGIL_CHECK(row_labels.empty() || row_labels.size() == rows, "expected {} row labels, got {}", rows,
              row_labels.size());
  VIGIL_CHECK(col_labels.empty() || col_labels.size() == cols, "expected {} column labels, got {}", cols,
              col_labels.size());
  std::lock_guard lock(mgl_mutex());
  double cp = char_px_for(spec.height);
  Margins mg;
  size_t longest_row = 0;
  for (const auto& l : row_labels) longest_row = std::max(longest_row, std::min<size_t>(l.size(), 28));
  mg.left = std::min(std::max(mg.left, (longest_row + 5.0) * cp), spec.width * 0.35);
  mg.right = 9 * cp;
  auto layout = category_layout(col_labels, spec.width - mg.left - mg.right, cp);
  mg.bottom = std::min(layout.bottom, spec.height * 0.45);
  Canvas c(spec, mg);
  if (rows == 0 || cols == 0) {
    c.no_data();
    c.save(png);
    return;
  }
  HeatRange r = heat_range(m);
  c.set_ranges(0, static_cast<double>(cols), 0, static_cast<double>(rows));
  c.frame("");
  double text_size = std::max(rows, cols) > 20 ? -0.6 : (std::max(rows, cols) > 10 ? -0.8 : -1.0);
  for (size_t i = 0; i < rows; ++i) {
    double y0 = static_cast<double>(rows - i - 1);
    for (size_t j = 0; j < cols; ++j) {
      double t = (m[i][j] - r.lo) / (r.hi - r.lo);
      c.rect(j, y0, j + 1.0, y0 + 1, heat_colour(t).c_str());
      if (!annotate) continue;
      std::string s = r.integers ? format_value(m[i][j]) : fmt::format("{:.2f}", m[i][j]);
      c.text(c.px_x(j + 0.5), c.px_y(y0 + 0.5), s, t > 0.5 ? "w:C" : "k:C", text_size);
    }
    if (i < row_labels.size()) {
      c.text(mg.left - 0.8 * cp, c.px_y(y0 + 0.5), tex_escape(row_labels[i], 28), "k:R", -0.9);
    }
  }
  c.g().Box("k", false);
  draw_category_labels(c, col_labels, spec.height - mg.bottom, layout.vertical);
  draw_colour_bar(c, r, spec.width - mg.right + 1.5 * cp, mg.top, c.plot_height());
  c.save(png);
}

}  // namespace vigil::image
