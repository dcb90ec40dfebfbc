#include "vigil/data/augment.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

#include "vigil/core/error.h"

namespace vigil::data {

namespace {

void check_probability(const char* name, double p) {
  VIGIL_CHECK(p >= 0 && p <= 1, "expected {} in [0, 1], got {}", name, p);
}

/// Integer uniform in [0, n] inclusive.
int uniform_int(std::mt19937_64& rng, int n) {
  if (n <= 0) return 0;
  return std::min(n, static_cast<int>(uniform01(rng) * (n + 1)));
}

void hflip(cv::Mat& bgr, std::vector<Box>& boxes) {
  cv::flip(bgr, bgr, 1);
  const auto w = static_cast<float>(bgr.cols);
  for (auto& b : boxes) {
    const float x1 = w - b.x2, x2 = w - b.x1;
    b.x1 = x1;
    b.x2 = x2;
  }
}

/// Box edges are continuous coordinates (x2 exclusive), so an edge at x maps to x * (new_w / old_w), which is
/// also where cv::resize puts it (pixel centres map as (x + 0.5) * s - 0.5).
void scale_jitter(cv::Mat& bgr, std::vector<Box>& boxes, double s) {
  const int w = std::max(1, static_cast<int>(std::lround(bgr.cols * s)));
  const int h = std::max(1, static_cast<int>(std::lround(bgr.rows * s)));
  if (w == bgr.cols && h == bgr.rows) return;
  const float sx = static_cast<float>(w) / bgr.cols, sy = static_cast<float>(h) / bgr.rows;
  cv::resize(bgr, bgr, cv::Size(w, h), 0, 0, cv::INTER_LINEAR);
  for (auto& b : boxes) {
    b.x1 *= sx;
    b.x2 *= sx;
    b.y1 *= sy;
    b.y2 *= sy;
  }
}

/// Shifts boxes into `crop` and clips them; keeps those with at least `min_visible` of their area inside.
std::vector<Box> crop_boxes(const std::vector<Box>& boxes, const cv::Rect& crop, double min_visible) {
  std::vector<Box> kept;
  for (Box b : boxes) {
    const float area = b.area();
    b.x1 = std::clamp(b.x1 - crop.x, 0.0f, static_cast<float>(crop.width));
    b.x2 = std::clamp(b.x2 - crop.x, 0.0f, static_cast<float>(crop.width));
    b.y1 = std::clamp(b.y1 - crop.y, 0.0f, static_cast<float>(crop.height));
    b.y2 = std::clamp(b.y2 - crop.y, 0.0f, static_cast<float>(crop.height));
    if (b.width() <= 0 || b.height() <= 0) continue;
    if (area > 0 && b.area() < min_visible * area) continue;
    kept.push_back(b);
  }
  return kept;
}

/// A crop that leaves an annotated image without any box turns a positive example into a background one, so a
/// few crops are tried and the image is left uncropped when none keeps a box.
void random_crop(cv::Mat& bgr, std::vector<Box>& boxes, const DetectionAugmentOptions& o,
                 std::mt19937_64& rng) {
  constexpr int kAttempts = 10;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    const int w = std::max(1, static_cast<int>(std::lround(bgr.cols * uniform(rng, o.crop_min_scale, 1.0))));
    const int h = std::max(1, static_cast<int>(std::lround(bgr.rows * uniform(rng, o.crop_min_scale, 1.0))));
    const cv::Rect crop(uniform_int(rng, bgr.cols - w), uniform_int(rng, bgr.rows - h), w, h);
    auto kept = crop_boxes(boxes, crop, o.min_visible);
    if (kept.empty() && !boxes.empty()) continue;
    bgr = bgr(crop).clone();
    boxes = std::move(kept);
    return;
  }
}

/// torchvision ColorJitter semantics (brightness: blend with black, contrast: with the mean grey, saturation:
/// with the greyscale image, hue: rotate H), in a fixed order. All factors are drawn up front so the number
/// of draws does not depend on the options.
void photometric(cv::Mat& bgr, const DetectionAugmentOptions& o, std::mt19937_64& rng) {
  const double b = uniform(rng, 1 - o.brightness, 1 + o.brightness);
  const double c = uniform(rng, 1 - o.contrast, 1 + o.contrast);
  const double s = uniform(rng, 1 - o.saturation, 1 + o.saturation);
  const double h = uniform(rng, -o.hue, o.hue);
  if (b != 1) bgr.convertTo(bgr, -1, b, 0);
  if (c != 1 || s != 1) {
    cv::Mat gray;
    cv::cvtColor(bgr, gray, cv::COLOR_BGR2GRAY);
    if (c != 1) {
      const double mean = cv::mean(gray)[0];
      bgr.convertTo(bgr, -1, c, (1 - c) * mean);
      if (s != 1) cv::cvtColor(bgr, gray, cv::COLOR_BGR2GRAY);
    }
    if (s != 1) {
      cv::Mat gray3;
      cv::cvtColor(gray, gray3, cv::COLOR_GRAY2BGR);
      cv::addWeighted(bgr, s, gray3, 1 - s, 0, bgr);
    }
  }
  const int shift = static_cast<int>(std::lround(h * 256));
  if (shift != 0) {
    cv::Mat hsv;
    cv::cvtColor(bgr, hsv, cv::COLOR_BGR2HSV_FULL);  // H over 0..255: finer steps than 0..179
    cv::Mat lut(1, 256, CV_8UC3);
    for (int i = 0; i < 256; ++i) lut.at<cv::Vec3b>(i) = cv::Vec3b((i + shift + 256) % 256, i, i);
    cv::LUT(hsv, lut, hsv);
    cv::cvtColor(hsv, bgr, cv::COLOR_HSV2BGR_FULL);
  }
}

}  // namespace

