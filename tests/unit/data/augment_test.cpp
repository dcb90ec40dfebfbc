#include "vigil/data/augment.h"

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

#include "vigil/core/config.h"
#include "vigil/core/error.h"

namespace vigil::data {
namespace {

// Marker colours no grey background pixel can be confused with, one per box.
const std::vector<cv::Vec3b> kColours{{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 0, 255}};

/// A noisy grey image with each box filled by its own pure colour, so the box can be measured back from
/// pixels.
cv::Mat marked_image(int w, int h, const std::vector<Box>& boxes) {
  cv::Mat grey(h, w, CV_8U);
  cv::RNG rng(7);
  rng.fill(grey, cv::RNG::UNIFORM, 70, 150);
  cv::Mat img;
  cv::cvtColor(grey, img, cv::COLOR_GRAY2BGR);
  for (size_t i = 0; i < boxes.size(); ++i) {
    const auto& b = boxes[i];
    const cv::Rect r(static_cast<int>(b.x1), static_cast<int>(b.y1), static_cast<int>(b.width()),
                     static_cast<int>(b.height()));
    img(r).setTo(cv::Scalar(kColours[i][0], kColours[i][1], kColours[i][2]));
  }
  return img;
}

/// Pixels at least half-way to the marker colour (so a resampled edge is counted by its majority).
cv::Mat marker_mask(const cv::Mat& img, size_t i) {
  cv::Mat mask(img.size(), CV_8U);
  const cv::Vec3b c = kColours[i];
  for (int y = 0; y < img.rows; ++y) {
    for (int x = 0; x < img.cols; ++x) {
      const cv::Vec3b p = img.at<cv::Vec3b>(y, x);
      int d = 0;
      for (int k = 0; k < 3; ++k) d = std::max(d, std::abs(p[k] - c[k]));
      mask.at<uint8_t>(y, x) = d < 100 ? 255 : 0;
    }
  }
  return mask;
}

std::vector<Box> three_boxes() {
  std::vector<Box> boxes(3);
  boxes[0] = {10, 20, 60, 70, 0};  // near the top-left corner: often cropped away
  boxes[1] = {120, 60, 200, 140, 1};
  boxes[2] = {240, 150, 310, 230, 2};  // near the bottom-right corner
  return boxes;
}

DetectionAugmentOptions geometry_only() {
  DetectionAugmentOptions o;
  o.hflip = 0;
  o.scale_min = o.scale_max = 1;
  o.crop_prob = 0;
  o.brightness = o.contrast = o.saturation = o.hue = 0;
  return o;
}

/// Checks every kept box tightly encloses its marker's pixels, and that every dropped box is mostly gone.
void expect_boxes_follow_pixels(const cv::Mat& img, const std::vector<Box>& before,
                                const std::vector<Box>& after, double tolerance, double min_visible = 0.5,
                                double area_scale = 1) {
  for (size_t i = 0; i < before.size(); ++i) {
    const cv::Mat mask = marker_mask(img, i);
    const Box* kept = nullptr;
    for (const auto& b : after) {
      if (b.class_id == before[i].class_id) kept = &b;
    }
    const double visible = cv::countNonZero(mask);
    if (!kept) {
      EXPECT_LT(visible, min_visible * before[i].area() * area_scale * 1.05)
          << "box " << i << " dropped while mostly visible";
      continue;
    }
    ASSERT_GT(visible, 0) << "box " << i << " kept but its pixels are gone";
    const cv::Rect r = cv::boundingRect(mask);
    EXPECT_NEAR(kept->x1, r.x, tolerance) << "box " << i;
    EXPECT_NEAR(kept->y1, r.y, tolerance) << "box " << i;
    EXPECT_NEAR(kept->x2, r.x + r.width, tolerance) << "box " << i;
    EXPECT_NEAR(kept->y2, r.y + r.height, tolerance) << "box " << i;
  }
}

TEST(AugmentDetection, HorizontalFlipMirrorsBoxesExactly) {
  const auto boxes = three_boxes();
  cv::Mat img = marked_image(320, 240, boxes);
  auto o = geometry_only();
  o.hflip = 1;
  std::mt19937_64 rng(1);
  auto out = boxes;
  augment_detection(img, out, o, rng);
  ASSERT_EQ(out.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_FLOAT_EQ(out[i].x1, 320 - boxes[i].x2);
    EXPECT_FLOAT_EQ(out[i].x2, 320 - boxes[i].x1);
    EXPECT_FLOAT_EQ(out[i].y1, boxes[i].y1);
  }
  expect_boxes_follow_pixels(img, boxes, out, 0);
}

TEST(AugmentDetection, ScaleJitterScalesBoxesWithPixels) {
  const auto boxes = three_boxes();
  auto o = geometry_only();
  o.scale_min = 0.5;
  o.scale_max = 1.5;
  for (uint64_t seed = 0; seed < 12; ++seed) {
    cv::Mat img = marked_image(320, 240, boxes);
    std::mt19937_64 rng(seed);
    auto out = boxes;
    augment_detection(img, out, o, rng);
    ASSERT_EQ(out.size(), 3u);
    EXPECT_NE(img.cols, 0);
    expect_boxes_follow_pixels(img, boxes, out, 1.5);
  }
}

TEST(AugmentDetection, CropShiftsClipsAndDropsMostlyHiddenBoxes) {
  const auto boxes = three_boxes();
  auto o = geometry_only();
  o.crop_prob = 1;
  o.crop_min_scale = 0.5;
  int dropped = 0, clipped = 0;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    cv::Mat img = marked_image(320, 240, boxes);
    std::mt19937_64 rng(seed);
    auto out = boxes;
    augment_detection(img, out, o, rng);
    ASSERT_FALSE(out.empty()) << "a crop that drops every box is not taken";
    dropped += static_cast<int>(boxes.size() - out.size());
    for (const auto& b : out) clipped += b.area() < boxes[b.class_id].area() ? 1 : 0;
    expect_boxes_follow_pixels(img, boxes, out, 0, o.min_visible);
  }
  EXPECT_GT(dropped, 0) << "40 crops at scale >= 0.5 should drop a corner box at least once";
  EXPECT_GT(clipped, 0);
}

TEST(AugmentDetection, AllGeometricStepsTogether) {
  const auto boxes = three_boxes();
  auto o = geometry_only();
  o.hflip = 0.5;
  o.scale_min = 0.6;
  o.scale_max = 1.4;
  o.crop_prob = 0.7;
  for (uint64_t seed = 100; seed < 130; ++seed) {
    cv::Mat img = marked_image(320, 240, boxes);
    std::mt19937_64 rng(seed);
    auto out = boxes;
    augment_detection(img, out, o, rng);
    // The scale factor is the second draw (after the flip's); dropped boxes are judged on the scaled area.
    std::mt19937_64 replay(seed);
    uniform01(replay);
    const double s = uniform(replay, o.scale_min, o.scale_max);
    const double sx = std::lround(320 * s) / 320.0, sy = std::lround(240 * s) / 240.0;
    // Clipping after a resize can cut a partly visible box through resampled edge pixels: allow 2 px.
    expect_boxes_follow_pixels(img, boxes, out, 2.0, o.min_visible, sx * sy);
  }
}

TEST(AugmentDetection, PhotometricLeavesBoxesAndSizeAlone) {
  const auto boxes = three_boxes();
  DetectionAugmentOptions o;
  o.hflip = 0;
  o.scale_min = o.scale_max = 1;
  o.crop_prob = 0;
  o.brightness = o.contrast = o.saturation = 0.4;
  o.hue = 0.1;
  const cv::Mat original = marked_image(320, 240, boxes);
  cv::Mat img = original.clone();
  std::mt19937_64 rng(3);
  auto out = boxes;
  augment_detection(img, out, o, rng);
  ASSERT_EQ(out.size(), boxes.size());
  for (size_t i = 0; i < boxes.size(); ++i) {
    EXPECT_EQ(out[i].x1, boxes[i].x1);
    EXPECT_EQ(out[i].y2, boxes[i].y2);
  }
  EXPECT_EQ(img.size(), original.size());
  EXPECT_GT(cv::norm(img, original, cv::NORM_L1), 0) << "photometric jitter changed nothing";
}

TEST(AugmentDetection, DisabledChangesNothing) {
  const auto boxes = three_boxes();
  const cv::Mat original = marked_image(320, 240, boxes);
  cv::Mat img = original.clone();
  DetectionAugmentOptions o;
  o.enabled = false;
  std::mt19937_64 rng(3);
  auto out = boxes;
  augment_detection(img, out, o, rng);
  EXPECT_EQ(cv::norm(img, original, cv::NORM_L1), 0);
  EXPECT_EQ(out.size(), boxes.size());
}

TEST(AugmentDetection, SameSeedSameResultDifferentSeedDiffers) {
  const auto boxes = three_boxes();
  const DetectionAugmentOptions o;
  auto run = [&](uint64_t seed) {
    cv::Mat img = marked_image(320, 240, boxes);
    std::mt19937_64 rng(seed);
    auto out = boxes;
    augment_detection(img, out, o, rng);
    return std::make_pair(img, out);
  };
  const auto [a, ab] = run(42);
  const auto [b, bb] = run(42);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(cv::norm(a, b, cv::NORM_L1), 0);
  ASSERT_EQ(ab.size(), bb.size());
  for (size_t i = 0; i < ab.size(); ++i) EXPECT_EQ(ab[i].x1, bb[i].x1);
  const auto [c, cb] = run(43);
  EXPECT_TRUE(c.size() != a.size() || cv::norm(a, c, cv::NORM_L1) > 0);
}

TEST(AugmentDetection, UniformIsInRangeAndPortable) {
  std::mt19937_64 rng(5489);
  // mt19937_64's first output is fixed by the standard, so this value is the same on every platform.
  EXPECT_DOUBLE_EQ(uniform01(rng), static_cast<double>(14514284786278117030ull >> 11) * 0x1.0p-53);
  for (int i = 0; i < 1000; ++i) {
    const double u = uniform(rng, -2, 3);
    EXPECT_GE(u, -2);
    EXPECT_LT(u, 3);
  }
}

TEST(AugmentDetection, MosaicMovesEachPartsBoxesWithItsPixels) {
  // Four parts of different sizes, each with one box in its own marker colour (class k = colour k): every box
  // the mosaic keeps must enclose exactly its colour's pixels in the s x s output, and a dropped one must be
  // mostly gone from it.
  const std::vector<std::pair<cv::Size, Box>> specs = {{{320, 240}, {100, 80, 180, 160, 0}},
                                                       {{200, 150}, {20, 30, 90, 120, 1}},
                                                       {{320, 240}, {250, 10, 300, 60, 2}},
                                                       {{100, 300}, {10, 200, 60, 290, 3}}};
  std::vector<MosaicPart> parts;
  std::vector<Box> before;
  for (size_t k = 0; k < specs.size(); ++k) {
    MosaicPart p;
    p.bgr = marked_image(specs[k].first.width, specs[k].first.height, {});
    const Box& b = specs[k].second;
    p.bgr(cv::Rect(static_cast<int>(b.x1), static_cast<int>(b.y1), static_cast<int>(b.width()),
                   static_cast<int>(b.height())))
        .setTo(cv::Scalar(kColours[k][0], kColours[k][1], kColours[k][2]));
    p.boxes = {b};
    before.push_back(b);
    parts.push_back(p);
  }
  size_t most_parts = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::mt19937_64 rng(seed);
    const auto m = mosaic4(parts, 0.3, rng);
    ASSERT_EQ(m.bgr.size(), cv::Size(320, 320)) << seed;  // s = the first part's longer side
    expect_boxes_follow_pixels(m.bgr, before, m.boxes, 0.01, 0.3);
    for (const auto& b : m.boxes) {
      EXPECT_GE(b.x1, 0);
      EXPECT_LE(b.x2, 320);
      EXPECT_GE(b.y1, 0);
      EXPECT_LE(b.y2, 320);
    }
    most_parts = std::max(most_parts, m.boxes.size());
    // Same draws, same mosaic.
    std::mt19937_64 again(seed);
    const auto n = mosaic4(parts, 0.3, again);
    EXPECT_EQ(cv::norm(m.bgr, n.bgr, cv::NORM_INF), 0) << seed;
  }
  EXPECT_GE(most_parts, 3u);  // the centre is always in the window: mosaics really mix the images
  std::mt19937_64 rng(0);
  EXPECT_THROW(mosaic4({parts[0], parts[1]}, 0.5, rng), InvalidArgument);
  DetectionAugmentOptions bad;
  bad.mosaic = 1.5;
  EXPECT_THROW(bad.validate(), InvalidArgument);
}

