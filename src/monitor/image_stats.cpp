#include "vigil/monitor/image_stats.h"

#include <fmt/format.h>
#include <opencv2/imgproc.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

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

/// Integer sums of the statistics of a small 8-bit BGR image, in two passes over it instead of the eight
/// OpenCV calls (grey conversion, two meanStdDev, Laplacian, mean, HSV conversion, mean) they replace, each
/// of which allocated and walked an image of its own: image_stats of a 225x225 image 130 -> 98 us
/// (bench/monitor_bench). For camera-sized frames the downscale before them is most of the cost.
struct SmallSums {
  int64_t grey = 0, grey_sq = 0;            ///< OpenCV's 8-bit grey (COLOR_BGR2GRAY)
  int64_t laplacian = 0, laplacian_sq = 0;  ///< cv::Laplacian(grey, CV_16S): ksize 1, BORDER_REFLECT_101
  int64_t saturation = 0;                   ///< S of OpenCV's 8-bit COLOR_BGR2HSV
  std::array<int64_t, 3> bgr{};
};

// OpenCV's fixed-point weights for 8-bit BGR -> grey (imgproc's color_rgb: 0.114, 0.587, 0.299 in 15 bits):
// Y = (3735 B + 19235 G + 9798 R + 2^14) >> 15.
constexpr int kGreyShift = 15, kBlueToGrey = 3735, kGreenToGrey = 19235, kRedToGrey = 9798;
// OpenCV's 8-bit saturation: S = (diff * round(255 * 2^12 / V) + 2^11) >> 12, 0 where V is 0.
constexpr int kHsvShift = 12;

const std::array<int, 256>& saturation_divisors() {
  static const std::array<int, 256> table = [] {
    std::array<int, 256> t{};
    for (int v = 1; v < 256; ++v) t[v] = cvRound((255 << kHsvShift) / static_cast<double>(v));
    return t;
  }();
  return table;
}

/// BORDER_REFLECT_101's index for i in -1..n (a 1-pixel line reflects onto itself).
int reflect101(int i, int n) {
  if (n == 1) return 0;
  if (i < 0) return -i;
  if (i >= n) return 2 * n - i - 2;
  return i;
}

SmallSums small_image_sums(const cv::Mat& bgr) {
  CV_Assert(bgr.type() == CV_8UC3 && bgr.cols <= kSide);
  const int w = bgr.cols, h = bgr.rows;
  const auto& divisors = saturation_divisors();
  SmallSums sums;
  // Sums per row in 32 bits (a row is at most kSide pixels: 255^2 x 128 fits); the rows add up in 64 bits.
  std::vector<int> grey(static_cast<size_t>(w) * h);
  for (int y = 0; y < h; ++y) {
    const uint8_t* p = bgr.ptr<uint8_t>(y);
    int* g = grey.data() + static_cast<size_t>(y) * w;
    int grey_sum = 0, grey_sq = 0, blue = 0, green = 0, red = 0, saturation = 0;
    for (int x = 0; x < w; ++x) {
      const int b = p[3 * x], gr = p[3 * x + 1], r = p[3 * x + 2];
      const int v =
          (b * kBlueToGrey + gr * kGreenToGrey + r * kRedToGrey + (1 << (kGreyShift - 1))) >> kGreyShift;
      g[x] = v;
      grey_sum += v;
      grey_sq += v * v;
      blue += b;
      green += gr;
      red += r;
      const int hi = std::max(std::max(b, gr), r), lo = std::min(std::min(b, gr), r);
      saturation += ((hi - lo) * divisors[hi] + (1 << (kHsvShift - 1))) >> kHsvShift;
    }
    sums.grey += grey_sum;
    sums.grey_sq += grey_sq;
    sums.bgr[0] += blue;
    sums.bgr[1] += green;
    sums.bgr[2] += red;
    sums.saturation += saturation;
  }
  for (int y = 0; y < h; ++y) {
    const int* up = grey.data() + static_cast<size_t>(reflect101(y - 1, h)) * w;
    const int* mid = grey.data() + static_cast<size_t>(y) * w;
    const int* down = grey.data() + static_cast<size_t>(reflect101(y + 1, h)) * w;
    int lap_sum = 0, lap_sq = 0;  // |lap| <= 1020: 1020^2 x 128 fits
    auto add = [&](int x, int left, int right) {
      const int lap = up[x] + down[x] + mid[left] + mid[right] - 4 * mid[x];
      lap_sum += lap;
      lap_sq += lap * lap;
    };
    add(0, reflect101(-1, w), reflect101(1, w));
    for (int x = 1; x < w - 1; ++x) add(x, x - 1, x + 1);  // the interior needs no reflection
    if (w > 1) add(w - 1, w - 2, reflect101(w, w));
    sums.laplacian += lap_sum;
    sums.laplacian_sq += lap_sq;
  }
  return sums;
}

}  // namespace

ImageStats image_stats(const cv::Mat& bgr) {
  VIGIL_CHECK(!bgr.empty(), "expected an image, got an empty one");
  VIGIL_CHECK(bgr.depth() == CV_8U && (bgr.channels() == 1 || bgr.channels() == 3 || bgr.channels() == 4),
              "expected an 8-bit grey, BGR or BGRA image, got depth {} with {} channels", bgr.depth(),
              bgr.channels());
  ImageStats s;
  s.width = bgr.cols;
  s.height = bgr.rows;
  s.aspect = static_cast<double>(bgr.cols) / bgr.rows;
  cv::Mat small = bgr;
  // Halving by area averaging while the image is at least twice the target (OpenCV's fast path: 0.07 ms for
  // 640x480 where one fractional INTER_AREA step takes 0.3 ms), then bilinear for the last step of less than
  // 2x: every image ends with the same long side, anti-aliased, whatever its size. A side of 1 pixel
  // cannot halve (a 300x1 image once failed OpenCV's assertion here): the bilinear step shrinks it alone.
  while (std::max(small.cols, small.rows) >= 2 * kSide && std::min(small.cols, small.rows) >= 2)
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
  const SmallSums sums = small_image_sums(colour);
  const double scale = 1.0 / static_cast<double>(colour.total());
  // OpenCV's order of operations (cv::mean, cv::meanStdDev: sums times 1 / N), so the values equal the
  // cvtColor + meanStdDev + Laplacian + cvtColor(HSV) pipeline they replace to the last bit
  // (tests/unit/monitor/image_stats_test.cpp).
  const auto std_dev = [&](int64_t sum, int64_t sum_sq) {
    const double mean = static_cast<double>(sum) * scale;
    return std::sqrt(std::max(static_cast<double>(sum_sq) * scale - mean * mean, 0.0));
  };
  s.brightness = static_cast<double>(sums.grey) * scale;
  s.contrast = std_dev(sums.grey, sums.grey_sq);
  const double lap_sd = std_dev(sums.laplacian, sums.laplacian_sq);
  s.sharpness = lap_sd * lap_sd;
  s.blue = static_cast<double>(sums.bgr[0]) * scale;
  s.green = static_cast<double>(sums.bgr[1]) * scale;
  s.red = static_cast<double>(sums.bgr[2]) * scale;
  s.saturation = static_cast<double>(sums.saturation) * scale;
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
