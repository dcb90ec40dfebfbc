#include "vigil/data/validate.h"

#include <opencv2/imgcodecs.hpp>

#include <cmath>
#include <limits>
#include <random>

#include "tests_util.h"
#include "vigil/core/fs.h"
#include "vigil/core/hash.h"
#include "vigil/data/duplicates.h"
#include "vigil/data/inspect.h"
#include "vigil/image/decode.h"
#include "vigil/image/phash.h"

namespace vigil::data {
namespace {

using vigil::testing::TempDir;
using vigil::testing::write_image;
using vigil::testing::write_text;

ImageSource source_in(const fs::path& root) {
  return [root](const Sample& s) { return root / fs::u8path(s.file); };
}

Sample sample(const std::string& file, std::vector<Box> boxes = {}) {
  Sample s;
  s.file = file;
  s.boxes = std::move(boxes);
  return s;
}

Box box(float x1, float y1, float x2, float y2, int cls = 0) {
  Box b;
  b.x1 = x1, b.y1 = y1, b.x2 = x2, b.y2 = y2, b.class_id = cls;
  return b;
}

std::vector<const Issue*> issues_of(const ValidationReport& r, const std::string& kind) {
  std::vector<const Issue*> out;
  for (const auto& i : r.issues) {
    if (i.kind == kind) out.push_back(&i);
  }
  return out;
}

const Issue& only_issue(const ValidationReport& r, const std::string& kind) {
  auto found = issues_of(r, kind);
  EXPECT_EQ(found.size(), 1u) << "kind " << kind << "\n" << r.to_text();
  static const Issue kNone{"<none>", Severity::kInfo, "", 0, ""};
  return found.empty() ? kNone : *found.front();
}

/// A detection dataset with classes {person, gun} whose images are written into `dir`.
Dataset detection_dataset(const TempDir& dir) {
  Dataset ds;
  ds.task = Task::kDetection;
  ds.root = dir.path();
  ds.classes = {"person", "gun"};
  return ds;
}

void inspect(Dataset& ds, const TempDir& dir, int threads = 2) {
  inspect_images(ds, source_in(dir.path()), InspectOptions{threads, 100'000'000});
}

TEST(ValidateOptions, RefusesBadValues) {
  ValidateOptions o;
  EXPECT_NO_THROW(o.validate());
  o.out_of_image = "drop";
  EXPECT_THROW(o.validate(), InvalidArgument);
  o = {};
  o.min_box_size = -1;
  EXPECT_THROW(o.validate(), InvalidArgument);
  o = {};
  o.clip_tolerance = std::nan("");
  EXPECT_THROW(o.validate(), InvalidArgument);
  o = {};
  o.near_duplicate_distance = 65;
  EXPECT_THROW(o.validate(), InvalidArgument);
  try {
    ValidateOptions bad;
    bad.out_of_image = "drop";
    bad.validate();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("expected out_of_image 'clip' or 'reject', got 'drop'"),
              std::string::npos);
  }
}

TEST(Inspect, ReportsEveryImageProblemKind) {
  TempDir dir;
  write_text(dir / "random.jpg", std::string("\x13\x37 definitely not an image, just some bytes", 44));
  write_text(dir / "zero.jpg", "");
  write_image(dir / "whole.jpg", 200, 150, 3);
  const std::string jpeg = read_file(dir / "whole.jpg");
  write_text(dir / "truncated.jpg", jpeg.substr(0, jpeg.size() / 2));
  write_image(dir / "one.png", 1, 1, 4);
  write_image(dir / "фото_猫.jpg", 40, 30, 5);
  Dataset ds = detection_dataset(dir);
  for (const char* f : {"random.jpg", "zero.jpg", "truncated.jpg", "missing.jpg", "one.png", "whole.jpg"}) {
    ds.samples.push_back(sample(f, {box(0, 0, 1, 1)}));
  }
  ds.samples.push_back(sample("фото_猫.jpg", {box(1, 1, 20, 20)}));
  inspect(ds, dir);

  auto kind_of = [&](size_t i) { return ds.samples[i].check.problem_kind; };
  EXPECT_EQ(kind_of(0), "not_an_image");
  EXPECT_EQ(kind_of(1), "empty_file");
  EXPECT_EQ(kind_of(2), "truncated");
  EXPECT_EQ(kind_of(3), "unreadable");
  EXPECT_NE(ds.samples[3].check.problem.find("not found"), std::string::npos);
  EXPECT_EQ(kind_of(4), "");
  EXPECT_EQ(ds.samples[4].width, 1);
  EXPECT_EQ(ds.samples[4].check.type, "png");
  EXPECT_EQ(kind_of(6), "");
  EXPECT_EQ(ds.samples[6].width, 40);
  EXPECT_EQ(ds.samples[6].hash, hash_file(dir / fs::u8path("фото_猫.jpg")));
  EXPECT_EQ(ds.samples[5].bytes, static_cast<int64_t>(jpeg.size()));
  for (const auto& s : ds.samples) EXPECT_TRUE(s.check.inspected);

  const ValidationReport r = validate(ds, {});
  for (const char* kind : {"not_an_image", "empty_file", "truncated", "unreadable"}) {
    const Issue& i = only_issue(r, kind);
    EXPECT_EQ(i.severity, Severity::kError) << kind;
    EXPECT_FALSE(i.file.empty());
  }
  EXPECT_EQ(r.usable_images, 3u);
  EXPECT_TRUE(r.has_errors());

  std::vector<Issue> dropped;
  const Dataset clean = sanitize(ds, {}, &dropped);
  ASSERT_EQ(clean.samples.size(), 3u);
  EXPECT_EQ(clean.samples[0].file, "one.png");
  EXPECT_EQ(clean.samples[2].file, "фото_猫.jpg");
  EXPECT_EQ(dropped.size(), 4u);
}

TEST(Inspect, TooLargeAndSizeMismatch) {
  TempDir dir;
  write_image(dir / "big.png", 300, 200, 1);
  write_image(dir / "small.png", 30, 20, 2);
  Dataset ds = detection_dataset(dir);
  ds.samples.push_back(sample("big.png"));
  ds.samples.push_back(sample("small.png"));
  ds.samples[1].width = 60;  // what an annotation claimed
  ds.samples[1].height = 40;
  inspect_images(ds, source_in(dir.path()), InspectOptions{1, 300 * 200 - 1});
  EXPECT_EQ(ds.samples[0].check.problem_kind, "too_large");
  EXPECT_EQ(ds.samples[1].width, 30);
  ASSERT_EQ(ds.issues.size(), 1u);
  EXPECT_EQ(ds.issues[0].kind, "size_mismatch");
  EXPECT_EQ(ds.issues[0].severity, Severity::kWarning);
  EXPECT_EQ(ds.issues[0].file, "small.png");
  const ValidationReport r = validate(ds, {});
  EXPECT_EQ(only_issue(r, "size_mismatch").file, "small.png");  // reading issues are carried into the report
  EXPECT_EQ(only_issue(r, "too_large").file, "big.png");
}

TEST(Inspect, ResultDoesNotDependOnThreadCount) {
  TempDir dir;
  Dataset a = detection_dataset(dir);
  for (int i = 0; i < 12; ++i) {
    write_image(dir / ("img" + std::to_string(i) + ".jpg"), 50 + i, 40, i);
    a.samples.push_back(sample("img" + std::to_string(i) + ".jpg"));
  }
  Dataset b = a;
  inspect(a, dir, 1);
  inspect(b, dir, 4);
  for (size_t i = 0; i < a.samples.size(); ++i) {
    EXPECT_EQ(a.samples[i].check.phash, b.samples[i].check.phash);
    EXPECT_EQ(a.samples[i].hash, b.samples[i].hash);
  }
}

/// One image with every kind of bad box, plus an empty image.
Dataset boxes_dataset(const TempDir& dir) {
  write_image(dir / "a.jpg", 100, 80, 1);
  write_image(dir / "empty.jpg", 100, 80, 2);
  Dataset ds = detection_dataset(dir);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Sample s = sample("a.jpg", {box(10, 10, 50, 50),        // fine
                              box(nan, 10, 50, 50),       // nan_box
                              box(50, 10, 10, 50),        // negative_box
                              box(10, 10, 10.5f, 50),     // degenerate_box
                              box(90, 10, 112.5f, 50),    // box_outside by 12.5 px
                              box(10, 10, 40, 40, 7),     // unknown_class
                              box(200, 200, 300, 300)});  // box_outside entirely
  s.label_file = "a.txt";
  ds.samples.push_back(s);
  ds.samples.push_back(sample("empty.jpg"));
  inspect(ds, dir);
  return ds;
}

TEST(Validate, ReportsEveryBoxProblem) {
  TempDir dir;
  const Dataset ds = boxes_dataset(dir);
  const ValidationReport r = validate(ds, {});
  for (const char* kind : {"nan_box", "negative_box", "degenerate_box", "unknown_class"}) {
    const Issue& i = only_issue(r, kind);
    EXPECT_EQ(i.severity, Severity::kError) << kind;
    EXPECT_EQ(i.file, "a.txt") << kind;
    EXPECT_NE(i.message.find("a.jpg"), std::string::npos) << i.message;
  }
  const auto outside = issues_of(r, "box_outside");
  ASSERT_EQ(outside.size(), 2u);
  EXPECT_EQ(outside[0]->severity, Severity::kWarning);  // clipped
  EXPECT_NE(outside[0]->message.find("by 12.5 px"), std::string::npos) << outside[0]->message;
  EXPECT_EQ(outside[1]->severity, Severity::kError);  // nothing left after clipping

  const Issue& empty = only_issue(r, "empty_image");
  EXPECT_EQ(empty.severity, Severity::kInfo);
  EXPECT_EQ(empty.file, "empty.jpg");
  EXPECT_EQ(r.empty_images, 1u);
  EXPECT_DOUBLE_EQ(r.empty_share, 0.5);
  EXPECT_EQ(r.boxes, 7u);
  EXPECT_EQ(r.counts.at("box_outside").at("warning"), 1u);
  EXPECT_EQ(r.counts.at("box_outside").at("error"), 1u);
}

TEST(Validate, RejectModeMakesOutsideBoxesErrorsAndToleranceSilencesSmallOvershoot) {
  TempDir dir;
  const Dataset ds = boxes_dataset(dir);
  ValidateOptions reject;
  reject.out_of_image = "reject";
  for (const Issue* i : issues_of(validate(ds, reject), "box_outside"))
    EXPECT_EQ(i->severity, Severity::kError);
  ValidateOptions tolerant;
  tolerant.clip_tolerance = 13;
  EXPECT_EQ(issues_of(validate(ds, tolerant), "box_outside").size(), 1u);  // only the box entirely outside
}

TEST(Sanitize, DropsOrClipsBoxesAndListsEveryDroppedItem) {
  TempDir dir;
  const Dataset ds = boxes_dataset(dir);
  std::vector<Issue> dropped;
  const Dataset clip = sanitize(ds, {}, &dropped);
  ASSERT_EQ(clip.samples.size(), 2u);
  ASSERT_EQ(clip.samples[0].boxes.size(), 2u);
  EXPECT_FLOAT_EQ(clip.samples[0].boxes[1].x2, 100.f);  // clipped to the image
  EXPECT_FLOAT_EQ(clip.samples[0].boxes[1].x1, 90.f);
  EXPECT_EQ(dropped.size(), 5u);  // nan, negative, degenerate, unknown class, entirely outside
  for (const auto& i : dropped) EXPECT_EQ(i.message.rfind("dropped: ", 0), 0u) << i.message;

  ValidateOptions reject;
  reject.out_of_image = "reject";
  dropped.clear();
  const Dataset strict = sanitize(ds, reject, &dropped);
  EXPECT_EQ(strict.samples[0].boxes.size(), 1u);
  EXPECT_EQ(dropped.size(), 6u);
  EXPECT_TRUE(validate(strict, reject).issues.size() == 1u);  // only the empty image (info) is left
}

TEST(Validate, ClassificationLabelOutOfRangeIsUnknownClass) {
  TempDir dir;
  write_image(dir / "cat/1.jpg", 40, 30, 1);
  write_image(dir / "dog/2.jpg", 40, 30, 2);
  Dataset ds;
  ds.task = Task::kClassification;
  ds.classes = {"cat"};
  ds.samples = {sample("cat/1.jpg"), sample("dog/2.jpg")};
  ds.samples[0].label = 0;
  ds.samples[1].label = 3;
  inspect(ds, dir);
  const ValidationReport r = validate(ds, {});
  EXPECT_EQ(only_issue(r, "unknown_class").file, "dog/2.jpg");
  EXPECT_TRUE(issues_of(r, "empty_image").empty());  // not a detection concept
  std::vector<Issue> dropped;
  EXPECT_EQ(sanitize(ds, {}, &dropped).samples.size(), 1u);
  EXPECT_EQ(dropped.size(), 1u);
}

TEST(Validate, EmptyDatasetIsAnError) {
  const ValidationReport r = validate(Dataset{}, {});
  EXPECT_EQ(only_issue(r, "no_samples").severity, Severity::kError);
  EXPECT_TRUE(r.has_errors());
}

TEST(Validate, UninspectedImagesAreReportedNotSilentlySkipped) {
  Dataset ds;
  ds.classes = {"x"};
  ds.samples = {sample("a.jpg", {box(0, 0, 5, 5)})};
  const ValidationReport r = validate(ds, {});
  EXPECT_EQ(only_issue(r, "not_inspected").severity, Severity::kWarning);
}

/// the same bytes twice, a re-encoded and a brightened copy (near), and a different image (not).
Dataset duplicates_dataset(const TempDir& dir) {
  write_image(dir / "orig.jpg", 160, 120, 7);
  write_text(dir / "copy.jpg", read_file(dir / "orig.jpg"));
  const cv::Mat img = cv::imread((dir / "orig.jpg").string());
  write_text(dir / "q50.jpg", image::encode(img, "jpg", 50));
  cv::Mat brighter;
  img.convertTo(brighter, -1, 1.0, 20);
  write_text(dir / "bright.jpg", image::encode(brighter, "jpg", 90));
  write_image(dir / "other.jpg", 160, 120, 8);
  Dataset ds = detection_dataset(dir);
  for (const char* f : {"orig.jpg", "copy.jpg", "q50.jpg", "bright.jpg", "other.jpg"}) {
    ds.samples.push_back(sample(f, {box(1, 1, 30, 30)}));
  }
  inspect(ds, dir);
  return ds;
}

TEST(Validate, FindsExactAndNearDuplicatesButNotDifferentImages) {
  TempDir dir;
  const Dataset ds = duplicates_dataset(dir);
  const ValidationReport r = validate(ds, {});
  const Issue& exact = only_issue(r, "exact_duplicate");
  EXPECT_EQ(exact.severity, Severity::kWarning);
  EXPECT_NE(exact.message.find("copy.jpg"), std::string::npos);
  EXPECT_NE(exact.message.find("orig.jpg"), std::string::npos);
  EXPECT_EQ(r.exact_duplicate_groups, 1u);
  // orig, copy, q50 and bright are pairwise near (except orig-copy, which is exact): 5 pairs.
  EXPECT_EQ(r.near_duplicate_pairs, 5u) << r.to_text();
  for (const Issue* i : issues_of(r, "near_duplicate")) {
    EXPECT_EQ(i->message.find("other.jpg"), std::string::npos) << i->message;
    EXPECT_NE(i->message.find("phash distance"), std::string::npos);
  }
  const DuplicateGroups g = find_duplicates(ds, 10);
  EXPECT_EQ(g.n_groups, 2);
  EXPECT_EQ(g.group_of[0], g.group_of[3]);
  EXPECT_NE(g.group_of[0], g.group_of[4]);
  EXPECT_EQ(g.multi_groups(), 1);

  ValidateOptions off;
  off.near_duplicate_distance = -1;
  EXPECT_EQ(validate(ds, off).near_duplicate_pairs, 0u);
}

TEST(FindDuplicates, BandedSearchMatchesBruteForce) {
  std::mt19937_64 rng(42);
  Dataset ds;
  for (int i = 0; i < 600; ++i) {
    Sample s = sample("f" + std::to_string(i));
    s.check.inspected = true;
    // Every third hash is a few random bit flips away from an earlier one, so there are pairs at every
    // distance.
    s.check.phash = (i % 3 == 0 || i < 3) ? rng() : ds.samples[rng() % i].check.phash;
    for (int f = 0, flips = static_cast<int>(rng() % 16); f < flips; ++f)
      s.check.phash ^= uint64_t{1} << (rng() % 64);
    ds.samples.push_back(s);
  }
  for (int max : {0, 1, 2, 3, 5, 8, 10, 14, 20}) {
    std::vector<std::pair<int, int>> brute;
    for (int i = 0; i < 600; ++i) {
      for (int j = i + 1; j < 600; ++j) {
        if (image::hamming(ds.samples[i].check.phash, ds.samples[j].check.phash) <= max)
          brute.emplace_back(i, j);
      }
    }
    EXPECT_EQ(find_duplicates(ds, max).near_pairs, brute) << "max_hamming " << max;
  }
}

TEST(ValidationReport, TextHasTableAndNeverTruncatesSilently) {
  TempDir dir;
  Dataset ds = detection_dataset(dir);
  for (int i = 0; i < 5; ++i) {
    write_image(dir / (std::to_string(i) + ".jpg"), 50, 40, 100 + i * 13);
    ds.samples.push_back(sample(std::to_string(i) + ".jpg"));
  }
  inspect(ds, dir);
  const ValidationReport r = validate(ds, {});
  const std::string all = r.to_text(0);
  EXPECT_NE(all.find("kind"), std::string::npos);
  EXPECT_NE(all.find("empty images: 5 (100.0% of images)"), std::string::npos) << all;
  for (int i = 0; i < 5; ++i) EXPECT_NE(all.find(std::to_string(i) + ".jpg"), std::string::npos);
  const std::string capped = r.to_text(2);
  EXPECT_NE(capped.find("... and 3 more, see report.json"), std::string::npos) << capped;

  const auto j = r.to_json();
  EXPECT_EQ(j["summary"]["images"], 5);
  EXPECT_EQ(j["issues"].size(), r.issues.size());
  EXPECT_EQ(j["counts"]["empty_image"]["info"], 5);
}

}  // namespace
}  // namespace vigil::data
