// Tracking and the registry through the real `vigil` binary: train and evaluate record runs (params,
// metric history, artifacts with hashes, code version, lineage), `vigil runs` lists/filters/compares/deletes
// them, an interrupted run is killed and its resume finishes the same run, and `vigil models` registers,
// aliases, describes, exports, imports and refuses bad references.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "tests_util.h"
#include "vigil/core/fs.h"
#include "vigil/core/hash.h"
#include "vigil/core/strings.h"

namespace {

using json = nlohmann::json;
using vigil::testing::run_vigil;
using vigil::testing::TempDir;
namespace fs = std::filesystem;

constexpr const char* kConfig = R"(epochs: 2
seed: 3
threads: 1
experiment: shapes-exp
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

class TrackingCli : public ::testing::Test {
 protected:
  static inline TempDir* tmp = nullptr;
  static fs::path ws() { return *tmp / "ws"; }
  static vigil::testing::CommandResult vigil(const std::string& args) { return run_vigil(args, ws()); }
  static json vigil_json(const std::string& args) {
    const auto r = vigil(args);
    EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.err;
    return json::parse(r.out);
  }

  // One workspace for the suite: two trained runs and an evaluation (training is the slow part).
  static void SetUpTestSuite() {
    tmp = new TempDir();
    vigil::testing::write_text(*tmp / "train.yaml", kConfig);
    auto r = vigil("data synth '" + (*tmp / "src").string() +
                   "' --task classification --images 60 --width 48 --height 48 --classes 3 --seed 2");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(vigil("data ingest '" + (*tmp / "src").string() + "' --name shapes").exit_code, 0);
    ASSERT_EQ(vigil("data split shapes --val 0.25 --seed 1").exit_code, 0);
    r = vigil("train --config '" + (*tmp / "train.yaml").string() + "' --name first");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = vigil("train --config '" + (*tmp / "train.yaml").string() +
              "' --name second --set optimizer.lr=0.01");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = vigil("evaluate --run first --gallery 0");
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() {
    delete tmp;
    tmp = nullptr;
  }
};

TEST_F(TrackingCli, TrainingRecordsParamsMetricHistoryArtifactsAndCode) {
  const json run = vigil_json("runs show first --json");
  EXPECT_EQ(run["status"], "finished");
  EXPECT_EQ(run["kind"], "train");
  EXPECT_EQ(run["experiment"], "shapes-exp");
  EXPECT_EQ(run["params"]["model.arch"], "mask_small_cnn");
  EXPECT_EQ(run["params"]["optimizer.lr"], "0.001");
  EXPECT_EQ(run["params"]["epochs"], "2");
  EXPECT_FALSE(run["dataset_id"].get<std::string>().empty());
  EXPECT_GT(run["end_ms"].get<int64_t>(), run["start_ms"].get<int64_t>());
  // The tests run inside vigil's own git checkout: the commit is recorded.
  const auto [rc, head] = vigil::testing::run_shell("git rev-parse HEAD 2>/dev/null");
  if (rc == 0) EXPECT_EQ(run["code"]["commit"], std::string(vigil::trim(head)));
  ASSERT_EQ(run["metric_history"]["metrics/accuracy_top1"].size(), 2u);
  EXPECT_EQ(run["metric_history"]["metrics/accuracy_top1"][1]["step"], 2);
  bool best = false;
  for (const auto& a : run["artifacts"]) {
    if (a["path"] != "weights/best.ckpt") continue;
    best = true;
    EXPECT_EQ(a["sha256"],
              vigil::hash_file(fs::path(run["run_dir"].get<std::string>()) / "weights/best.ckpt"));
  }
  EXPECT_TRUE(best) << run["artifacts"].dump();
}

TEST_F(TrackingCli, EvaluationIsARunLinkedToItsTrainingRun) {
  const json page = vigil_json("runs list --filter 'kind = evaluate' --json");
  ASSERT_EQ(page["total"], 1);
  const json& eval = page["runs"][0];
  EXPECT_EQ(eval["parent_id"], vigil_json("runs show first --json")["id"]);
  EXPECT_EQ(eval["experiment"], "shapes-exp");
  EXPECT_EQ(eval["status"], "finished");
  EXPECT_TRUE(eval["metrics"].contains("accuracy")) << eval["metrics"].dump();
}

TEST_F(TrackingCli, ListFiltersSortsPagesComparesAndDeletes) {
  auto r = vigil("runs list");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("first"), std::string::npos);
  EXPECT_NE(r.out.find("metrics/accuracy_top1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("runs 1-3 of 3"), std::string::npos) << r.out;

  json page = vigil_json("runs list --filter 'params.optimizer.lr = 0.01' --json");
  ASSERT_EQ(page["total"], 1);
  EXPECT_EQ(page["runs"][0]["name"], "second");
  page = vigil_json(
      "runs list --experiment shapes-exp --filter 'kind = train' --order-by 'params.optimizer.lr DESC' "
      "--json");
  ASSERT_EQ(page["total"], 2);
  EXPECT_EQ(page["runs"][0]["name"], "second");
  page = vigil_json("runs list --limit 1 --page 2 --order-by name --json");
  EXPECT_EQ(page["total"], 3);
  ASSERT_EQ(page["runs"].size(), 1u);
  EXPECT_EQ(page["runs"][0]["name"], "first");  // eval-first-val, first, second

  r = vigil("runs compare first second");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("optimizer.lr"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("model.arch"), std::string::npos) << "equal params are hidden\n" << r.out;
  EXPECT_NE(r.out.find("metrics/accuracy_top1"), std::string::npos) << r.out;
  page = vigil_json(
      "runs list --filter 'metrics.`metrics/accuracy_top1` >= 0' --order-by 'metrics.`train/loss` ASC' "
      "--json");
  EXPECT_EQ(page["total"], 2);

  r = vigil("runs list --filter 'metrics.val_accuracy > high'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("expected a number"), std::string::npos) << r.err;
  r = vigil("runs show nosuchrun");
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_NE(r.err.find("no run 'nosuchrun'"), std::string::npos) << r.err;
}

TEST_F(TrackingCli, RegistryVersionsAliasesExportImport) {
  auto r = vigil("models register first --name shapes");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = vigil("models register second --name shapes --alias staging");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(vigil("models alias shapes 1 production").exit_code, 0);

  json v = vigil_json("models describe shapes@production --json");
  EXPECT_EQ(v["version"], 1);
  EXPECT_EQ(v["run_id"], vigil_json("runs show first --json")["id"]);
  EXPECT_EQ(v["arch"], "mask_small_cnn");
  EXPECT_TRUE(v["metrics"].contains("metrics/accuracy_top1")) << v["metrics"].dump();
  EXPECT_TRUE(v["metrics"].contains("eval/accuracy")) << "the run's evaluation is part of the version";
  EXPECT_EQ(vigil_json("models describe shapes@latest --json")["version"], 2);
  EXPECT_EQ(vigil_json("models describe shapes/2 --json")["aliases"], json::array({"staging"}));

  r = vigil("models alias shapes 2 production");
  EXPECT_NE(r.out.find("moved from version 1 to 2"), std::string::npos) << r.out;
  r = vigil("models alias shapes 7 production");
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_NE(r.err.find("has no version 7 (versions: 1, 2)"), std::string::npos) << r.err;
  r = vigil("models delete shapes/2");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("aliased as production, staging"), std::string::npos) << r.err;
  r = vigil("models describe shapes@canary");
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_NE(r.err.find("no alias 'canary'"), std::string::npos) << r.err;

  const fs::path file = *tmp / "shapes-2.tar";
  r = vigil("models export shapes@production '" + file.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto other = *tmp / "other-ws";
  auto imported = run_vigil("models import '" + file.string() + "'", other);
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  EXPECT_NE(imported.out.find("imported shapes/2 as shapes/1"), std::string::npos) << imported.out;
  const auto there = json::parse(run_vigil("models describe shapes/1 --json", other).out);
  EXPECT_EQ(there["sha256"], vigil_json("models describe shapes/2 --json")["sha256"]);
  // The imported file is a model that runs: predict with it in the other workspace.
  const auto img = *tmp / "one.png";
  vigil::testing::write_image(img, 48, 48, 1);
  const auto predicted =
      run_vigil("predict --model '" + there["file"].get<std::string>() + "' '" + img.string() + "'", other);
  EXPECT_EQ(predicted.exit_code, 0) << predicted.err;
}

TEST_F(TrackingCli, InterruptedRunIsKilledAndItsResumeFinishesTheSameRun) {
  const fs::path err = *tmp / "interrupted.err";
  const std::string cmd = fmt::format(
      "exec '{}' --workspace '{}' train --config '{}' --name interrupted --set epochs=40 > /dev/null 2> '{}' "
      "< /dev/null",
      VIGIL_BINARY, ws().string(), (*tmp / "train.yaml").string(), err.string());
  const pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until the run is recorded and has finished an epoch, then interrupt it.
  for (int i = 0; i < 600; ++i) {
    const auto r = vigil(
        "runs list --filter \"name = 'interrupted'\" --filter 'metrics.`metrics/accuracy_top1` >= 0' --json");
    if (r.exit_code == 0 && json::parse(r.out)["total"] == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(kill(pid, SIGINT), 0);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_EQ(WEXITSTATUS(status), 130) << vigil::read_file(err);
  json run = vigil_json("runs show interrupted --json");
  EXPECT_EQ(run["status"], "killed");
  const auto id = run["id"];
  auto r = vigil("models register interrupted --name shapes");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("which is killed"), std::string::npos) << r.err;

  r = vigil("train --resume interrupted --set epochs=2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  run = vigil_json("runs show interrupted --json");
  EXPECT_EQ(run["id"], id);
  EXPECT_EQ(run["status"], "finished");
  EXPECT_GE(run["metric_history"]["metrics/accuracy_top1"].size(), 1u);
}

}  // namespace
