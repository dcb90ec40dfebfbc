// COCO JSON reading and writing: every malformed element is an InvalidArgument naming the file and the
// element; written files read back to the same values; the metrics object has the documented keys.

#include <gtest/gtest.h>

#include <string>

#include "tests_util.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/eval/coco_json.h"

namespace {

using namespace vigil::eval;
using nlohmann::json;
using vigil::testing::TempDir;

const json kGt = json::parse(R"({
  "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2}],
  "categories": [{"id": 3, "name": "gun"}, {"id": 1, "name": "knife"}],
  "annotations": [
    {"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4], "area": 10.5, "iscrowd": 0},
    {"id": 2, "image_id": 2, "category_id": 1, "bbox": [0, 0, 5, 6], "iscrowd": true, "ignore": 1}
  ]})");

/// The InvalidArgument message `f` throws, or "" when it does not throw one.
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const vigil::InvalidArgument& e) {
    return e.what();
  }
  return "";
}

TEST(CocoJson, ReadsGroundTruth) {
  const DetectionData d = parse_coco_ground_truth(kGt, "gt.json");
  EXPECT_EQ(d.image_ids, (std::vector<int64_t>{1, 2}));
  ASSERT_EQ(d.categories.size(), 2u);
  EXPECT_EQ(d.categories[0].id, 3);
  EXPECT_EQ(d.categories[0].name, "gun");
  ASSERT_EQ(d.ground_truth.size(), 2u);
  const GtBox& a = d.ground_truth[0];
  EXPECT_EQ(a.x, 1);
  EXPECT_EQ(a.h, 4);
  EXPECT_EQ(a.area, 10.5);  // the annotation's area, not w * h
  EXPECT_FALSE(a.iscrowd);
  const GtBox& b = d.ground_truth[1];
  EXPECT_EQ(b.area, 30);  // absent: w * h
  EXPECT_TRUE(b.iscrowd);
  EXPECT_FALSE(b.ignore);  // pycocotools discards the `ignore` field
}

std::string gt_error(const json& doc) {
  return error_of([&] { parse_coco_ground_truth(doc, "gt.json"); });
}

TEST(CocoJson, GroundTruthErrorsNameTheElement) {
  json doc = kGt;
  doc["annotations"][1]["image_id"] = 9;
  EXPECT_EQ(gt_error(doc), "gt.json: annotations[1]: expected an image id listed in images, got image_id 9");
  doc = kGt;
  doc["annotations"][0]["category_id"] = 2;
  EXPECT_EQ(gt_error(doc),
            "gt.json: annotations[0]: expected a category id listed in categories, got category_id 2");
  doc = kGt;
  doc["annotations"][1]["bbox"] = {1, 2, 3};
  EXPECT_EQ(gt_error(doc), "gt.json: annotations[1]: expected 'bbox' [x, y, w, h], got [1,2,3]");
  doc = kGt;
  doc["annotations"][0]["bbox"][2] = -3;
  EXPECT_EQ(gt_error(doc), "gt.json: annotations[0]: expected 'bbox' width and height >= 0, got [1,2,-3,4]");
  doc = kGt;
  doc["images"].push_back({{"id", 1}});
  EXPECT_EQ(gt_error(doc), "gt.json: images[2]: expected a new image id, got 1 again");
  doc = kGt;
  doc["categories"][1]["id"] = 3;
  EXPECT_EQ(gt_error(doc), "gt.json: categories[1]: expected a new category id, got 3 again");
  doc = kGt;
  doc["categories"][0].erase("name");
  EXPECT_EQ(gt_error(doc), "gt.json: categories[0]: expected a string 'name', got no such field");
  doc = kGt;
  doc.erase("annotations");
  EXPECT_EQ(gt_error(doc), "gt.json: expected a 'annotations' array, got no such field");
  EXPECT_NE(
      error_of([&] { parse_coco_ground_truth(json::array(), "gt.json"); }).find("gt.json: expected a COCO"),
      std::string::npos);
}

std::string results_error(const json& res, const DetectionData& gt) {
  return error_of([&] { parse_coco_results(res, gt, "preds.json"); });
}

