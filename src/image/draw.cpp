#include "vigil/image/draw.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <array>
#include <cmath>

#include "vigil/core/error.h"

namespace vigil::image {
namespace {

// BGR of a 20-colour palette with neighbouring entries far apart in hue, so classes 0..19 are distinct.
constexpr std::array<std::array<int, 3>, 20> kPalette = {{
    {56, 56, 255},  {151, 157, 255}, {31, 112, 255}, {29, 178, 255},  {49, 210, 207},
    {10, 249, 72},  {23, 204, 146},  {134, 219, 61}, {52, 147, 26},   {187, 212, 0},
    {168, 153, 44}, {255, 194, 0},   {147, 69, 52},  {255, 115, 100}, {236, 24, 0},
    {255, 56, 132}, {133, 0, 82},    {255, 56, 203}, {200, 149, 255}, {199, 55, 255},
}};

std::string caption(const DrawBox& b) {
  if (b.score < 0) return b.label;
  std::string s = cv::format("%.2f", static_cast<double>(b.score));
  return b.label.empty() ? s : b.label + " " + s;
}

// Black text on light colours, white on dark ones (perceived luminance).
cv::Scalar text_colour(const cv::Scalar& bg) {
  double lum = 0.114 * bg[0] + 0.587 * bg[1] + 0.299 * bg[2];
  return lum > 150 ? cv::Scalar(0, 0, 0) : cv::Scalar(255, 255, 255);
}

void draw_caption(cv::Mat& img, const cv::Rect& box, const std::string& text, const cv::Scalar& colour,
                  int thickness) {
  const int font = cv::FONT_HERSHEY_SIMPLEX;
  double scale = std::max(0.35, std::min(img.cols, img.rows) / 1000.0);
  int text_thick = std::max(1, thickness / 2);
  int baseline = 0;
  cv::Size ts = cv::getTextSize(text, font, scale, text_thick, &baseline);
  int pad = std::max(2, thickness);
  int w = std::min(ts.width + 2 * pad, img.cols), h = std::min(ts.height + baseline + 2 * pad, img.rows);
  // Above the box when it fits, else just inside its top edge; then shifted to stay within the image.
  int x = std::clamp(box.x, 0, img.cols - w);
  int y = box.y - h >= 0 ? box.y - h : box.y;
  y = std::clamp(y, 0, img.rows - h);
  cv::rectangle(img, cv::Rect(x, y, w, h), colour, cv::FILLED);
  cv::putText(img, text, {x + pad, y + pad + ts.height}, font, scale, text_colour(colour), text_thick,
              cv::LINE_AA);
}

}  // namespace

cv::Scalar class_color(int class_id) {
  const auto& c = kPalette[static_cast<size_t>(std::abs(class_id % static_cast<int>(kPalette.size())))];
  return cv::Scalar(c[0], c[1], c[2]);
}

void draw_boxes(cv::Mat& bgr, const std::vector<DrawBox>& boxes, int thickness) {
  VIGIL_CHECK(!bgr.empty() && bgr.type() == CV_8UC3,
              "expected a non-empty 8-bit BGR image, got type {} size {}x{}", bgr.type(), bgr.cols, bgr.rows);
  VIGIL_CHECK(thickness >= 0, "expected thickness >= 0, got {}", thickness);
  int t = thickness > 0 ? thickness
                        : std::max(1, static_cast<int>(std::lround(std::min(bgr.cols, bgr.rows) / 300.0)));
  const cv::Rect image(0, 0, bgr.cols, bgr.rows);
  for (const auto& b : boxes) {
    if (!std::isfinite(b.x1) || !std::isfinite(b.y1) || !std::isfinite(b.x2) || !std::isfinite(b.y2))
      continue;
    // x2/y2 are exclusive edges (torchvision convention), so the last pixel column is x2 - 1.
    cv::Rect r(cv::Point(static_cast<int>(std::floor(b.x1)), static_cast<int>(std::floor(b.y1))),
               cv::Point(static_cast<int>(std::ceil(b.x2)), static_cast<int>(std::ceil(b.y2))));
    r &= image;
    if (r.width <= 0 || r.height <= 0) continue;
    cv::Scalar colour = b.color.value_or(class_color(b.class_id));
    // Drawn inside the rectangle so that a box at the image border keeps its full line width.
    int inset = std::min({t, r.width, r.height});
    for (int k = 0; k < inset; ++k) {
      cv::Rect edge(r.x + k, r.y + k, r.width - 2 * k, r.height - 2 * k);
      if (edge.width <= 0 || edge.height <= 0) break;
      cv::rectangle(bgr, edge, colour, 1);
    }
    std::string text = caption(b);
    if (!text.empty()) draw_caption(bgr, r, text, colour, t);
  }
}

}  // namespace vigil::image
