// Drives `vigil evaluate` for real: a detector and a classifier trained briefly on synthetic data are
// evaluated on their validation split (metrics.json keys and ranges, plots, report with pictures, COCO files
// written beside them); the written COCO files are re-scored through --gt/--detections and must give the same
// numbers; ground truth offered as detections must score AP 1; and bad input gives clear errors.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests_util.h"
#include "vigil/core/fs.h"

namespace {

using json = nlohmann::json;
using vigil::testing::run_vigil;
using vigil::testing::TempDir;
namespace fs = std::filesystem;

constexpr const char* kDetectorConfig = R"(epochs: 1
seed: 1
threads: 2
name: det
model:
  arch: fasterrcnn_mobilenet_v3_large_320_fpn
data:
  dataset: boxes
  batch_size: 2
  threads: 1
optimizer:
  name: sgd
  lr: 0.01
  momentum: 0.9
)";

constexpr const char* kClassifierConfig = R"(epochs: 2
seed: 1
threads: 2
name: cls
model:
  arch: mask_small_cnn
data:
  dataset: shapes
  batch_size: 8
  threads: 1
optimizer:
  name: adam
  lr: 0.001
)";

const char* const kCocoKeys[] = {"coco/AP",  "coco/AP50", "coco/AP75",  "coco/APs", "coco/APm", "coco/APl",
                                 "coco/AR1", "coco/AR10", "coco/AR100", "coco/ARs", "coco/ARm", "coco/ARl"};

class EvaluateCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new TempDir();
    ws_ = *tmp_ / "ws";
    auto step = [](const std::string& args) {
      auto r = run_vigil(args, ws_);
      ASSERT_EQ(r.exit_code, 0) << args << "\n" << r.err;
    };
    const fs::path det = *tmp_ / "det", cls = *tmp_ / "cls";
    step("data synth '" + det.string() +
         "' --task detection --images 24 --width 160 --height 120 --classes 2 --seed 4");
    step("data ingest '" + det.string() + "' --name boxes");
    step("data split boxes --val 0.25 --seed 1");
    step("data synth '" + cls.string() +
         "' --task classification --images 60 --width 64 --height 64 --classes 3 --seed 2");
    step("data ingest '" + cls.string() + "' --name shapes");
    step("data split shapes --val 0.3 --seed 1");
    vigil::testing::write_text(*tmp_ / "det.yaml", kDetectorConfig);
    vigil::testing::write_text(*tmp_ / "cls.yaml", kClassifierConfig);
    step("train --config '" + (*tmp_ / "det.yaml").string() + "'");
    step("train --config '" + (*tmp_ / "cls.yaml").string() + "'");
  }
  static void TearDownTestSuite() { delete tmp_; }

  vigil::testing::CommandResult vigil(const std::string& args) { return run_vigil(args, ws_); }
  static json read_json(const fs::path& p) { return json::parse(vigil::read_file(p)); }

  static TempDir* tmp_;
  static fs::path ws_;
};
TempDir* EvaluateCli::tmp_ = nullptr;
fs::path EvaluateCli::ws_;

