// Must-show run on ../shared/datasets/masks (skipped when absent), through the real binary and
// examples/train/masks_small_cnn.yaml: the mask seed's small CNN, on a split that keeps near-duplicates (a
// face with and without a pasted mask) together, passes 90% validation accuracy. Prints its per-epoch
// figures. ctest labels: integration, slow.

#include <gtest/gtest.h>

#include "tests_util.h"
#include "train_slow_util.h"

namespace {

using vigil::testing::example;
using vigil::testing::print_rows;
using vigil::testing::read_results;
using vigil::testing::run_vigil;
using vigil::testing::TempDir;
namespace fs = std::filesystem;

TEST(TrainReal, MasksSmallCnnPassesNinetyPercentOnAGroupAwareSplit) {
  VIGIL_REQUIRE_SHARED(masks, "masks");
  TempDir tmp;
  const fs::path ws = tmp / "ws";
  auto r = run_vigil("data ingest '" + masks.string() + "' --format imagefolder --name masks", ws);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_vigil("data split masks --val 0.2 --seed 0", ws);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The face-with-pasted-mask pairs are grouped, so none straddles train and val.
  EXPECT_NE(r.out.find("duplicate groups"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"straddling_groups\": 0"), std::string::npos) << r.out;

  r = run_vigil("train --config '" + example("masks_small_cnn.yaml") +
                    "' --name masks --epochs 6 --set early_stopping.patience=0",
                ws);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = read_results(ws / "runs" / "masks" / "results.csv");
  ASSERT_EQ(rows.size(), 6u);
  print_rows("masks, mask_small_cnn 100x100, group-aware 80/20 split:", rows,
             {"train/loss", "val/loss", "metrics/accuracy_top1"});
  double best = 0;
  for (const auto& row : rows) best = std::max(best, row.at("metrics/accuracy_top1"));
  EXPECT_GT(best, 0.90);
  EXPECT_GT(rows.back().at("metrics/accuracy_top1"), 0.90);
  EXPECT_LT(rows.back().at("train/loss"), rows.front().at("train/loss"));
}

}  // namespace
