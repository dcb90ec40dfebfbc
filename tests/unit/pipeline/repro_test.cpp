// Skip and rerun logic of `repro` on a real 3-stage pipeline (prepare -> train -> evaluate) with real /bin/sh
// commands that append to a run log, plus the bad inputs: cycle, missing dep, duplicate out, failing command.

#include <gtest/gtest.h>

#include "tests_util.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/interrupt.h"
#include "vigil/core/strings.h"
#include "vigil/pipeline/process.h"
#include "vigil/pipeline/repro.h"

namespace {

using namespace vigil::pipeline;
using vigil::testing::TempDir;
using vigil::testing::write_text;
namespace fs = std::filesystem;

const char* kPipeline = R"(stages:
  prepare:
    cmd: echo prepare >> runs.log && mkdir -p data && tr a-z A-Z < raw.txt > data/clean.txt
    deps:
    - raw.txt
    params:
    - prepare.upper
    outs:
    - data
  train:
    cmd: echo train >> runs.log && (cat data/clean.txt; grep 'lr:' params.yaml) > model.txt
    deps:
    - data/clean.txt
    params:
    - train.lr
    - train.note
    outs:
    - model.txt
  evaluate:
    cmd: echo evaluate >> runs.log && wc -c < model.txt > score.txt && echo '{"score":0.5}' > metrics.json
    deps:
    - model.txt
    params:
    - eval.threshold
    outs:
    - score.txt
    metrics:
    - metrics.json:
        cache: false
)";

const char* kParams = "prepare:\n  upper: true\ntrain:\n  lr: 0.01\n  note: first\neval:\n  threshold: 0.5\n";

class Repro : public ::testing::Test {
 protected:
  void SetUp() override {
    write_text(tmp_ / "raw.txt", "hello pipeline\n");
    write_text(tmp_ / "params.yaml", kParams);
    write_text(tmp_ / "dvc.yaml", kPipeline);
  }
  ReproResult run(ReproOptions opt = {}) {
    opt.file = tmp_ / "dvc.yaml";
    lines_.clear();
    return reproduce(opt, [this](const std::string& l) { lines_.push_back(l); });
  }
  // Stage names appended to runs.log since the last call.
  std::vector<std::string> new_runs() {
    std::error_code ec;
    std::string all = fs::exists(tmp_ / "runs.log", ec) ? vigil::read_file(tmp_ / "runs.log") : "";
    std::vector<std::string> out;
    for (const auto& l : vigil::split(all.substr(seen_), '\n'))
      if (!l.empty()) out.push_back(l);
    seen_ = all.size();
    return out;
  }
  std::string lock_text() { return vigil::read_file(tmp_ / "dvc.lock"); }
  bool printed(const std::string& line) const {
    return std::find(lines_.begin(), lines_.end(), line) != lines_.end();
  }
  void set_params(const std::string& from, const std::string& to) {
    std::string p = vigil::read_file(tmp_ / "params.yaml");
    p.replace(p.find(from), from.size(), to);
    write_text(tmp_ / "params.yaml", p);
  }

  TempDir tmp_;
  std::vector<std::string> lines_;
  size_t seen_ = 0;
  using V = std::vector<std::string>;
};

TEST_F(Repro, FirstRunRunsAllThenNothing) {
  auto r = run();
  EXPECT_EQ(new_runs(), (V{"prepare", "train", "evaluate"}));
  EXPECT_EQ(r.ran, (V{"prepare", "train", "evaluate"}));
  EXPECT_TRUE(printed("Running stage 'prepare':"));
  EXPECT_TRUE(printed("Generating lock file 'dvc.lock'"));
  const auto lock = read_lockfile(tmp_ / "dvc.lock");
  ASSERT_EQ(lock.stages.size(), 3u);
  EXPECT_EQ(lock.find("train")->params["params.yaml"]["train.lr"], 0.01);
  EXPECT_EQ(vigil::read_file(tmp_ / "data/clean.txt"), "HELLO PIPELINE\n");

  const std::string before = lock_text();
  r = run();
  EXPECT_TRUE(new_runs().empty());
  EXPECT_EQ(r.skipped, (V{"prepare", "train", "evaluate"}));
  EXPECT_TRUE(printed("Stage 'train' didn't change, skipping"));
  EXPECT_EQ(lock_text(), before);
  EXPECT_EQ(format_status(pipeline_status(tmp_ / "dvc.yaml")), "Data and pipelines are up to date.\n");
}

