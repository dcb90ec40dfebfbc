// image_stats computes its small-image statistics in two passes of its own (grey, Laplacian, saturation and
// channel sums) instead of eight OpenCV calls. The rule: it equals the OpenCV pipeline it replaced
// (re-stated below as the definition) on real photographs of every size and channel count, on flat and
// one-pixel images, and on random noise, so reference profiles written before the change still compare
// like with like. Real photographs: the OpenCV sample images Debian's opencv-doc ships (installed by
// scripts/install-deps.sh).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "vigil/core/error.h"
#include "vigil/monitor/image_stats.h"

namespace vigil::monitor {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

const fs::path kSamples = "/usr/share/doc/opencv-doc/examples/data";

/// The definition: the statistics through OpenCV's own functions, as image_stats computed them before (and
/// with its one fix: an image 1 pixel high or wide is no longer halved to 0 pixels, which OpenCV refused).
ImageStats opencv_stats(const cv::Mat& bgr) {
  constexpr int kSide = 128;
  ImageStats s;
  s.width = bgr.cols;
  s.height = bgr.rows;
  s.aspect = static_cast<double>(bgr.cols) / bgr.rows;
  cv::Mat small = bgr;
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
  cv::Mat grey;
  cv::cvtColor(colour, grey, cv::COLOR_BGR2GRAY);
  cv::Scalar mean, sd;
  cv::meanStdDev(grey, mean, sd);
  s.brightness = mean[0];
  s.contrast = sd[0];
  cv::Mat lap;
  cv::Laplacian(grey, lap, CV_16S);
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

void expect_equal(const ImageStats& got, const ImageStats& want, const std::string& what) {
  for (const auto& name : image_stat_names()) {
    const double g = image_stat(got, name), w = image_stat(want, name);
    EXPECT_NEAR(g, w, 1e-9 * std::max(1.0, std::abs(w))) << what << ": " << name;
  }
}

TEST(ImageStats, EqualOpenCVsPipelineOnRealPhotographs) {
  if (!fs::is_directory(kSamples)) GTEST_SKIP() << "no " << kSamples << " (opencv-doc)";
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(kSamples)) {
    const std::string ext = entry.path().extension().string();
    if (ext != ".jpg" && ext != ".png") continue;
    for (const int flags : {cv::IMREAD_COLOR, cv::IMREAD_GRAYSCALE, cv::IMREAD_UNCHANGED}) {
      const cv::Mat img = cv::imread(entry.path().string(), flags);
      if (img.empty() || img.depth() != CV_8U) continue;
      expect_equal(
          image_stats(img), opencv_stats(img),
          entry.path().filename().string() + " with " + std::to_string(img.channels()) + " channels");
      ++checked;
    }
  }
  // opencv-doc 4.6 ships about 60 sample photographs; each is read as colour, grey and as stored.
  EXPECT_GE(checked, 60);
}

TEST(ImageStats, EqualOpenCVsPipelineOnNoiseFlatAndOnePixelImages) {
  cv::RNG rng(7);
  const std::vector<cv::Size> sizes = {{1, 1},   {1, 200},   {300, 1},   {2, 3},      {127, 128},
                                       {129, 5}, {255, 256}, {640, 480}, {1920, 1080}};
  for (const cv::Size size : sizes) {
    for (const int type : {CV_8UC1, CV_8UC3, CV_8UC4}) {
      cv::Mat noise(size, type);
      rng.fill(noise, cv::RNG::UNIFORM, 0, 256);
      expect_equal(image_stats(noise), opencv_stats(noise),
                   "noise " + std::to_string(size.width) + "x" + std::to_string(size.height));
      const cv::Mat flat(size, type, cv::Scalar(0, 128, 255, 255));
      expect_equal(image_stats(flat), opencv_stats(flat), "flat");
    }
  }
  const cv::Mat black = cv::Mat::zeros(48, 64, CV_8UC3);  // V = 0: OpenCV's saturation is 0, not a division
  expect_equal(image_stats(black), opencv_stats(black), "black");
  EXPECT_EQ(image_stats(black).saturation, 0);
}

TEST(ImageStats, RefusesEmptyAndNon8BitImages) {
  EXPECT_THAT([] { image_stats(cv::Mat()); },
              ThrowsMessage<InvalidArgument>(HasSubstr("expected an image, got an empty one")));
  EXPECT_THAT([] { image_stats(cv::Mat(8, 8, CV_16UC3, cv::Scalar::all(1000))); },
              ThrowsMessage<InvalidArgument>(HasSubstr("expected an 8-bit grey, BGR or BGRA image")));
}

}  // namespace
}  // namespace vigil::monitor
