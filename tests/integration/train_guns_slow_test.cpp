// Must-show run on ../shared/datasets/guns (skipped when absent), through the real binary and
// examples/train/guns_frcnn_mobilenet_320.yaml: Faster R-CNN MobileNetV3-Large 320 FPN from scratch under a
// 100-second time budget (`time:`) ends with a validated best.ckpt of that run, whose results.csv carries the
// detection metrics, and `vigil evaluate --run` scores it (the COCO table, per-class lines, the HTML report).
// Whether the detector gets good is bench/'s question (bench/train_quality.sh guns: equal time with the
// seeds' Python recipe), not one a CI budget can answer. ctest labels: integration, slow.

#include <gtest/gtest.h>

#include <cstdio>
#include <regex>

#include "tests_util.h"
#include "train_slow_util.h"

namespace {

using vigil::testing::example;
using vigil::testing::print_rows;
using vigil::testing::read_results;
using vigil::testing::run_vigil;
using vigil::testing::TempDir;
namespace fs = std::filesystem;

TEST(TrainReal, GunsExampleTrainsToItsTimeBudgetThenIsEvaluated) {
  VIGIL_REQUIRE_SHARED(guns, "guns");
  TempDir tmp;
  const fs::path ws = tmp / "ws";
  auto r = run_vigil("data ingest '" + guns.string() + "' --format guns --name guns", ws);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_vigil("data split guns --val 0.2 --seed 0", ws);
  ASSERT_EQ(r.exit_code, 0) << r.err;

  r = run_vigil(
      "train --config '" + example("guns_frcnn_mobilenet_320.yaml") + "' --name guns --set time=100s", ws);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::printf("%s\n", r.out.c_str());
  EXPECT_NE(r.out.find("(time budget reached)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("img/s training"), std::string::npos) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(best weights \S+/best\.ckpt \(epoch [0-9]+, fitness )")))
      << "best.ckpt is chosen by fitness:\n"
      << r.out;
  // An epoch of the 213 training images takes longer than the budget here: the budget cut it short and
  // validated it (a validation quicker than foreseen may leave time for a short second one).
  const auto rows = read_results(ws / "runs" / "guns" / "results.csv");
  ASSERT_GE(rows.size(), 1u);
  ASSERT_LE(rows.size(), 3u);
  print_rows("guns, fasterrcnn_mobilenet_v3_large_320_fpn from scratch, 100 s:", rows,
             {"train/loss", "val/loss", "val/loss_classifier", "val/loss_objectness", "val/loss_box_reg"});
  EXPECT_TRUE(fs::exists(ws / "runs" / "guns" / "weights" / "best.ckpt"));
  for (const char* key : {"metrics/mAP50(B)", "metrics/mAP50-95(B)", "fitness"}) {
    EXPECT_TRUE(rows.back().count(key)) << key << " missing from results.csv";
  }

  // The must-show evaluation of the trained model on its validation images: table printed, report written.
  r = run_vigil("evaluate --run guns --gallery 8", ws);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::printf("%s\n", r.out.c_str());
  EXPECT_NE(r.out.find("Average Precision  (AP) @[ IoU=0.50:0.95"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("name = gun"), std::string::npos) << r.out;
  const fs::path out = ws / "runs" / "guns" / "eval" / "val";
  EXPECT_TRUE(fs::exists(out / "metrics.json"));
  EXPECT_GT(fs::file_size(out / "report.html"), 10000u);
}

}  // namespace
