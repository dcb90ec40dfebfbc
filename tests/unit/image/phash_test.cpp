#include "vigil/image/phash.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "tests_util.h"
#include "vigil/image/decode.h"

namespace vigil::image {
namespace {

using vigil::testing::TempDir;
using vigil::testing::write_image;

cv::Mat make_image(int seed, int w = 160, int h = 120) {
  TempDir dir;
  const auto path = dir / "img.png";
  write_image(path, w, h, seed);
  return cv::imread(path.string(), cv::IMREAD_COLOR);
}

cv::Mat reencode(const cv::Mat& img, int quality) {
  const std::string bytes = encode(img, "jpg", quality);
  Decoded d = decode(bytes);
  EXPECT_TRUE(d.ok()) << d.error.detail;
  return d.bgr;
}

TEST(Hamming, CountsDifferingBits) {
  EXPECT_EQ(hamming(0, 0), 0);
  EXPECT_EQ(hamming(0, ~uint64_t{0}), 64);
  EXPECT_EQ(hamming(0b1011, 0b0001), 2);
}

TEST(Phash, IsDeterministicAndColourConversionAgnostic) {
  const cv::Mat img = make_image(1);
  EXPECT_EQ(phash(img), phash(img.clone()));
  cv::Mat gray, bgra;
  cv::cvtColor(img, gray, cv::COLOR_BGR2GRAY);
  cv::cvtColor(img, bgra, cv::COLOR_BGR2BGRA);
  EXPECT_EQ(phash(gray), phash(img));
  EXPECT_EQ(phash(bgra), phash(img));
}

TEST(Phash, SmallDistanceForReencodedResizedOrBrightenedCopies) {
  const cv::Mat img = make_image(2);
  const uint64_t h = phash(img);
  cv::Mat half, brighter;
  cv::resize(img, half, cv::Size(), 0.5, 0.5, cv::INTER_AREA);
  img.convertTo(brighter, -1, 1.0, 25);
  EXPECT_LE(hamming(h, phash(reencode(img, 40))), 4);
  EXPECT_LE(hamming(h, phash(reencode(img, 90))), 2);
  EXPECT_LE(hamming(h, phash(half)), 4);
  EXPECT_LE(hamming(h, phash(brighter)), 4);
}

TEST(Phash, LargeDistanceForDifferentImages) {
  for (int seed = 10; seed < 20; ++seed) {
    const int d = hamming(phash(make_image(seed)), phash(make_image(seed + 100)));
    EXPECT_GE(d, 16) << "seed " << seed;
  }
}

TEST(Phash, HandlesTinyImagesAndRefusesEmptyOnes) {
  const cv::Mat one(1, 1, CV_8UC3, cv::Scalar(10, 20, 30));
  EXPECT_NO_THROW(phash(one));
  EXPECT_THROW(phash(cv::Mat()), InvalidArgument);
  EXPECT_THROW(phash(cv::Mat(4, 4, CV_32FC3)), InvalidArgument);
}

}  // namespace
}  // namespace vigil::image
