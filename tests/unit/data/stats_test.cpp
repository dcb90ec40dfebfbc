#include "vigil/data/stats.h"

#include <opencv2/imgcodecs.hpp>

#include <cstdlib>

#include "tests_util.h"

namespace vigil::data {
namespace {

Box box(float x, float y, float w, float h, int cls) {
  Box b;
  b.x1 = x, b.y1 = y, b.x2 = x + w, b.y2 = y + h, b.class_id = cls;
  return b;
}

Sample sample(const std::string& file, int w, int h, std::vector<Box> boxes, const std::string& split = "") {
  Sample s;
  s.file = file, s.width = w, s.height = h, s.boxes = std::move(boxes), s.split = split;
  return s;
}

// 4 images, 6 boxes: known class counts, COCO bins at exactly 32^2 and 96^2, one unknown-size image.
Dataset detection_dataset() {
  Dataset ds;
  ds.task = Task::kDetection;
  ds.classes = {"gun", "knife", "no_object"};
  ds.samples.push_back(sample("a.jpg", 640, 480,
                              {box(0, 0, 31, 33, 0),   // area 1023: small
                               box(0, 0, 32, 32, 0),   // area 1024: medium (boundary)
                               box(0, 0, 96, 96, 1)},  // area 9216: large (boundary)
                              "train"));
  ds.samples.push_back(sample("b.jpg", 800, 600, {box(10, 10, 95, 96, 0), box(0, 0, 200, 100, 1)}, "train"));
  ds.samples.push_back(sample("c.jpg", 0, 0, {box(5, 5, 40, 20, 1)}, "val"));  // unknown size
  ds.samples.push_back(sample("d.jpg", 1024, 768, {}, "val"));
  return ds;
}

TEST(Stats, DetectionCounts) {
  auto s = compute_stats(detection_dataset());
  EXPECT_EQ(s.n_images, 4);
  EXPECT_EQ(s.n_boxes, 6);
  ASSERT_EQ(s.classes.size(), 3u);
  EXPECT_EQ(s.classes[0].boxes, 3);
  EXPECT_EQ(s.classes[0].images, 2);
  EXPECT_EQ(s.classes[1].boxes, 3);
  EXPECT_EQ(s.classes[1].images, 3);
  EXPECT_EQ(s.classes[2].boxes, 0);
  EXPECT_EQ(s.classes[2].images, 0);
  // Images with 0, 1, 2, 3 boxes: d, c, b, a.
  EXPECT_EQ(s.objects_per_image, (std::vector<int64_t>{1, 1, 1, 1}));
  EXPECT_EQ(s.boxes_small, 2);   // 31x33 and 40x20
  EXPECT_EQ(s.boxes_medium, 2);  // 32x32 (= 32^2) and 95x96 (< 96^2)
  EXPECT_EQ(s.boxes_large, 2);   // 96x96 (= 96^2) and 200x100
  ASSERT_EQ(s.box_aspects.size(), 6u);
  EXPECT_DOUBLE_EQ(s.box_aspects[2], 1.0);
  EXPECT_DOUBLE_EQ(s.box_aspects[4], 2.0);
  EXPECT_DOUBLE_EQ(s.box_aspects[5], 2.0);
  EXPECT_DOUBLE_EQ(s.box_sqrt_areas[1], 32.0);
  EXPECT_EQ(s.unknown_size_images, 1);
  EXPECT_EQ(s.image_widths, (std::vector<double>{640, 800, 1024}));
  ASSERT_EQ(s.splits.size(), 2u);
  EXPECT_EQ(s.splits[0].split, "train");
  EXPECT_EQ(s.splits[0].images, 2);
  EXPECT_EQ(s.splits[0].boxes, 5);
  EXPECT_EQ(s.splits[1].split, "val");
  EXPECT_EQ(s.splits[1].boxes, 1);
}

TEST(Stats, DegenerateAndUnknownClassBoxes) {
  Dataset ds;
  ds.classes = {"a"};
  ds.samples.push_back(sample("x.jpg", 10, 10, {box(0, 0, 0, 5, 0), box(0, 0, 5, 5, 7)}));
  auto s = compute_stats(ds);
  EXPECT_EQ(s.degenerate_boxes, 1);
  EXPECT_EQ(s.bad_class_boxes, 1);
  EXPECT_EQ(s.classes[0].boxes, 1);
  EXPECT_EQ(s.box_widths.size(), 1u);
}

TEST(Stats, JsonAndText) {
  auto s = compute_stats(detection_dataset());
  auto j = s.to_json();
  EXPECT_EQ(j["task"], "detection");
  EXPECT_EQ(j["n_boxes"], 6);
  EXPECT_EQ(j["classes"][1]["name"], "knife");
  EXPECT_EQ(j["classes"][1]["boxes"], 3);
  EXPECT_EQ(j["boxes"]["coco_sizes"]["medium"], 2);
  EXPECT_EQ(j["images"]["unknown_size"], 1);
  EXPECT_EQ(j["objects_per_image"].size(), 4u);
  EXPECT_DOUBLE_EQ(j["boxes"]["aspect_ratio"]["max"].get<double>(), 2.0);
  std::string text = s.to_text();
  EXPECT_NE(text.find("knife"), std::string::npos) << text;
  EXPECT_NE(text.find("unknown size"), std::string::npos) << text;
  EXPECT_NE(text.find("small 2"), std::string::npos) << text;
}

TEST(Stats, Classification) {
  Dataset ds;
  ds.task = Task::kClassification;
  ds.classes = {"cat", "dog"};
  for (int i = 0; i < 5; ++i) {
    Sample s = sample("i" + std::to_string(i) + ".jpg", 100, 50, {});
    s.label = i < 3 ? 0 : (i < 4 ? 1 : -1);
    ds.samples.push_back(s);
  }
  auto s = compute_stats(ds);
  EXPECT_EQ(s.classes[0].images, 3);
  EXPECT_EQ(s.classes[1].images, 1);
  EXPECT_EQ(s.unlabelled_images, 1);
  EXPECT_TRUE(s.objects_per_image.empty());
  EXPECT_FALSE(s.to_json().contains("boxes"));

  vigil::testing::TempDir tmp;
  auto files = write_stats_plots(s, tmp / "plots");
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].filename(), "class_counts.png");
  EXPECT_EQ(files[1].filename(), "image_sizes.png");
  for (const auto& f : files) EXPECT_FALSE(cv::imread(f.string()).empty()) << f;
}

TEST(Stats, DetectionPlotsWritten) {
  auto s = compute_stats(detection_dataset());
  vigil::testing::TempDir tmp;
  const char* keep = std::getenv("VIGIL_PLOT_TEST_OUT");
  auto dir = keep && *keep ? std::filesystem::path(keep) / "stats" : tmp / "plots";
  auto files = write_stats_plots(s, dir);
  std::vector<std::string> names;
  for (const auto& f : files) names.push_back(f.filename().string());
  EXPECT_EQ(names, (std::vector<std::string>{"class_counts.png", "objects_per_image.png", "box_sizes.png",
                                             "box_aspect.png", "image_sizes.png"}));
  for (const auto& f : files) {
    cv::Mat img = cv::imread(f.string());
    ASSERT_FALSE(img.empty()) << f;
    EXPECT_EQ(img.cols, 900);
  }
}

TEST(Stats, EmptyDataset) {
  Dataset ds;
  auto s = compute_stats(ds);
  EXPECT_EQ(s.n_images, 0);
  EXPECT_NO_THROW(s.to_text());
  vigil::testing::TempDir tmp;
  EXPECT_EQ(write_stats_plots(s, tmp.path()).size(), 5u);
}

}  // namespace
}  // namespace vigil::data
