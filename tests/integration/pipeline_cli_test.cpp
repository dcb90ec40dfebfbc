// The real `vigil` binary on dvc.yaml pipelines: repro, status, dag, params diff, metrics show|diff, and the
// exit codes of bad pipelines.

#include <gtest/gtest.h>

#include "tests_util.h"
#include "vigil/core/fs.h"

namespace {

using vigil::testing::run_shell;
using vigil::testing::run_vigil;
using vigil::testing::TempDir;
using vigil::testing::write_text;
namespace fs = std::filesystem;

const char* kPipeline = R"(stages:
  prepare:
    cmd: mkdir -p data && tr a-z A-Z < raw.txt > data/clean.txt
    deps:
    - raw.txt
    outs:
    - data
  train:
    cmd: (cat data/clean.txt; grep 'lr:' params.yaml) > model.txt && vigil version > version.txt
    deps:
    - data/clean.txt
    params:
    - train.lr
    outs:
    - model.txt
  evaluate:
    cmd: printf '{"acc":0.91234567,"loss":0.25,"per_class":{"gun":0.8}}' > metrics.json
    deps:
    - model.txt
    metrics:
    - metrics.json:
        cache: false
)";

class PipelineCli : public ::testing::Test {
 protected:
  void SetUp() override {
    write_text(tmp_ / "raw.txt", "hello\n");
    write_text(tmp_ / "params.yaml", "train:\n  lr: 0.01\n  epochs: 2\n");
    write_text(tmp_ / "dvc.yaml", kPipeline);
  }
  vigil::testing::CommandResult vigil(const std::string& args) {
    return run_vigil(args + " --file '" + (tmp_ / "dvc.yaml").string() + "'", tmp_ / "ws");
  }
  bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }
  TempDir tmp_;
};

TEST_F(PipelineCli, HelpForEverySubcommand) {
  for (const char* cmd : {"repro", "status", "dag", "params diff", "metrics show", "metrics diff"}) {
    auto r = run_vigil(std::string(cmd) + " --help", tmp_ / "ws");
    EXPECT_EQ(r.exit_code, 0) << cmd << ": " << r.err;
    EXPECT_TRUE(has(r.out, "--file")) << cmd << ": " << r.out;
  }
}

TEST_F(PipelineCli, ReproSkipsAndStatus) {
  auto r = vigil("repro");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "Running stage 'prepare':\n> mkdir -p data")) << r.out;
  EXPECT_TRUE(has(r.out, "Generating lock file 'dvc.lock'")) << r.out;
  EXPECT_TRUE(fs::exists(tmp_ / "dvc.lock"));
  // `vigil` inside a stage command is this binary (its folder is put first on PATH).
  EXPECT_TRUE(has(vigil::read_file(tmp_ / "version.txt"), "vigil")) << vigil::read_file(tmp_ / "version.txt");

  r = vigil("repro");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(has(r.out, "Stage 'train' didn't change, skipping")) << r.out;
  EXPECT_TRUE(has(r.out, "Data and pipelines are up to date.")) << r.out;
  r = vigil("status");
  EXPECT_EQ(r.out, "Data and pipelines are up to date.\n");

  write_text(tmp_ / "params.yaml", "train:\n  lr: 0.02\n  epochs: 2\n");
  r = vigil("status");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out,
            "train:\n\tchanged deps:\n\t\tparams.yaml:\n\t\t\tmodified:                     train.lr\n")
      << r.out;
}

