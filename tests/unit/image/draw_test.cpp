#include "vigil/image/draw.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <tuple>

#include "vigil/core/error.h"

namespace vigil::image {
namespace {

const cv::Vec3b kGrey(100, 100, 100);

bool changed(const cv::Mat& img, int x, int y) {
  return img.at<cv::Vec3b>(y, x) != kGrey;
}

TEST(DrawBoxes, EdgesChangeAndInteriorStays) {
  cv::Mat img(200, 300, CV_8UC3, cv::Scalar(100, 100, 100));
  draw_boxes(img, {DrawBox{50, 60, 150, 160, "", -1, 0, cv::Scalar(0, 0, 255)}}, 2);
  // x2/y2 are exclusive: the frame covers columns 50..149 and rows 60..159.
  EXPECT_EQ(img.at<cv::Vec3b>(100, 50), cv::Vec3b(0, 0, 255));
  EXPECT_EQ(img.at<cv::Vec3b>(100, 51), cv::Vec3b(0, 0, 255));
  EXPECT_EQ(img.at<cv::Vec3b>(100, 149), cv::Vec3b(0, 0, 255));
  EXPECT_EQ(img.at<cv::Vec3b>(60, 100), cv::Vec3b(0, 0, 255));
  EXPECT_EQ(img.at<cv::Vec3b>(159, 100), cv::Vec3b(0, 0, 255));
  EXPECT_FALSE(changed(img, 100, 110));
  EXPECT_FALSE(changed(img, 53, 100));
  EXPECT_FALSE(changed(img, 150, 100));
  EXPECT_FALSE(changed(img, 49, 100));
  EXPECT_FALSE(changed(img, 250, 20));
}

TEST(DrawBoxes, CaptionAboveBoxWithClassColour) {
  cv::Mat img(300, 300, CV_8UC3, cv::Scalar(100, 100, 100));
  draw_boxes(img, {DrawBox{100, 150, 200, 250, "gun", 0.93f, 3, std::nullopt}});
  cv::Vec3b c(static_cast<uchar>(class_color(3)[0]), static_cast<uchar>(class_color(3)[1]),
              static_cast<uchar>(class_color(3)[2]));
  EXPECT_EQ(img.at<cv::Vec3b>(200, 100), c);
  int caption_pixels = 0;
  for (int y = 120; y < 150; ++y) {
    for (int x = 100; x < 200; ++x) caption_pixels += changed(img, x, y);
  }
  EXPECT_GT(caption_pixels, 200);  // the filled caption background sits above the box
  EXPECT_FALSE(changed(img, 150, 200));
}

TEST(DrawBoxes, BoxesPartlyOrFullyOutsideDoNotCrash) {
  cv::Mat img(100, 120, CV_8UC3, cv::Scalar(100, 100, 100));
  std::vector<DrawBox> boxes = {
      {-50, -40, 60, 50, "top left corner with a long caption", 0.5f, 1, std::nullopt},
      {90, 80, 400, 300, "bottom right", 0.99f, 2, std::nullopt},
      {500, 500, 600, 600, "outside", 0.1f, 3, std::nullopt},
      {10, 10, 10, 10, "empty", -1, 4, std::nullopt},
      {NAN, 0, 10, 10, "nan", -1, 5, std::nullopt},
      {0, 0, 120, 100, "whole image", 1.0f, -7, std::nullopt},
  };
  EXPECT_NO_THROW(draw_boxes(img, boxes));
  EXPECT_TRUE(changed(img, 0, 49));    // left edge of the first box, clipped at the border
  EXPECT_TRUE(changed(img, 119, 90));  // right border of the second box
}

TEST(DrawBoxes, RejectsNonBgrImages) {
  cv::Mat grey(10, 10, CV_8UC1);
  EXPECT_THROW(draw_boxes(grey, {}), InvalidArgument);
}

TEST(ClassColor, DistinctAndStable) {
  std::set<std::tuple<double, double, double>> seen;
  for (int i = 0; i < 20; ++i) {
    auto c = class_color(i);
    seen.insert({c[0], c[1], c[2]});
    EXPECT_EQ(c, class_color(i));
  }
  EXPECT_EQ(seen.size(), 20u);
  EXPECT_EQ(class_color(20), class_color(0));
  EXPECT_NO_THROW(class_color(-3));
}

}  // namespace
}  // namespace vigil::image
