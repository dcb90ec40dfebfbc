#include "vigil/image/phash.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <array>
#include <bit>

#include "vigil/core/error.h"

namespace vigil::image {

namespace {
constexpr int kSide = 32;  // DCT input size: small enough to ignore noise, large enough for structure
constexpr int kBlock = 8;  // low-frequency block kept -> 64 bits

cv::Mat to_gray(const cv::Mat& img) {
  if (img.channels() == 1) return img;
  cv::Mat gray;
  cv::cvtColor(img, gray, img.channels() == 4 ? cv::COLOR_BGRA2GRAY : cv::COLOR_BGR2GRAY);
  return gray;
}
}  // namespace

uint64_t phash(const cv::Mat& bgr) {
  VIGIL_CHECK(!bgr.empty(), "expected a non-empty image for phash, got an empty one");
  VIGIL_CHECK(bgr.depth() == CV_8U && (bgr.channels() == 1 || bgr.channels() == 3 || bgr.channels() == 4),
              "expected an 8-bit image with 1, 3 or 4 channels for phash, got depth {} with {} channels",
              bgr.depth(), bgr.channels());
  cv::Mat small, real, freq;
  // INTER_AREA averages every source pixel, so downscaling does not alias (re-encoded or resized copies of
  // one image land on nearly the same 32x32 grid).
  cv::resize(to_gray(bgr), small, cv::Size(kSide, kSide), 0, 0, cv::INTER_AREA);
  small.convertTo(real, CV_32F);
  cv::dct(real, freq);

  std::array<float, kBlock * kBlock> coef{};
  for (int r = 0; r < kBlock; ++r) {
    for (int c = 0; c < kBlock; ++c) coef[r * kBlock + c] = freq.at<float>(r, c);
  }
  std::array<float, kBlock* kBlock> sorted = coef;
  std::sort(sorted.begin(), sorted.end());
  const float median = (sorted[31] + sorted[32]) / 2.0f;

  uint64_t hash = 0;
  for (int i = 0; i < kBlock * kBlock; ++i) {
    if (coef[i] > median) hash |= uint64_t{1} << i;
  }
  return hash;
}

int hamming(uint64_t a, uint64_t b) {
  return std::popcount(a ^ b);
}

}  // namespace vigil::image
