// `make demo`'s script (scripts/demo.sh) end to end on a short budget, without serving: it is a newcomer's
// first run, so a step that breaks (a recipe key renamed, the score line's awk reading a renamed column) must
// fail here rather than in front of them. The demo's real budget and the score it reaches are measured in
// examples/train/README.md; this run is too short to learn much, so it checks the pieces, not the score.

#include <gtest/gtest.h>

#include <regex>

#include "tests_util.h"
#include "vigil/core/fs.h"

namespace {

using vigil::testing::run_shell;
using vigil::testing::run_vigil;
using vigil::testing::TempDir;
namespace fs = std::filesystem;

TEST(DemoScript, TrainsEvaluatesAndPrintsTheValidationScoreOfTheWeightsHandedOver) {
  TempDir tmp;
  const fs::path ws = tmp / "demo";
  const std::string command = "SERVE=0 TIME=20s bash '" + std::string(VIGIL_SOURCE_DIR) +
                              "/scripts/demo.sh' '" + VIGIL_BINARY + "' '" + ws.string() + "' 2>&1";
  const auto [code, out] = run_shell(command);
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("time budget reached"), std::string::npos) << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      out, m,
      std::regex(R"(demo model: validation mAP50 ([0-9.]+) \(COCO AP50; AP ([0-9.]+)\) at epoch ([0-9]+))")))
      << out;
  EXPECT_GE(std::stod(m[1]), 0.0);
  EXPECT_LE(std::stod(m[1]), 1.0);
  EXPECT_GE(std::stoi(m[3]), 1);
  // The pieces a newcomer is pointed at exist.
  EXPECT_TRUE(fs::exists(ws / "runs" / "demo" / "weights" / "best.ckpt"));
  EXPECT_TRUE(fs::exists(ws / "runs" / "demo" / "eval" / "test" / "report.html"));
  EXPECT_TRUE(fs::exists(ws / "demo-predictions.json"));
  // The recipe's sizes reached the model the demo serves.
  const std::string config = vigil::read_file(ws / "runs" / "demo" / "config.yaml");
  EXPECT_NE(config.find("box_batch_size_per_image: 64"), std::string::npos) << config;
  EXPECT_NE(config.find("aspect_ratios:"), std::string::npos) << config;
  const auto show =
      run_vigil("weights show '" + (ws / "runs" / "demo" / "weights" / "best.ckpt").string() + "'", ws);
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("detector    min_size [240], aspect_ratios [1]"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("resize      min_size 240"), std::string::npos) << show.out;
}

}  // namespace