void DetectionAugmentOptions::validate() const {
  check_probability("hflip", hflip);
  check_probability("crop_prob", crop_prob);
  check_probability("min_visible", min_visible);
  VIGIL_CHECK(scale_min > 0 && scale_min <= scale_max && scale_max <= 10,
              "expected 0 < scale_min <= scale_max <= 10, got scale_min {} and scale_max {}", scale_min,
              scale_max);
  VIGIL_CHECK(crop_min_scale > 0 && crop_min_scale <= 1, "expected crop_min_scale in (0, 1], got {}",
              crop_min_scale);
  check_probability("brightness", brightness);
  check_probability("contrast", contrast);
  check_probability("saturation", saturation);
  VIGIL_CHECK(hue >= 0 && hue <= 0.5, "expected hue in [0, 0.5], got {}", hue);
  check_probability("mosaic", mosaic);
}

MosaicPart mosaic4(const std::vector<MosaicPart>& parts, double min_visible, std::mt19937_64& rng) {
  VIGIL_CHECK(parts.size() == 4, "expected 4 images for a mosaic, got {}", parts.size());
  for (const auto& p : parts) {
    VIGIL_CHECK(p.bgr.type() == CV_8UC3 && !p.bgr.empty(),
                "expected non-empty 8-bit BGR mosaic parts, got type {} {}x{}", p.bgr.type(), p.bgr.cols,
                p.bgr.rows);
  }
  const int s = std::max(parts[0].bgr.cols, parts[0].bgr.rows);
  const int xc = s / 2 + uniform_int(rng, s - 1), yc = s / 2 + uniform_int(rng, s - 1);
  cv::Mat canvas(2 * s, 2 * s, CV_8UC3, cv::Scalar(114, 114, 114));  // Ultralytics' grey
  const cv::Rect window(s / 2, s / 2, s, s);                         // what is returned
  std::vector<Box> boxes;
  for (int k = 0; k < 4; ++k) {
    const cv::Mat& img = parts[static_cast<size_t>(k)].bgr;
    const int w = img.cols, h = img.rows;
    // Canvas rectangle a and the part's rectangle b of the same size (load_mosaic's x1a..y2b).
    int x1a, y1a, x2a, y2a, x1b, y1b;
    if (k == 0) {
      x1a = std::max(xc - w, 0), y1a = std::max(yc - h, 0), x2a = xc, y2a = yc;
      x1b = w - (x2a - x1a), y1b = h - (y2a - y1a);
    } else if (k == 1) {
      x1a = xc, y1a = std::max(yc - h, 0), x2a = std::min(xc + w, 2 * s), y2a = yc;
      x1b = 0, y1b = h - (y2a - y1a);
    } else if (k == 2) {
      x1a = std::max(xc - w, 0), y1a = yc, x2a = xc, y2a = std::min(2 * s, yc + h);
      x1b = w - (x2a - x1a), y1b = 0;
    } else {
      x1a = xc, y1a = yc, x2a = std::min(xc + w, 2 * s), y2a = std::min(2 * s, yc + h);
      x1b = 0, y1b = 0;
    }
    const int cw = x2a - x1a, ch = y2a - y1a;
    if (cw <= 0 || ch <= 0) continue;
    img(cv::Rect(x1b, y1b, cw, ch)).copyTo(canvas(cv::Rect(x1a, y1a, cw, ch)));
    // The part's boxes, moved onto the canvas and clipped to the piece copied there and to the window that
    // is returned; the visible fraction is measured against the whole box in its part.
    const cv::Rect visible = cv::Rect(x1a, y1a, cw, ch) & window;
    const auto dx = static_cast<float>(x1a - x1b), dy = static_cast<float>(y1a - y1b);
    for (Box b : parts[static_cast<size_t>(k)].boxes) {
      const float area = b.area();
      b.x1 = std::clamp(b.x1 + dx, static_cast<float>(visible.x), static_cast<float>(visible.br().x));
      b.x2 = std::clamp(b.x2 + dx, static_cast<float>(visible.x), static_cast<float>(visible.br().x));
      b.y1 = std::clamp(b.y1 + dy, static_cast<float>(visible.y), static_cast<float>(visible.br().y));
      b.y2 = std::clamp(b.y2 + dy, static_cast<float>(visible.y), static_cast<float>(visible.br().y));
      if (b.width() <= 0 || b.height() <= 0) continue;
      if (area > 0 && b.area() < min_visible * area) continue;
      b.x1 -= static_cast<float>(window.x), b.x2 -= static_cast<float>(window.x);
      b.y1 -= static_cast<float>(window.y), b.y2 -= static_cast<float>(window.y);
      boxes.push_back(b);
    }
  }
  MosaicPart out;
  out.bgr = canvas(window).clone();
  out.boxes = std::move(boxes);
  return out;
}