TEST_F(Repro, ParamOfTrainRerunsTrainAndEvaluateOnly) {
  run();
  new_runs();
  set_params("lr: 0.01", "lr: 0.02");
  const auto st = pipeline_status(tmp_ / "dvc.yaml");
  EXPECT_FALSE(st[0].changed());
  ASSERT_TRUE(st[1].changed());
  ASSERT_EQ(st[1].params.size(), 1u);
  EXPECT_EQ(st[1].params[0].key, "train.lr");
  EXPECT_NE(format_status(st).find("\t\tparams.yaml:\n\t\t\tmodified:                     train.lr\n"),
            std::string::npos)
      << format_status(st);
  run();
  EXPECT_EQ(new_runs(), (V{"train", "evaluate"}));
  EXPECT_TRUE(printed("Stage 'prepare' didn't change, skipping"));
  EXPECT_TRUE(printed("Updating lock file 'dvc.lock'"));
}

TEST_F(Repro, UnchangedOutputDoesNotRerunDownstream) {
  run();
  new_runs();
  set_params("note: first", "note: second");  // train reads it, but model.txt does not change
  run();
  EXPECT_EQ(new_runs(), (V{"train"}));
  EXPECT_TRUE(printed("Stage 'evaluate' didn't change, skipping"));
}

TEST_F(Repro, DepEditAndDeletedOutput) {
  run();
  new_runs();
  write_text(tmp_ / "raw.txt", "changed input\n");
  run();
  EXPECT_EQ(new_runs(), (V{"prepare", "train", "evaluate"}));
  fs::remove(tmp_ / "model.txt");
  const auto st = pipeline_status(tmp_ / "dvc.yaml");
  ASSERT_EQ(st[1].outs.size(), 1u);
  EXPECT_EQ(st[1].outs[0].status, "deleted");
  run();
  EXPECT_EQ(new_runs(), (V{"train"}));  // the same model.txt comes back, so evaluate stays
}

TEST_F(Repro, ForceAndDry) {
  run();
  new_runs();
  ReproOptions force;
  force.force = true;
  run(force);
  EXPECT_EQ(new_runs(), (V{"prepare", "train", "evaluate"}));

  set_params("lr: 0.01", "lr: 0.5");
  const std::string lock_before = lock_text();
  const std::string model_before = vigil::read_file(tmp_ / "model.txt");
  ReproOptions dry;
  dry.dry = true;
  auto r = run(dry);
  EXPECT_TRUE(new_runs().empty());
  EXPECT_EQ(r.ran, (V{"train"}));
  EXPECT_TRUE(printed("Running stage 'train':"));
  EXPECT_TRUE(
      printed("> echo train >> runs.log && (cat data/clean.txt; grep 'lr:' params.yaml) > model.txt"));
  EXPECT_EQ(lock_text(), lock_before);
  EXPECT_EQ(vigil::read_file(tmp_ / "model.txt"), model_before);
}

