#include "vigil/data/synth.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include <set>

#include "tests_util.h"
#include "vigil/core/config.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/hash.h"
#include "vigil/image/decode.h"

namespace vigil::data {
namespace {

using vigil::testing::TempDir;

/// One hash over every file's relative path and bytes: equal iff the trees are byte-identical.
std::string tree_hash(const fs::path& root) {
  Hasher h;
  for (const auto& rel : list_files_recursive(root)) {
    h.update(to_utf8(rel));
    h.update(hash_file(root / rel));
  }
  return h.hex();
}

SynthOptions small_detection(uint64_t seed = 1) {
  SynthOptions o;
  o.images = 24;
  o.width = 160;
  o.height = 120;
  o.classes = 4;
  o.max_objects = 3;
  o.empty_fraction = 0.25;
  o.seed = seed;
  return o;
}

TEST(Synth, DetectionWritesCocoWithBoxesInsideImages) {
  TempDir dir;
  const auto o = small_detection();
  EXPECT_EQ(synthesize(o, dir.path()), "coco");
  const auto coco = nlohmann::json::parse(read_file(dir / "annotations.json"));
  ASSERT_EQ(coco["images"].size(), 24u);
  ASSERT_EQ(coco["categories"].size(), 4u);
  EXPECT_EQ(coco["categories"][0]["id"], 1);
  EXPECT_EQ(coco["categories"][0]["name"], "circle");
  EXPECT_EQ(coco["categories"][3]["name"], "cross");
  std::set<int> with_objects;
  for (const auto& im : coco["images"]) {
    EXPECT_EQ(im["width"], 160);
    EXPECT_EQ(im["height"], 120);
    const auto decoded = image::decode_file((dir / "images" / im["file_name"].get<std::string>()).string());
    ASSERT_TRUE(decoded.ok()) << im["file_name"];
    EXPECT_EQ(decoded.bgr.cols, 160);
  }
  for (const auto& a : coco["annotations"]) {
    const auto b = a["bbox"];
    const double x = b[0], y = b[1], w = b[2], h = b[3];
    EXPECT_GE(x, 0);
    EXPECT_GE(y, 0);
    EXPECT_GT(w, 3);
    EXPECT_GT(h, 3);
    EXPECT_LE(x + w, 160);
    EXPECT_LE(y + h, 120);
    EXPECT_DOUBLE_EQ(a["area"].get<double>(), w * h);
    EXPECT_EQ(a["iscrowd"], 0);
    EXPECT_GE(a["category_id"].get<int>(), 1);
    EXPECT_LE(a["category_id"].get<int>(), 4);
    with_objects.insert(a["image_id"].get<int>());
  }
  EXPECT_GT(with_objects.size(), 0u);
  EXPECT_LT(with_objects.size(), 24u) << "empty_fraction 0.25 over 24 images should leave one empty";
}

/// Most saturated-and-bright value (min of S and V) in a rectangle of an HSV image, clipped to the image.
int peak_colourfulness(const cv::Mat& hsv, cv::Rect r) {
  r &= cv::Rect(0, 0, hsv.cols, hsv.rows);
  int best = 0;
  for (int y = r.y; y < r.y + r.height; ++y) {
    for (int x = r.x; x < r.x + r.width; ++x) {
      const auto p = hsv.at<cv::Vec3b>(y, x);
      best = std::max(best, static_cast<int>(std::min(p[1], p[2])));
    }
  }
  return best;
}

void expect_tight_boxes(const fs::path& dir) {
  const auto coco = nlohmann::json::parse(read_file(dir / "annotations.json"));
  ASSERT_FALSE(coco["annotations"].empty());
  for (const auto& a : coco["annotations"]) {
    const auto& im = coco["images"][a["image_id"].get<size_t>() - 1];
    const auto decoded = image::decode_file((dir / "images" / im["file_name"].get<std::string>()).string());
    cv::Mat hsv;
    cv::cvtColor(decoded.bgr, hsv, cv::COLOR_BGR2HSV);
    const int x = a["bbox"][0], y = a["bbox"][1], w = a["bbox"][2], h = a["bbox"][3];
    const std::vector<std::pair<cv::Rect, cv::Rect>> sides{
        {{x, y, w, 3}, {x, y - 4, w, 2}},              // top: inside band, outside band
        {{x, y + h - 3, w, 3}, {x, y + h + 2, w, 2}},  // bottom
        {{x, y, 3, h}, {x - 4, y, 2, h}},              // left
        {{x + w - 3, y, 3, h}, {x + w + 2, y, 2, h}},  // right
    };
    for (const auto& [inside, outside] : sides) {
      EXPECT_GT(peak_colourfulness(hsv, inside), 130) << "loose box " << a.dump();
      EXPECT_LT(peak_colourfulness(hsv, outside), 140) << "box cuts the object " << a.dump();
    }
  }
}

TEST(Synth, BoxesAreTightAroundTheObject) {
  // Objects are saturated and bright, backgrounds are not: each box's outermost three pixel rows and columns
  // must hold object pixels (not loose), and the band 3-4 px outside must not (not cut short). Three, not
  // one: JPEG's chroma subsampling washes out a triangle's or star's one-pixel tip.
  for (uint64_t seed : {3, 11, 29, 40}) {
    TempDir dir;
    auto o = small_detection(seed);
    o.empty_fraction = 0;
    o.images = 40;
    o.classes = 8;  // every shape
    synthesize(o, dir.path());
    expect_tight_boxes(dir.path());
  }
}

TEST(Synth, SameSeedSameBytesOtherSeedDiffers) {
  TempDir a, b, c;
  synthesize(small_detection(7), a.path());
  synthesize(small_detection(7), b.path());
  synthesize(small_detection(8), c.path());
  EXPECT_EQ(tree_hash(a.path()), tree_hash(b.path()));
  EXPECT_NE(tree_hash(a.path()), tree_hash(c.path()));
}

TEST(Synth, ClassificationWritesClassFolders) {
  TempDir dir;
  SynthOptions o;
  o.task = "classification";
  o.images = 12;
  o.classes = 3;
  o.width = o.height = 64;
  Progress progress("synth", 12, "img");
  EXPECT_EQ(synthesize(o, dir.path(), &progress), "imagefolder");
  size_t total = 0;
  for (const auto& name : {"circle", "square", "triangle"}) {
    ASSERT_TRUE(fs::is_directory(dir / name)) << name;
    const auto files = list_files_recursive(dir / name);
    EXPECT_EQ(files.size(), 4u) << name;
    total += files.size();
  }
  EXPECT_EQ(total, 12u);
  TempDir again;
  synthesize(o, again.path());
  EXPECT_EQ(tree_hash(dir.path()), tree_hash(again.path()));
}

TEST(Synth, ValidateRejectsBadOptions) {
  SynthOptions o;
  o.task = "segmentation";
  EXPECT_THROW(o.validate(), InvalidArgument);
  o = {};
  o.classes = 99;
  EXPECT_THROW(o.validate(), InvalidArgument);
  o = {};
  o.task = "classification";
  o.classes = 1;
  EXPECT_THROW(o.validate(), InvalidArgument);
  TempDir dir;
  o.images = 0;
  EXPECT_THROW(synthesize(o, dir.path()), InvalidArgument);
}

TEST(Synth, OptionsBindFromYaml) {
  SynthOptions o;
  config::bind(YAML::Load("task: classification\nimages: 5\nseed: 9\n"), o);
  EXPECT_EQ(o.task, "classification");
  EXPECT_EQ(o.images, 5);
  EXPECT_EQ(o.seed, 9u);
  EXPECT_THROW(config::bind(YAML::Load("classes: 0\n"), o), InvalidArgument);
}

}  // namespace
}  // namespace vigil::data