void augment_detection(cv::Mat& bgr, std::vector<Box>& boxes, const DetectionAugmentOptions& o,
                       std::mt19937_64& rng) {
  VIGIL_CHECK(bgr.type() == CV_8UC3 && !bgr.empty(),
              "expected a non-empty 8-bit BGR image, got type {} {}x{}", bgr.type(), bgr.cols, bgr.rows);
  if (!o.enabled) return;
  // Each step draws its decision even when skipped, so one option change does not reshuffle the others.
  const bool flip = bernoulli(rng, o.hflip);
  const double scale = uniform(rng, o.scale_min, o.scale_max);
  const bool crop = bernoulli(rng, o.crop_prob);
  if (flip) hflip(bgr, boxes);
  scale_jitter(bgr, boxes, scale);
  if (crop) random_crop(bgr, boxes, o, rng);
  photometric(bgr, o, rng);
}

void ClassificationAugmentOptions::validate() const {
  VIGIL_CHECK(crop_scale_min > 0 && crop_scale_min <= 1, "expected crop_scale_min in (0, 1], got {}",
              crop_scale_min);
  check_probability("hflip", hflip);
  VIGIL_CHECK(rotation_deg >= 0 && rotation_deg <= 180, "expected rotation_deg in [0, 180], got {}",
              rotation_deg);
  VIGIL_CHECK(brightness_min > 0 && brightness_min <= brightness_max,
              "expected 0 < brightness_min <= brightness_max, got {} and {}", brightness_min, brightness_max);
  VIGIL_CHECK(shift >= 0 && shift < 1, "expected shift in [0, 1), got {}", shift);
  VIGIL_CHECK(zoom >= 0 && zoom < 1, "expected zoom in [0, 1), got {}", zoom);
}

