// examples/guns end to end with the real guns data: `vigil repro` ingests, validates, splits, trains,
// evaluates and registers; a second repro does nothing; editing one param reruns only the stages that read
// it (and what depends on their outputs). Skips without ../shared/datasets/guns.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "pipeline_util.h"
#include "tests_util.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"

namespace {

using json = nlohmann::json;
using vigil::testing::TempDir;
namespace fs = std::filesystem;

using vigil::testing::ran_stages;
using vigil::testing::repro;

TEST(PipelineGuns, ReproRunsEndToEndThenSkipsThenRerunsOnlyWhatAParamChanges) {
  VIGIL_REQUIRE_SHARED(guns, "guns");
  TempDir tmp;
  const fs::path project = tmp / "guns";
  fs::create_directories(project);
  fs::copy_file(fs::path(VIGIL_SOURCE_DIR) / "examples/guns/dvc.yaml", project / "dvc.yaml");
  // The example points at ../../../shared from its own folder; here the data is wherever the tests found it.
  std::string params = vigil::read_file(fs::path(VIGIL_SOURCE_DIR) / "examples/guns/params.yaml");
  params = std::regex_replace(params, std::regex("source: [^ ]+"), "source: " + fs::absolute(guns).string());
  // The test is about the pipeline (what runs, what is skipped, what reruns), not the detector: a 75 s
  // training budget (the trainer cuts the epoch and still validates and writes best.ckpt) keeps it inside
  // CI's time.
  params = std::regex_replace(params, std::regex("\n  epochs: 1 "), "\n  time: 75s\n  epochs: 1 ");
  ASSERT_NE(params.find("time: 75s"), std::string::npos) << params;
  vigil::testing::write_text(project / "params.yaml", params);

  auto [rc, out] = repro(project);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(ran_stages(out),
            (std::vector<std::string>{"ingest", "validate", "split", "train", "evaluate", "register"}))
      << out;
  const json reg = json::parse(vigil::read_file(project / "models/guns.json"));
  EXPECT_EQ(reg["name"], "guns");
  EXPECT_EQ(reg["version"], 1);
  EXPECT_EQ(reg["aliases"], json::array({"staging"}));
  EXPECT_TRUE(reg["metrics"].contains("eval/metrics/mAP50(B)")) << reg.dump();
  const json dataset = json::parse(vigil::read_file(project / "data/dataset.json"));
  EXPECT_EQ(dataset["images"], 266);
  const std::string lock = vigil::read_file(project / "dvc.lock");
  EXPECT_EQ(lock.rfind("schema: '2.0'\n", 0), 0u) << lock.substr(0, 200);
  for (const char* stage : {"ingest:", "validate:", "split:", "train:", "evaluate:", "register:"})
    EXPECT_NE(lock.find(stage), std::string::npos) << stage;

  std::tie(rc, out) = repro(project);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_TRUE(ran_stages(out).empty()) << out;
  EXPECT_NE(out.find("didn't change, skipping"), std::string::npos) << out;
  EXPECT_EQ(vigil::read_file(project / "dvc.lock"), lock) << "nothing ran, nothing rewritten";

  // The evaluation's confusion threshold is read by `evaluate` only: ingest, validate, split and train stay.
  params = std::regex_replace(params, std::regex("confusion_conf: 0.25"), "confusion_conf: 0.5");
  vigil::testing::write_text(project / "params.yaml", params);
  const auto [src, status] =
      vigil::testing::run_shell(fmt::format("cd '{}' && '{}' status 2>&1", project.string(), VIGIL_BINARY));
  EXPECT_EQ(src, 0) << status;
  EXPECT_NE(status.find("evaluate"), std::string::npos) << status;
  EXPECT_EQ(status.find("train:"), std::string::npos) << status;
  std::tie(rc, out) = repro(project);
  ASSERT_EQ(rc, 0) << out;
  const auto second = ran_stages(out);
  ASSERT_FALSE(second.empty()) << out;
  EXPECT_EQ(second.front(), "evaluate") << out;
  for (const auto& s : second) EXPECT_TRUE(s == "evaluate" || s == "register") << s << " reran\n" << out;
  std::tie(rc, out) = repro(project);
  EXPECT_TRUE(ran_stages(out).empty()) << out;
}

}  // namespace
