#include "vigil/eval/sample_drawing.h"

#include <fmt/format.h>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

#include "vigil/core/fs.h"
#include "vigil/image/decode.h"
#include "vigil/image/draw.h"

namespace vigil::eval {
namespace {

// "#rrggbb" -> OpenCV BGR.
cv::Scalar bgr_of(const char* css) {
  unsigned long v = std::stoul(std::string(css + 1), nullptr, 16);
  return cv::Scalar(static_cast<double>(v & 0xFF), static_cast<double>((v >> 8) & 0xFF),
                    static_cast<double>((v >> 16) & 0xFF));
}

image::DrawBox scaled(float x1, float y1, float x2, float y2, double s) {
  image::DrawBox b;
  b.x1 = static_cast<float>(x1 * s), b.y1 = static_cast<float>(y1 * s);
  b.x2 = static_cast<float>(x2 * s), b.y2 = static_cast<float>(y2 * s);
  return b;
}

/// Shrinks `bgr` in place to `max_side` on its longest side; returns the scale to apply to boxes.
double shrink(cv::Mat& bgr, int max_side) {
  const int longest = std::max(bgr.cols, bgr.rows);
  if (longest <= max_side) return 1.0;
  const double s = static_cast<double>(max_side) / longest;
  cv::Mat small;
  int w = std::max(1, static_cast<int>(std::lround(bgr.cols * s)));
  int h = std::max(1, static_cast<int>(std::lround(bgr.rows * s)));
  cv::resize(bgr, small, cv::Size(w, h), 0, 0, cv::INTER_AREA);
  bgr = small;
  return s;
}

/// `matched_colour` nullptr leaves matched ground truth out.
std::vector<image::DrawBox> truth_boxes(const std::vector<TruthBox>& truth, const char* matched_colour,
                                        double s) {
  std::vector<image::DrawBox> boxes;
  for (const auto& t : truth) {
    if (t.matched && !matched_colour) continue;
    auto b = scaled(t.x1, t.y1, t.x2, t.y2, s);
    b.label = t.label;
    b.color = bgr_of(t.matched ? matched_colour : kMissedColour);
    boxes.push_back(std::move(b));
  }
  return boxes;
}

/// False positives first, so true positives stay readable where they overlap.
std::vector<image::DrawBox> predicted_boxes(const std::vector<PredictedBox>& predictions, double s) {
  std::vector<image::DrawBox> boxes;
  for (bool tp : {false, true}) {
    for (const auto& p : predictions) {
      if (p.true_positive != tp) continue;
      auto b = scaled(p.x1, p.y1, p.x2, p.y2, s);
      b.label = p.label;
      b.score = p.score;
      b.color = bgr_of(tp ? kTruePositiveColour : kFalsePositiveColour);
      boxes.push_back(std::move(b));
    }
  }
  return boxes;
}

/// `panel` under a dark strip carrying `caption`, so a reader knows which side is which without a legend.
cv::Mat with_caption(const cv::Mat& panel, const std::string& caption) {
  const int strip = std::max(16, panel.rows / 14);
  const double scale = strip / 36.0;
  cv::Mat out(panel.rows + strip, panel.cols, panel.type(), cv::Scalar(48, 48, 48));
  panel.copyTo(out(cv::Rect(0, strip, panel.cols, panel.rows)));
  int baseline = 0;
  const cv::Size ts = cv::getTextSize(caption, cv::FONT_HERSHEY_SIMPLEX, scale, 1, &baseline);
  cv::putText(out, caption, {std::max(2, (panel.cols - ts.width) / 2), (strip + ts.height) / 2},
              cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(255, 255, 255), 1, cv::LINE_AA);
  return out;
}

std::string draw_on(cv::Mat& bgr, const std::vector<TruthBox>& truth,
                    const std::vector<PredictedBox>& predictions, const SampleDrawingOptions& options) {
  const double s = shrink(bgr, options.max_side);
  if (options.truth_beside_prediction) {
    cv::Mat left = bgr.clone();
    image::draw_boxes(left, truth_boxes(truth, kFoundTruthColour, s), options.thickness);
    image::draw_boxes(bgr, predicted_boxes(predictions, s), options.thickness);
    left = with_caption(left, fmt::format("ground truth ({})", truth.size()));
    cv::Mat right = with_caption(bgr, fmt::format("prediction ({})", predictions.size()));
    const cv::Mat gap(left.rows, std::max(2, left.cols / 80), left.type(), cv::Scalar(255, 255, 255));
    cv::Mat both;
    cv::hconcat(std::vector<cv::Mat>{left, gap, right}, both);
    return image::encode(both, "jpg", options.jpeg_quality);
  }
  // Ground truth first so that predictions, the thing being judged, stay readable on top of it.
  auto boxes = truth_boxes(truth, options.draw_matched_truth ? kMatchedTruthColour : nullptr, s);
  auto predicted = predicted_boxes(predictions, s);
  boxes.insert(boxes.end(), predicted.begin(), predicted.end());
  image::draw_boxes(bgr, boxes, options.thickness);
  return image::encode(bgr, "jpg", options.jpeg_quality);
}

Status decode_failure(const std::string& what, const image::DecodeError& e) {
  return Status(ErrorCode::kInvalidData,
                fmt::format("cannot draw sample {}: {}: {}", what, e.kind_name(), e.detail));
}

}  // namespace

void SampleDrawingOptions::validate() const {
  VIGIL_CHECK(max_side >= 16 && max_side <= 10000, "expected max_side in [16, 10000], got {}", max_side);
  VIGIL_CHECK(jpeg_quality >= 1 && jpeg_quality <= 100, "expected jpeg_quality in [1, 100], got {}",
              jpeg_quality);
  VIGIL_CHECK(thickness >= 0 && thickness <= 50, "expected thickness in [0, 50], got {}", thickness);
}

Result<std::string> draw_sample(std::string_view image_bytes, const std::vector<TruthBox>& truth,
                                const std::vector<PredictedBox>& predictions,
                                const SampleDrawingOptions& options) {
  options.validate();
  auto decoded = image::decode(image_bytes);
  if (!decoded.ok()) return decode_failure("(image bytes)", decoded.error);
  return draw_on(decoded.bgr, truth, predictions, options);
}

Result<std::string> draw_sample_file(const fs::path& image, const std::vector<TruthBox>& truth,
                                     const std::vector<PredictedBox>& predictions,
                                     const SampleDrawingOptions& options) {
  options.validate();
  std::error_code ec;
  if (!fs::exists(image, ec)) {
    return Status(ErrorCode::kNotFound, fmt::format("image not found: {}", to_utf8(image)));
  }
  auto decoded = image::decode_file(image.string());
  if (!decoded.ok()) return decode_failure(to_utf8(image), decoded.error);
  return draw_on(decoded.bgr, truth, predictions, options);
}

}  // namespace vigil::eval