namespace {

/// torchvision RandomResizedCrop.get_params with ratio (3/4, 4/3).
cv::Rect2d random_resized_crop(int width, int height, double scale_min, std::mt19937_64& rng) {
  const double area = static_cast<double>(width) * height;
  const double log_lo = std::log(3.0 / 4.0), log_hi = std::log(4.0 / 3.0);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * uniform(rng, scale_min, 1.0);
    const double ratio = std::exp(uniform(rng, log_lo, log_hi));
    const int w = static_cast<int>(std::lround(std::sqrt(target * ratio)));
    const int h = static_cast<int>(std::lround(std::sqrt(target / ratio)));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      const int y = uniform_int(rng, height - h), x = uniform_int(rng, width - w);
      return {static_cast<double>(x), static_cast<double>(y), static_cast<double>(w), static_cast<double>(h)};
    }
  }
  // Fallback: the largest centred crop whose ratio is within bounds.
  double w = width, h = height;
  const double in_ratio = w / h;
  if (in_ratio < 3.0 / 4.0) h = std::round(w * 4.0 / 3.0);
  if (in_ratio > 4.0 / 3.0) w = std::round(h * 4.0 / 3.0);
  return {(width - w) / 2, (height - h) / 2, w, h};
}

}  // namespace

cv::Mat augment_classification(const cv::Mat& bgr, const ClassificationAugmentOptions& o, int out_w,
                               int out_h, std::mt19937_64& rng) {
  VIGIL_CHECK(bgr.type() == CV_8UC3 && !bgr.empty(),
              "expected a non-empty 8-bit BGR image, got type {} {}x{}", bgr.type(), bgr.cols, bgr.rows);
  VIGIL_CHECK(out_w > 0 && out_h > 0, "expected a positive output size, got {}x{}", out_w, out_h);
  cv::Mat out;
  if (!o.enabled) {
    cv::resize(bgr, out, cv::Size(out_w, out_h), 0, 0, cv::INTER_LINEAR);
    return out;
  }
  const cv::Rect2d crop = random_resized_crop(bgr.cols, bgr.rows, o.crop_scale_min, rng);
  const bool flip = bernoulli(rng, o.hflip);
  const double angle = uniform(rng, -o.rotation_deg, o.rotation_deg) * CV_PI / 180;
  const double tx = uniform(rng, -o.shift, o.shift) * out_w, ty = uniform(rng, -o.shift, o.shift) * out_h;
  const double zx = uniform(rng, 1 - o.zoom, 1 + o.zoom), zy = uniform(rng, 1 - o.zoom, 1 + o.zoom);
  const double brightness = uniform(rng, o.brightness_min, o.brightness_max);

  // Source -> output: crop and resize (pixel-centre convention, as cv::resize), then about the output centre
  // zoom, rotate, mirror and shift. One warp means one interpolation for all geometric steps.
  const double sx = out_w / crop.width, sy = out_h / crop.height;
  const cv::Matx33d to_out(sx, 0, (0.5 - crop.x) * sx - 0.5, 0, sy, (0.5 - crop.y) * sy - 0.5, 0, 0, 1);
  const double cx = (out_w - 1) / 2.0, cy = (out_h - 1) / 2.0;
  const double ca = std::cos(angle), sa = std::sin(angle), f = flip ? -1 : 1;
  const cv::Matx22d a = cv::Matx22d(f, 0, 0, 1) * cv::Matx22d(ca, -sa, sa, ca) * cv::Matx22d(zx, 0, 0, zy);
  const cv::Matx33d about_centre(a(0, 0), a(0, 1), cx + tx - a(0, 0) * cx - a(0, 1) * cy,  //
                                 a(1, 0), a(1, 1), cy + ty - a(1, 0) * cx - a(1, 1) * cy,  //
                                 0, 0, 1);
  const cv::Matx33d m = about_centre * to_out;
  const cv::Matx23d m23(m(0, 0), m(0, 1), m(0, 2), m(1, 0), m(1, 1), m(1, 2));
  // Keras' default fill_mode "nearest" repeats the edge pixels.
  cv::warpAffine(bgr, out, m23, cv::Size(out_w, out_h), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  if (brightness != 1) out.convertTo(out, -1, brightness, 0);
  return out;
}

}  // namespace vigil::data