TEST_F(EvaluateCli, DetectorOnItsValidationSplit) {
  const fs::path out = *tmp_ / "det-eval";
  auto r = vigil("evaluate --run det --out '" + out.string() + "' --gallery 4");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("class_id = 1"), std::string::npos) << r.out;  // darknet-style lines
  const json m = read_json(out / "metrics.json");
  for (const char* key : kCocoKeys) {
    ASSERT_TRUE(m.contains(key)) << key;
    const double v = m[key].get<double>();
    EXPECT_TRUE(v == -1 || (v >= 0 && v <= 1)) << key << " = " << v;
  }
  for (const char* key :
       {"metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)"}) {
    ASSERT_TRUE(m.contains(key)) << key;
  }
  EXPECT_TRUE(m.contains("coco/AP/circle") && m.contains("coco/AP50/square")) << m.dump();  // synth classes
  for (const char* plot : {"PR_curve.png", "F1_curve.png", "P_curve.png", "R_curve.png",
                           "confusion_matrix.png", "confusion_matrix_normalized.png"}) {
    EXPECT_GT(fs::file_size(out / "plots" / plot), 1000u) << plot;
  }
  const std::string html = vigil::read_file(out / "report.html");
  EXPECT_NE(html.find("data:image/png;base64,"), std::string::npos);
  EXPECT_NE(html.find("data:image/jpeg;base64,"), std::string::npos) << "no gallery pictures";
  EXPECT_NE(html.find("Per class"), std::string::npos);
  EXPECT_TRUE(fs::exists(out / "config.yaml"));

  // The written COCO files, scored without the model, give the same numbers.
  const fs::path again = *tmp_ / "det-files";
  r = vigil("evaluate --gt '" + (out / "ground_truth.json").string() + "' --detections '" +
            (out / "detections.json").string() + "' --out '" + again.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json m2 = read_json(again / "metrics.json");
  for (const char* key : kCocoKeys) EXPECT_DOUBLE_EQ(m2[key].get<double>(), m[key].get<double>()) << key;

  // Ground truth offered as detections is perfect: AP 1 and AR100 1 (some boxes are in every area range
  // or the range is undefined, -1).
  const json gt = read_json(out / "ground_truth.json");
  json perfect = json::array();
  for (const auto& a : gt["annotations"]) {
    perfect.push_back({{"image_id", a["image_id"]},
                       {"category_id", a["category_id"]},
                       {"bbox", a["bbox"]},
                       {"score", 1.0}});
  }
  vigil::testing::write_text(*tmp_ / "perfect.json", perfect.dump());
  r = vigil("evaluate --gt '" + (out / "ground_truth.json").string() + "' --detections '" +
            (*tmp_ / "perfect.json").string() + "' --out '" + (*tmp_ / "perfect").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json pm = read_json(*tmp_ / "perfect" / "metrics.json");
  EXPECT_DOUBLE_EQ(pm["coco/AP"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(pm["coco/AR100"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(pm["metrics/mAP50(B)"].get<double>(), 0.995);  // Ultralytics' envelope ends at recall 1
}

TEST_F(EvaluateCli, ClassifierOnItsValidationSplit) {
  const fs::path out = *tmp_ / "cls-eval";
  auto r = vigil("evaluate --model '" + (ws_ / "runs" / "cls" / "weights" / "best.ckpt").string() +
                 "' --data shapes --split val --out '" + out.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json m = read_json(out / "metrics.json");
  ASSERT_TRUE(m.contains("accuracy"));
  EXPECT_GE(m["accuracy"].get<double>(), 0.0);
  EXPECT_TRUE(m.contains("macro/f1") && m.contains("ece") && m.contains("top5_accuracy")) << m.dump();
  EXPECT_NE(r.out.find("accuracy"), std::string::npos);
  for (const char* plot : {"confusion_matrix.png", "roc.png", "reliability.png"}) {
    EXPECT_GT(fs::file_size(out / "plots" / plot), 1000u) << plot;
  }
  EXPECT_NE(vigil::read_file(out / "report.html").find("data:image/jpeg;base64,"), std::string::npos);
}

TEST_F(EvaluateCli, BadInput) {
  // Class names that differ between model and data.
  auto r = vigil("evaluate --run det --data shapes");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("classes"), std::string::npos) << r.err;
  // An empty split part.
  r = vigil("evaluate --run det --split test");
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("is empty"), std::string::npos) << r.err;
  // A results JSON naming an image the ground truth does not have.
  const fs::path gt = *tmp_ / "gt.json";
  vigil::testing::write_text(
      gt, R"({"images": [{"id": 1}], "categories": [{"id": 1, "name": "a"}], "annotations": []})");
  vigil::testing::write_text(*tmp_ / "bad.json",
                             R"([{"image_id": 4711, "category_id": 1, "bbox": [0, 0, 2, 2], "score": 0.5}])");
  r = vigil("evaluate --gt '" + gt.string() + "' --detections '" + (*tmp_ / "bad.json").string() +
            "' --out '" + (*tmp_ / "bad").string() + "'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("4711"), std::string::npos) << r.err;
  // Unknown split kind, unknown dataset, missing model.
  EXPECT_EQ(vigil("evaluate --run det --split tset").exit_code, 2);
  EXPECT_EQ(vigil("evaluate --run det --data nosuch").exit_code, 4);
  EXPECT_EQ(vigil("evaluate --model /nonexistent.vgm --data boxes").exit_code, 4);
}

TEST_F(EvaluateCli, MissingImageIsAnError) {
  // A copy of the workspace whose store lost its image files (manifests and runs stay).
  const fs::path copy = *tmp_ / "ws-broken";
  fs::copy(ws_, copy, fs::copy_options::recursive);
  std::vector<fs::path> objects;
  for (const auto& e : fs::recursive_directory_iterator(copy / "store" / "objects")) {
    if (e.is_regular_file()) objects.push_back(e.path());
  }
  ASSERT_FALSE(objects.empty());
  for (const auto& o : objects) fs::remove(o);
  auto r = run_vigil("evaluate --run det --out '" + (*tmp_ / "broken").string() + "'", copy);
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("missing"), std::string::npos) << r.err;
}

}  // namespace