TEST(CocoJson, ResultsAreCheckedAgainstTheGroundTruth) {
  const DetectionData gt = parse_coco_ground_truth(kGt, "gt.json");
  json res = json::parse(R"([
    {"image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4], "score": 0.5},
    {"image_id": 2, "category_id": 1.0, "bbox": [0.5, 0, 5, 6], "score": 0.25, "extra": "ignored"}])");
  const auto dets = parse_coco_results(res, gt, "preds.json");
  ASSERT_EQ(dets.size(), 2u);
  EXPECT_EQ(dets[1].category_id, 1);
  EXPECT_EQ(dets[1].x, 0.5);
  EXPECT_EQ(dets[1].score, 0.25);

  res.push_back({{"image_id", 4711}, {"category_id", 3}, {"bbox", {0, 0, 1, 1}}, {"score", 0.1}});
  EXPECT_EQ(results_error(res, gt),
            "preds.json: results[2]: expected an image id of the ground truth, got image_id 4711");
  res[2]["image_id"] = 1;
  res[2]["category_id"] = 2;
  EXPECT_EQ(results_error(res, gt),
            "preds.json: results[2]: expected a category id of the ground truth, got category_id 2");
  res[2]["category_id"] = 3;
  res[2].erase("score");
  EXPECT_EQ(results_error(res, gt), "preds.json: results[2]: expected a number 'score', got no such field");
  res[2]["score"] = nullptr;
  EXPECT_EQ(results_error(res, gt), "preds.json: results[2]: expected a finite number 'score', got null");
  res[2]["score"] = 0.1;
  res[2]["image_id"] = 1.5;
  EXPECT_EQ(results_error(res, gt), "preds.json: results[2]: expected an integer 'image_id', got 1.5");
  EXPECT_NE(
      error_of([&] { parse_coco_results(json::object(), gt, "preds.json"); }).find("expected a COCO results"),
      std::string::npos);
}

TEST(CocoJson, FilesRoundTripAndErrorsNameTheFile) {
  TempDir dir;
  DetectionData gt = parse_coco_ground_truth(kGt, "gt.json");
  gt.detections = {{1, 3, 0.1, 0.2, 3.3, 4.4, 0.123456789012345}, {2, 1, 0, 0, 1, 1, 1e-9}};
  write_coco_ground_truth(dir / "gt.json", gt);
  write_coco_results(dir / "res.json", gt.detections);
  const DetectionData back = read_coco_ground_truth(dir / "gt.json");
  EXPECT_EQ(back.image_ids, gt.image_ids);
  ASSERT_EQ(back.ground_truth.size(), 2u);
  EXPECT_EQ(back.ground_truth[0].area, 10.5);
  EXPECT_TRUE(back.ground_truth[1].iscrowd);
  const auto dets = read_coco_results(dir / "res.json", back);
  ASSERT_EQ(dets.size(), 2u);
  EXPECT_EQ(dets[0].score, 0.123456789012345);  // doubles round-trip exactly
  EXPECT_EQ(dets[0].w, 3.3);
  EXPECT_EQ(dets[1].score, 1e-9);
  const json written = json::parse(vigil::read_file(dir / "gt.json"));
  EXPECT_EQ(written["annotations"][0]["id"], 1);  // ids start at 1: pycocotools reads 0 as "no match"

  vigil::write_file_atomic(dir / "bad.json", "[{\"image_id\": 1,");
  const std::string message = error_of([&] { read_coco_results(dir / "bad.json", back); });
  EXPECT_NE(message.find("bad.json: expected JSON, got a parse error"), std::string::npos) << message;
  EXPECT_THROW(read_coco_results(dir / "missing.json", back), vigil::NotFound);
}

TEST(CocoJson, MetricsKeys) {
  DetectionData d;
  d.image_ids = {1};
  d.categories = {{1, "gun"}, {2, "knife"}};
  d.ground_truth = {{1, 1, 0, 0, 10, 10, 100}};
  d.detections = {{1, 1, 0, 0, 10, 10, 0.9}};
  const CocoEvalResult coco = coco_evaluate(d);
  const UltralyticsMetrics ultra = ultralytics_metrics(d);
  const json m = metrics_json(coco, ultra);
  for (const char* key : {"coco/AP",
                          "coco/AP50",
                          "coco/AP75",
                          "coco/APs",
                          "coco/APm",
                          "coco/APl",
                          "coco/AR1",
                          "coco/AR10",
                          "coco/AR100",
                          "coco/ARs",
                          "coco/ARm",
                          "coco/ARl",
                          "coco/AP/gun",
                          "coco/AP/knife",
                          "coco/AP50/gun",
                          "coco/AP50/knife",
                          "metrics/precision(B)",
                          "metrics/recall(B)",
                          "metrics/mAP50(B)",
                          "metrics/mAP50-95(B)"}) {
    EXPECT_TRUE(m.contains(key)) << key;
  }
  EXPECT_EQ(m.size(), 20u);
  // One perfect detection: COCO AP 1; small box, so APm is undefined; knife has no ground truth.
  EXPECT_NEAR(m["coco/AP"].get<double>(), 1, 1e-12);
  EXPECT_EQ(m["coco/APm"].get<double>(), -1);
  EXPECT_EQ(m["coco/AP/knife"].get<double>(), -1);
  // Ultralytics' integral of a perfect curve is .995 (the envelope drops to 0 at recall 1).
  EXPECT_NEAR(m["metrics/mAP50(B)"].get<double>(), 0.995, 1e-12);
  EXPECT_EQ(metrics_json(coco).size(), 16u);
}

}  // namespace