TEST_F(Repro, FailingCommandKeepsLastGoodEntry) {
  run();
  new_runs();
  const auto old_lock = read_lockfile(tmp_ / "dvc.lock");
  set_params("lr: 0.01", "lr: 0.03");
  std::string yaml = kPipeline;
  const std::string eval_cmd = "echo evaluate >> runs.log && wc -c < model.txt > score.txt";
  yaml.replace(yaml.find(eval_cmd), eval_cmd.size(), "echo evaluate >> runs.log && exit 3 && " + eval_cmd);
  write_text(tmp_ / "dvc.yaml", yaml);
  try {
    run();
    FAIL() << "expected the failing command to throw";
  } catch (const vigil::DataError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("failed to reproduce 'evaluate'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("exit 3"), std::string::npos) << msg;
    EXPECT_NE(msg.find("exited with 3"), std::string::npos) << msg;
  }
  EXPECT_EQ(new_runs(), (V{"train", "evaluate"}));
  const auto lock = read_lockfile(tmp_ / "dvc.lock");
  EXPECT_EQ(lock.find("train")->params["params.yaml"]["train.lr"], 0.03);  // recorded before the failure
  EXPECT_TRUE(*lock.find("evaluate") == *old_lock.find("evaluate"));       // the last good state
}

TEST_F(Repro, TargetRunsOnlyUpstream) {
  ReproOptions opt;
  opt.targets = {"train"};
  run(opt);
  EXPECT_EQ(new_runs(), (V{"prepare", "train"}));
  EXPECT_EQ(read_lockfile(tmp_ / "dvc.lock").stages.size(), 2u);
  set_params("lr: 0.01", "lr: 0.04");
  write_text(tmp_ / "raw.txt", "other\n");
  opt.single_item = true;
  run(opt);
  EXPECT_EQ(new_runs(), (V{"train"}));  // prepare changed too, but --single-item leaves it
  opt.targets = {"trian"};
  EXPECT_THROW(run(opt), vigil::NotFound);
}

TEST_F(Repro, BadPipelinesAreClearErrors) {
  auto expect_error = [&](const std::string& yaml, const std::vector<std::string>& words, auto tag) {
    write_text(tmp_ / "dvc.yaml", yaml);
    try {
      run();
      ADD_FAILURE() << "expected an error for:\n" << yaml;
    } catch (const decltype(tag)& e) {
      for (const auto& w : words)
        EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << w << " in: " << e.what();
    }
    EXPECT_TRUE(new_runs().empty()) << "nothing may run";
  };
  expect_error(
      "stages:\n  a:\n    cmd: cp b.txt a.txt\n    deps: [b.txt]\n    outs: [a.txt]\n"
      "  b:\n    cmd: cp a.txt b.txt\n    deps: [a.txt]\n    outs: [b.txt]\n",
      {"cycle", "'a'", "'b'"}, vigil::InvalidArgument(""));
  expect_error("stages:\n  a:\n    cmd: echo a >> runs.log\n    deps:\n    - nope.txt\n",
               {"stage 'a'", "nope.txt", "dvc.yaml:2"}, vigil::NotFound(""));
  expect_error(
      "stages:\n  a:\n    cmd: echo a > x\n    outs: [x]\n  b:\n    cmd: echo b > x\n    outs: [x]\n",
      {"'x'", "'a'", "'b'"}, vigil::InvalidArgument(""));
  expect_error("stages:\n  a:\n    cmd: echo a\n    dep: [x]\n",
               {"dvc.yaml:4", "unknown field 'dep'", "deps"}, vigil::InvalidArgument(""));
  expect_error("stages:\n  a:\n    cmd: echo a >> runs.log\n    params:\n    - train.nope\n",
               {"train.nope", "params.yaml", "stage 'a'"}, vigil::NotFound(""));
  expect_error("stages:\n  a:\n    cmd: [echo a\n", {"dvc.yaml:", "YAML"}, vigil::InvalidArgument(""));
  expect_error("stages:\n  a:\n    cmd: echo ${missing.key}\n", {"missing.key", "stage 'a'"},
               vigil::InvalidArgument(""));
  fs::remove(tmp_ / "dvc.yaml");
  EXPECT_THROW(run(), vigil::NotFound);
}

TEST_F(Repro, RemovedStageLeavesTheLock) {
  run();
  write_text(tmp_ / "dvc.yaml", std::string(kPipeline).substr(0, std::string(kPipeline).find("  evaluate:")));
  set_params("lr: 0.01", "lr: 0.05");
  run();
  const auto lock = read_lockfile(tmp_ / "dvc.lock");
  EXPECT_EQ(lock.find("evaluate"), nullptr);
  EXPECT_EQ(lock.stages.size(), 2u);
}

TEST_F(Repro, WdirFrozenPersistAndEnvironment) {
  write_text(tmp_ / "sub/in.txt", "x\n");
  write_text(tmp_ / "sub/keep.txt", "old\n");
  write_text(tmp_ / "dvc.yaml", R"(stages:
  inner:
    wdir: sub
    cmd: echo inner >> ../runs.log && cp in.txt out.txt && echo more >> keep.txt && echo "$DVC_STAGE $PATH" > env.txt
    deps: [in.txt]
    outs:
    - out.txt
    - keep.txt:
        persist: true
  frozen:
    frozen: true
    cmd: echo frozen >> runs.log
    deps: [sub/out.txt]
)");
  run();
  EXPECT_EQ(new_runs(), (V{"inner"}));  // a frozen stage never runs its command
  EXPECT_EQ(read_lockfile(tmp_ / "dvc.lock").find("inner")->outs[0].path, "keep.txt");
  // The command ran in wdir, with DVC's variables and this executable's folder first on PATH.
  const std::string env = vigil::read_file(tmp_ / "sub/env.txt");
  EXPECT_EQ(env.rfind("inner " + self_exe_dir().string() + ":", 0), 0u) << env;
  ReproOptions force;
  force.force = true;
  run(force);
  EXPECT_EQ(vigil::read_file(tmp_ / "sub/keep.txt"), "old\nmore\nmore\n");  // persist: not removed first
  EXPECT_TRUE(printed("Verifying outputs in frozen stage: 'frozen'"));
}

TEST_F(Repro, ChangedCommandAndAlwaysChanged) {
  write_text(tmp_ / "dvc.yaml",
             "stages:\n  a:\n    cmd: echo a >> runs.log && echo 1 > a.txt\n    outs: [a.txt]\n"
             "  b:\n    cmd: echo b >> runs.log\n    always_changed: true\n");
  run();
  EXPECT_EQ(new_runs(), (V{"a", "b"}));
  EXPECT_EQ(format_status(pipeline_status(tmp_ / "dvc.yaml")), "b:\n\talways changed\n");
  write_text(tmp_ / "dvc.yaml",
             "stages:\n  a:\n    cmd: echo a >> runs.log && echo 2 > a.txt\n    outs: [a.txt]\n"
             "  b:\n    cmd: echo b >> runs.log\n    always_changed: true\n");
  EXPECT_EQ(format_status(pipeline_status(tmp_ / "dvc.yaml")),
            "a:\n\tchanged command\nb:\n\talways changed\n");
  run();
  EXPECT_EQ(new_runs(), (V{"a", "b"}));
  fs::remove(tmp_ / "a.txt");
  EXPECT_EQ(format_status(pipeline_status(tmp_ / "dvc.yaml")),
            "a:\n\tchanged outs:\n\t\tdeleted:                      a.txt\nb:\n\talways changed\n");
}

TEST_F(Repro, CtrlCStopsAfterTheRunningCommand) {
  write_text(
      tmp_ / "dvc.yaml",
      "stages:\n  slow:\n    cmd: echo slow >> runs.log; kill -INT $PPID; sleep 3; echo late >> runs.log\n"
      "    outs: [never.txt]\n  after:\n    cmd: echo after >> runs.log\n");
  vigil::install_interrupt_handlers();
  EXPECT_THROW(run(), vigil::Interrupted);
  vigil::clear_interrupt();
  EXPECT_EQ(new_runs(), (V{"slow"}));  // the command was stopped, and nothing after it ran
  EXPECT_FALSE(fs::exists(tmp_ / "dvc.lock"));
}

}  // namespace
