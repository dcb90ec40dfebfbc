#include "vigil/monitor/image_stats.h"

#include <fmt/format.h>
#include <opencv2/imgproc.hpp>

#include <nlohmann/json.hpp>

#include <cmath>

#include "vigil/core/error.h"
#include "vigil/core/strings.h"

namespace vigil::monitor {

namespace {

// Scaling first keeps the cost flat whatever the upload's size, and makes sharpness comparable between a
// 225 px training image and a 1920 px camera frame (the Laplacian's variance depends on the scale).
constexpr int kSide = 128;

double round3(double v) {
  return std::round(v * 1000) / 1000;
}

}  // namespace

ImageStats image_stats(const cv::Mat& bgr) {
  VIGIL_CHECK(!bgr.empty(), "expected an image, got an empty one");
  ImageStats s;
  s.width = bgr.cols;
  s.height = bgr.rows;
  s.aspect = static_cast<double>(bgr.cols) / bgr.rows;
  cv::Mat small = bgr;
  // Halving by area averaging while the image is at least twice the target (OpenCV's fast path: 0.07 ms for
  // 640x480 where one fractional INTER_AREA step takes 0.3 ms), then bilinear for the last step of less than
  // 2x: every image ends with the same long side, anti-aliased, whatever its size.
  while (std::max(small.cols, small.rows) >= 2 * kSide)
    cv::resize(small, small, {small.cols / 2, small.rows / 2}, 0, 0, cv::INTER_AREA);
  if (std::max(small.cols, small.rows) > kSide) {
    const double scale = static_cast<double>(kSide) / std::max(small.cols, small.rows);
    cv::resize(small, small,
               {std::max(1, static_cast<int>(std::lround(small.cols * scale))),
                std::max(1, static_cast<int>(std::lround(small.rows * scale)))},
               0, 0, cv::INTER_LINEAR);
  }
  cv::Mat colour = small;
  if (small.channels() == 1) cv::cvtColor(small, colour, cv::COLOR_GRAY2BGR);
  if (small.channels() == 4) cv::cvtColor(small, colour, cv::COLOR_BGRA2BGR);
  cv::Mat grey;
  cv::cvtColor(colour, grey, cv::COLOR_BGR2GRAY);
  cv::Scalar mean, sd;
  cv::meanStdDev(grey, mean, sd);
  s.brightness = mean[0];
  s.contrast = sd[0];
  cv::Mat lap;
  cv::Laplacian(grey, lap,
                CV_16S);  // exact for 8-bit input (at most 4 x 255 either way), and cheaper than 64F
  cv::meanStdDev(lap, mean, sd);
  s.sharpness = sd[0] * sd[0];
  const cv::Scalar channels = cv::mean(colour);
  s.blue = channels[0];
  s.green = channels[1];
  s.red = channels[2];
  cv::Mat hsv;
  cv::cvtColor(colour, hsv, cv::COLOR_BGR2HSV);
  s.saturation = cv::mean(hsv)[1];
  return s;
}

const std::vector<std::string>& image_stat_names() {
  static const std::vector<std::string> names = {"width",    "height",    "aspect",     "brightness",
                                                 "contrast", "sharpness", "saturation", "red",
                                                 "green",    "blue"};
  return names;
}

double image_stat(const ImageStats& s, const std::string& name) {
  if (name == "width") return s.width;
  if (name == "height") return s.height;
  if (name == "aspect") return s.aspect;
  if (name == "brightness") return s.brightness;
  if (name == "contrast") return s.contrast;
  if (name == "sharpness") return s.sharpness;
  if (name == "saturation") return s.saturation;
  if (name == "red") return s.red;
  if (name == "green") return s.green;
  if (name == "blue") return s.blue;
  throw InvalidArgument(
      fmt::format("expected an image statistic ({}), got '{}'", join(image_stat_names(), ", "), name));
}

nlohmann::json to_json(const ImageStats& s) {
  nlohmann::json j;
  for (const auto& name : image_stat_names()) {
    const double v = image_stat(s, name);
    if (name == "width" || name == "height")
      j[name] = static_cast<int>(v);
    else
      j[name] = round3(v);
  }
  return j;
}

ImageStats image_stats_from_json(const nlohmann::json& j) {
  ImageStats s;
  auto get = [&](const char* key) {
    return j.contains(key) && j[key].is_number() ? j[key].get<double>() : 0.0;
  };
  s.width = static_cast<int>(get("width"));
  s.height = static_cast<int>(get("height"));
  s.aspect = get("aspect");
  s.brightness = get("brightness");
  s.contrast = get("contrast");
  s.sharpness = get("sharpness");
  s.saturation = get("saturation");
  s.red = get("red");
  s.green = get("green");
  s.blue = get("blue");
  return s;
}

}  // namespace vigil::monitor
