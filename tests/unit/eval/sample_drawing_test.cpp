#include "vigil/eval/sample_drawing.h"

#include <gtest/gtest.h>

#include <opencv2/core.hpp>

#include <cmath>
#include <cstdlib>

#include "tests_util.h"
#include "vigil/image/decode.h"

namespace vigil::eval {
namespace {

// A flat mid-grey picture, so any coloured pixel comes from the drawing.
std::string grey_png(int width, int height) {
  cv::Mat img(height, width, CV_8UC3, cv::Scalar(128, 128, 128));
  return image::encode(img, "png");
}

cv::Mat decode_jpeg(const std::string& bytes) {
  EXPECT_EQ(image::sniff_type(bytes), image::ImageType::kJpeg);
  auto d = image::decode(bytes);
  EXPECT_TRUE(d.ok()) << d.error.kind_name() << ": " << d.error.detail;
  return d.bgr;
}

// "#rrggbb" against a BGR pixel, with room for JPEG's colour error.
void expect_colour(const cv::Mat& img, int x, int y, const char* css, const char* what) {
  unsigned long v = std::stoul(std::string(css + 1), nullptr, 16);
  int r = static_cast<int>((v >> 16) & 0xFF), g = static_cast<int>((v >> 8) & 0xFF),
      b = static_cast<int>(v & 0xFF);
  auto p = img.at<cv::Vec3b>(y, x);
  EXPECT_NEAR(p[0], b, 40) << what << " at " << x << "," << y;
  EXPECT_NEAR(p[1], g, 40) << what << " at " << x << "," << y;
  EXPECT_NEAR(p[2], r, 40) << what << " at " << x << "," << y;
}

void expect_grey(const cv::Mat& img, int x, int y, const char* what) {
  auto p = img.at<cv::Vec3b>(y, x);
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(p[c], 128, 12) << what << " at " << x << "," << y;
}

TEST(SampleDrawing, ColoursFollowTheMatchStatus) {
  std::vector<TruthBox> truth = {{20, 150, 120, 280, "gun", false},  // missed: orange
                                 {240, 10, 390, 140, "gun", true}};  // matched: not drawn by default
  std::vector<PredictedBox> preds = {{260, 30, 370, 110, "gun", 0.91f, true},      // green
                                     {150, 160, 230, 280, "knife", 0.4f, false}};  // red
  SampleDrawingOptions o;
  o.thickness = 6;
  auto r = draw_sample(grey_png(400, 300), truth, preds, o);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  // Set VIGIL_PLOT_TEST_OUT=/some/dir to keep the picture for a look.
  if (const char* keep = std::getenv("VIGIL_PLOT_TEST_OUT"); keep && *keep) {
    vigil::testing::write_text(std::filesystem::path(keep) / "sample_drawing.jpg", r.value());
  }
  cv::Mat img = decode_jpeg(r.value());
  ASSERT_EQ(img.cols, 400);
  ASSERT_EQ(img.rows, 300);
  // The middle of each box's left edge, 3 px into the 6 px frame (captions sit at the top).
  expect_colour(img, 23, 230, kMissedColour, "missed truth");
  expect_colour(img, 263, 70, kTruePositiveColour, "true positive");
  expect_colour(img, 153, 230, kFalsePositiveColour, "false positive");
  // Inside the boxes nothing changes.
  expect_grey(img, 70, 230, "inside the missed box");
  expect_grey(img, 190, 230, "inside the false positive");
  // Where only the matched truth's frame would be: its left and bottom edges.
  expect_grey(img, 243, 70, "matched truth's left edge");
  expect_grey(img, 315, 137, "matched truth's bottom edge");
}

TEST(SampleDrawing, MatchedTruthDrawnGreyWhenAsked) {
  SampleDrawingOptions o;
  o.thickness = 6;
  o.draw_matched_truth = true;
  auto r = draw_sample(grey_png(400, 300), {{100, 100, 300, 250, "", true}}, {}, o);
  ASSERT_TRUE(r.is_ok());
  cv::Mat img = decode_jpeg(r.value());
  // #7f7f7f on mid-grey is nearly invisible to a tolerance test: check it is darker than the background.
  auto p = img.at<cv::Vec3b>(175, 103);
  EXPECT_LT(p[0], 128);
}

TEST(SampleDrawing, LargeImagesShrinkWithTheirBoxes) {
  SampleDrawingOptions o;
  o.max_side = 640;
  o.thickness = 6;
  auto r = draw_sample(grey_png(1280, 960), {}, {{600, 400, 1000, 800, "", -1, false}}, o);
  ASSERT_TRUE(r.is_ok());
  cv::Mat img = decode_jpeg(r.value());
  ASSERT_EQ(img.cols, 640);
  ASSERT_EQ(img.rows, 480);
  // Halved: the box is now (300, 200)-(500, 400).
  expect_colour(img, 303, 300, kFalsePositiveColour, "scaled false positive");
  expect_grey(img, 290, 300, "left of the scaled box");
}

TEST(SampleDrawing, TruthBesidePredictionDrawsTwoCaptionedPanels) {
  // One true positive over a matched truth, one missed truth, one false positive.
  std::vector<TruthBox> truth = {{240, 10, 390, 140, "gun", true}, {20, 150, 120, 280, "gun", false}};
  std::vector<PredictedBox> preds = {{260, 30, 370, 110, "gun", 0.91f, true},
                                     {150, 160, 230, 280, "knife", 0.4f, false}};
  SampleDrawingOptions o;
  o.thickness = 6;
  o.truth_beside_prediction = true;
  auto r = draw_sample(grey_png(400, 300), truth, preds, o);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  if (const char* keep = std::getenv("VIGIL_PLOT_TEST_OUT"); keep && *keep) {
    vigil::testing::write_text(std::filesystem::path(keep) / "sample_pair.jpg", r.value());
  }
  cv::Mat img = decode_jpeg(r.value());
  // Two 400 px panels, a 5 px gap (400 / 80), under a 21 px caption strip (300 / 14).
  const int strip = 21, right = 405;
  ASSERT_EQ(img.cols, 805);
  ASSERT_EQ(img.rows, 300 + strip);
  // Left: every ground-truth box, the matched one blue, the missed one orange; no prediction.
  expect_colour(img, 243, strip + 75, kFoundTruthColour, "matched truth (left)");
  expect_colour(img, 23, strip + 230, kMissedColour, "missed truth (left)");
  expect_grey(img, 263, strip + 70, "no prediction on the truth side");
  expect_grey(img, 153, strip + 230, "no false positive on the truth side");
  // Right: the predictions only, green and red; the missed truth is not drawn there.
  expect_colour(img, right + 263, strip + 70, kTruePositiveColour, "true positive (right)");
  expect_colour(img, right + 153, strip + 230, kFalsePositiveColour, "false positive (right)");
  expect_grey(img, right + 23, strip + 230, "no truth on the prediction side");
  // The gap is white and the caption strips are dark.
  auto gap = img.at<cv::Vec3b>(150, 402);
  for (int c = 0; c < 3; ++c) EXPECT_GT(gap[c], 220);
  auto caption = img.at<cv::Vec3b>(2, 2);
  for (int c = 0; c < 3; ++c) EXPECT_LT(caption[c], 80);
}

TEST(SampleDrawing, BadImagesAreStatusesAndBadOptionsThrow) {
  auto r = draw_sample("definitely not an image", {}, {});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidData);
  EXPECT_NE(r.status().message().find("not_an_image"), std::string::npos) << r.status().message();
  vigil::testing::TempDir tmp;
  auto missing = draw_sample_file(tmp / "nope.jpg", {}, {});
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
  vigil::testing::write_image(tmp / "ok.jpg", 64, 48);
  auto ok = draw_sample_file(tmp / "ok.jpg", {}, {});
  ASSERT_TRUE(ok.is_ok()) << ok.status().message();
  EXPECT_EQ(image::probe_header(ok.value()).width, 64);
  SampleDrawingOptions o;
  o.jpeg_quality = 0;
  EXPECT_THROW((void)draw_sample(grey_png(10, 10), {}, {}, o), InvalidArgument);
  o = {};
  o.max_side = 4;
  EXPECT_THROW((void)draw_sample(grey_png(10, 10), {}, {}, o), InvalidArgument);
}

}  // namespace
}  // namespace vigil::eval