TEST_F(PipelineCli, ParamsMetricsDagOutsideGit) {
  ASSERT_EQ(vigil("repro").exit_code, 0);
  write_text(tmp_ / "params.yaml", "train:\n  lr: 0.02\n  epochs: 2\n");
  auto r = vigil("params diff");  // not a git repository: compared with what dvc.lock recorded
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Path         Param     dvc.lock  workspace\nparams.yaml  train.lr  0.01      0.02\n");
  r = vigil("params diff --json");
  EXPECT_TRUE(has(r.out, "\"train.lr\": {\n      \"old\": 0.01,\n      \"new\": 0.02")) << r.out;

  r = vigil("metrics show");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Path          acc      loss  per_class.gun\nmetrics.json  0.91235  0.25  0.8\n");
  r = vigil("metrics show --json");
  EXPECT_TRUE(has(r.out, "\"metrics.json\": {\n    \"acc\": 0.91234567")) << r.out;

  r = vigil("dag");
  EXPECT_EQ(r.out, "prepare\ntrain  <- prepare\nevaluate  <- train\n");
  r = vigil("dag --dot");
  EXPECT_TRUE(has(r.out, "\"prepare\" -> \"train\";")) << r.out;
  r = vigil("dag --mermaid");
  EXPECT_TRUE(has(r.out, "flowchart TD\n\tnode1[\"prepare\"]")) << r.out;

  r = vigil("repro --dry");
  EXPECT_TRUE(has(r.out, "Running stage 'train':")) << r.out;
  r = vigil("repro train");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "Updating lock file 'dvc.lock'")) << r.out;
  EXPECT_FALSE(has(r.out, "evaluate")) << r.out;
}

TEST_F(PipelineCli, DiffAgainstGitHead) {
  auto [code, out] = run_shell("cd '" + tmp_.path().string() +
                               "' && git init -q && git add raw.txt params.yaml dvc.yaml && "
                               "git -c user.name=t -c user.email=t@t commit -q -m init");
  if (code != 0) GTEST_SKIP() << "git unavailable: " << out;
  ASSERT_EQ(vigil("repro").exit_code, 0);
  run_shell("cd '" + tmp_.path().string() + "' && git add dvc.lock metrics.json && " +
            "git -c user.name=t -c user.email=t@t commit -q -m run");
  write_text(tmp_ / "params.yaml", "train:\n  lr: 0.02\n  epochs: 2\n");
  auto r = vigil("params diff");
  EXPECT_EQ(r.out, "Path         Param     HEAD  workspace\nparams.yaml  train.lr  0.01  0.02\n") << r.err;
  r = vigil("params diff --all");
  EXPECT_TRUE(has(r.out, "params.yaml  train.epochs  2     2")) << r.out;
  write_text(tmp_ / "metrics.json", "{\"acc\": 0.95, \"loss\": 0.25, \"per_class\": {\"gun\": 0.8}}");
  r = vigil("metrics diff");
  EXPECT_EQ(
      r.out,
      "Path          Metric  HEAD     workspace  Change\nmetrics.json  acc     0.91235  0.95       0.03765\n")
      << r.err;
}

TEST_F(PipelineCli, BadPipelinesExitNonZeroWithClearErrors) {
  write_text(tmp_ / "dvc.yaml",
             "stages:\n  a:\n    cmd: cp b a\n    deps: [b]\n    outs: [a]\n  b:\n    cmd: cp a b\n"
             "    deps: [a]\n    outs: [b]\n");
  auto r = vigil("repro");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(r.err, "cycle")) << r.err;

  write_text(tmp_ / "dvc.yaml", "stages:\n  a:\n    cmd: echo a\n    deps: [nope.csv]\n");
  r = vigil("repro");
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_TRUE(has(r.err, "stage 'a'") && has(r.err, "nope.csv")) << r.err;

  write_text(tmp_ / "dvc.yaml", "stages:\n  a:\n    cmd: echo ran >> log.txt && exit 7\n");
  r = vigil("repro");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_TRUE(has(r.err, "failed to reproduce 'a'") && has(r.err, "exited with 7")) << r.err;
  EXPECT_FALSE(fs::exists(tmp_ / "dvc.lock"));

  r = vigil("repro nosuch");
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_TRUE(has(r.err, "no stage named 'nosuch'")) << r.err;

  write_text(tmp_ / "dvc.yaml", "stages:\n  a:\n    cmd: [echo\n");
  r = vigil("status");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(r.err, "dvc.yaml:")) << r.err;

  fs::remove(tmp_ / "dvc.yaml");
  r = vigil("dag");
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_TRUE(has(r.err, "dvc.yaml")) << r.err;
}

}  // namespace