TEST(AugmentOptions, ValidateAndConfig) {
  DetectionAugmentOptions d;
  EXPECT_NO_THROW(d.validate());
  d.hue = 0.7;
  EXPECT_THROW(d.validate(), InvalidArgument);
  d = {};
  d.scale_min = 2;
  EXPECT_THROW(d.validate(), InvalidArgument);

  ClassificationAugmentOptions c;
  EXPECT_NO_THROW(c.validate());
  c.brightness_min = 0;
  EXPECT_THROW(c.validate(), InvalidArgument);

  DetectionAugmentOptions from_yaml;
  config::bind(YAML::Load("hflip: 0.25\ncrop_prob: 0\n"), from_yaml);
  EXPECT_DOUBLE_EQ(from_yaml.hflip, 0.25);
  EXPECT_DOUBLE_EQ(from_yaml.crop_prob, 0);
  EXPECT_THROW(config::bind(YAML::Load("hflp: 0.25\n"), from_yaml), InvalidArgument);
}

std::vector<Box> small_boxes() {
  return {Box{10, 10, 40, 40, 0}, Box{60, 30, 100, 80, 1}};
}

TEST(AugmentClassification, OutputSizeAndDeterminism) {
  const cv::Mat img = marked_image(300, 200, small_boxes());
  const ClassificationAugmentOptions o;
  std::mt19937_64 r1(9), r2(9), r3(10);
  const cv::Mat a = augment_classification(img, o, 224, 160, r1);
  const cv::Mat b = augment_classification(img, o, 224, 160, r2);
  const cv::Mat c = augment_classification(img, o, 224, 160, r3);
  EXPECT_EQ(a.cols, 224);
  EXPECT_EQ(a.rows, 160);
  EXPECT_EQ(a.type(), CV_8UC3);
  EXPECT_EQ(cv::norm(a, b, cv::NORM_L1), 0);
  EXPECT_GT(cv::norm(a, c, cv::NORM_L1), 0);
}

TEST(AugmentClassification, DisabledIsAPlainResize) {
  const cv::Mat img = marked_image(300, 200, small_boxes());
  ClassificationAugmentOptions o;
  o.enabled = false;
  std::mt19937_64 rng(1);
  const cv::Mat out = augment_classification(img, o, 150, 100, rng);
  cv::Mat expected;
  cv::resize(img, expected, cv::Size(150, 100), 0, 0, cv::INTER_LINEAR);
  EXPECT_EQ(cv::norm(out, expected, cv::NORM_L1), 0);
}

TEST(AugmentClassification, IdentityParametersKeepTheImage) {
  // With every random range collapsed the fused warp must be the identity: checks the matrix composition.
  const cv::Mat img = marked_image(120, 90, small_boxes());
  ClassificationAugmentOptions o;
  o.crop_scale_min = 1;
  o.hflip = 0;
  o.rotation_deg = 0;
  o.brightness_min = o.brightness_max = 1;
  o.shift = 0;
  o.zoom = 0;
  // Area fraction 1 only fits as the whole image (the 4:3 image is within RandomResizedCrop's ratio range).
  std::mt19937_64 rng(1);
  const cv::Mat out = augment_classification(img, o, 120, 90, rng);
  ASSERT_EQ(out.size(), img.size());
  EXPECT_EQ(cv::norm(out, img, cv::NORM_L1), 0);
  o.hflip = 1;
  std::mt19937_64 rng2(1);
  const cv::Mat flipped = augment_classification(img, o, 120, 90, rng2);
  cv::Mat mirrored;
  cv::flip(img, mirrored, 1);
  EXPECT_EQ(cv::norm(flipped, mirrored, cv::NORM_L1), 0);
}

}  // namespace
}  // namespace vigil::data
