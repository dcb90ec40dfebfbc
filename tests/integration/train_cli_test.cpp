// Drives `vigil train` for real: synth -> ingest -> split -> train, the run folder's files, a real SIGINT in
// the middle of an epoch followed by --resume (same final weights as an uninterrupted run), and bad input.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <csignal>
#include <regex>
#include <set>
#include <thread>

#include "tests_util.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"
#include "vigil/model/checkpoint.h"
#include "vigil/model/model_file.h"

namespace {

using json = nlohmann::json;
using vigil::testing::run_vigil;
using vigil::testing::TempDir;
namespace fs = std::filesystem;

constexpr const char* kConfig = R"(# tiny classifier run for tests
epochs: 3
seed: 3
threads: 1
model:
  arch: mask_small_cnn
data:
  dataset: shapes
  batch_size: 8
  threads: 1
optimizer:
  name: adam
  lr: 0.001
schedule:
  warmup_iters: 5
)";

std::vector<std::string> csv_header(const fs::path& file) {
  const std::string text = vigil::read_file(file);
  std::vector<std::string> out;
  for (const auto& cell : vigil::split(text.substr(0, text.find('\n')), ','))
    out.emplace_back(vigil::trim(cell));
  return out;
}

size_t csv_rows(const fs::path& file) {
  size_t n = 0;
  for (const auto& line : vigil::split(vigil::read_file(file), '\n')) n += !line.empty();
  return n - 1;
}

/// Every parameter and buffer of two model files, bit for bit.
void expect_same_weights(const fs::path& a, const fs::path& b) {
  auto ma = vigil::model::load_model(a), mb = vigil::model::load_model(b);
  auto pa = ma.module->named_parameters(), pb = mb.module->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& p : pa) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
  auto ba = ma.module->named_buffers(), bb = mb.module->named_buffers();
  for (const auto& p : ba) EXPECT_TRUE(torch::equal(p.value(), bb[p.key()])) << p.key();
}

class TrainCli : public ::testing::Test {
 protected:
  TempDir tmp;
  fs::path ws = tmp / "ws";
  fs::path config = tmp / "train.yaml";

  vigil::testing::CommandResult vigil(const std::string& args) { return run_vigil(args, ws); }

  void SetUp() override {
    auto r = vigil("data synth '" + (tmp / "src").string() +
                   "' --task classification --images 100 --width 64 --height 64 --classes 3 --seed 2");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = vigil("data ingest '" + (tmp / "src").string() + "' --name shapes");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = vigil("data split shapes --val 0.25 --seed 1");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    vigil::testing::write_text(config, kConfig);
  }

  /// Starts vigil in the background with stderr to `err`; returns its pid.
  pid_t spawn(const std::string& args, const fs::path& err) {
    const std::string cmd = fmt::format("exec '{}' --workspace '{}' {} > /dev/null 2> '{}' < /dev/null",
                                        VIGIL_BINARY, ws.string(), args, err.string());
    const pid_t pid = fork();
    if (pid == 0) {
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    return pid;
  }
};

TEST_F(TrainCli, TrainsIntoATrackedRunFolder) {
  auto r = vigil("train --config '" + config.string() + "' --name first");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path run = ws / "runs" / "first";
  EXPECT_NE(r.out.find(run.string()), std::string::npos) << r.out;
  EXPECT_TRUE(
      std::regex_search(r.out, std::regex(R"(best weights \S+/best\.ckpt \(epoch [0-9]+, val_accuracy )")))
      << "the summary names the best epoch and the metric that chose it:\n"
      << r.out;

  EXPECT_EQ(csv_header(run / "results.csv"),
            (std::vector<std::string>{"epoch", "train/loss", "metrics/accuracy_top1", "val/loss", "lr/pg0"}));
  EXPECT_EQ(csv_rows(run / "results.csv"), 3u);
  for (const char* png :
       {"curves_loss.png", "curves_metrics.png"})  // drawn from results.csv after each epoch
    EXPECT_GT(fs::file_size(run / png), 5000u) << png;
  const std::string resolved = vigil::read_file(run / "config.yaml");
  EXPECT_NE(resolved.find("arch: mask_small_cnn"), std::string::npos) << resolved;
  EXPECT_NE(resolved.find("name: first"), std::string::npos) << resolved;
  EXPECT_TRUE(fs::exists(run / "weights" / "last.ckpt"));
  EXPECT_TRUE(fs::exists(run / "weights" / "best.ckpt"));
  EXPECT_NE(vigil::read_file(run / "train.log").find("epoch 3/3"), std::string::npos);

  // The TensorBoard file, read by an independent decoder (CRCs checked).
  fs::path events;
  for (const auto& e : fs::directory_iterator(run)) {
    if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) events = e.path();
  }
  ASSERT_FALSE(events.empty());
  auto [code, out] = vigil::testing::run_shell(
      fmt::format("python3 '{}/tests/unit/train/read_events.py' '{}'", VIGIL_SOURCE_DIR, events.string()));
  ASSERT_EQ(code, 0) << out;
  std::set<std::string> tags;
  const json decoded = json::parse(out);
  for (const auto& s : decoded.at("scalars")) tags.insert(s.at("tag").get<std::string>());
  for (const char* tag : {"train/loss", "train/batch_loss", "val/loss", "metrics/accuracy_top1", "lr/pg0",
                          "time/epoch_seconds", "time/images_per_second"}) {
    EXPECT_TRUE(tags.count(tag)) << tag;
  }

  // A second run without --name gets the next free <arch>-<n>.
  r = vigil("train --config '" + config.string() + "' --epochs 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(ws / "runs" / "mask_small_cnn-1" / "weights" / "last.ckpt"));
}

TEST_F(TrainCli, SigintMidEpochThenResumeGivesTheSameWeights) {
  const std::string args = "train --config '" + config.string() + "' --epochs 4";
  auto straight = vigil(args + " --name straight");
  ASSERT_EQ(straight.exit_code, 0) << straight.err;

  // 75 training samples / 8 = 9 batches per epoch; progress lines come every 10% (plain mode: not a TTY).
  const fs::path err = tmp / "cut.err";
  const pid_t pid = spawn(args + " --name cut", err);
  ASSERT_GT(pid, 0);
  const std::regex mid_epoch(R"(epoch 2/4: [1-7]/9 )");
  bool signalled = false;
  for (int i = 0; i < 6000 && !signalled; ++i) {  // a bound, not a timing assertion: 10 minutes
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::error_code ec;
    if (fs::exists(err, ec) && std::regex_search(vigil::read_file(err), mid_epoch)) {
      ASSERT_EQ(kill(pid, SIGINT), 0);
      signalled = true;
    }
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  const std::string err_text = vigil::read_file(err);
  ASSERT_TRUE(signalled) << err_text;
  ASSERT_TRUE(WIFEXITED(status)) << err_text;
  EXPECT_EQ(WEXITSTATUS(status), 130) << err_text;
  EXPECT_NE(err_text.find("resume with"), std::string::npos) << err_text;

  const fs::path cut = ws / "runs" / "cut";
  const auto meta = vigil::model::read_checkpoint_meta(cut / "weights" / "last.ckpt");
  const auto extra = json::parse(meta.extra_json);
  EXPECT_EQ(meta.epoch, 1);
  EXPECT_GT(extra.at("batch_in_epoch").get<int>(), 0) << "the interrupt was meant to land inside epoch 2";
  EXPECT_EQ(csv_rows(cut / "results.csv"), 1u);

  auto resumed = vigil("train --resume '" + cut.string() + "'");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(csv_rows(cut / "results.csv"), 4u);
  expect_same_weights(ws / "runs" / "straight" / "weights" / "last.ckpt", cut / "weights" / "last.ckpt");
  EXPECT_EQ(vigil::read_file(ws / "runs" / "straight" / "results.csv").size(),
            vigil::read_file(cut / "results.csv").size());
}

TEST_F(TrainCli, BadInputGivesClearErrors) {
  const std::string base = "train --config '" + config.string() + "' --epochs 1";
  auto r = vigil(base + " --set model.arch=resnet51");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("mobilenet_v3_small"), std::string::npos) << r.err;  // lists the valid names

  r = vigil(base + " --set optimizer.lrr=0.1");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("did you mean 'optimizer.lr'"), std::string::npos) << r.err;
  vigil::testing::write_text(tmp / "typo.yaml", std::string(kConfig) + "epoch: 3\n");
  r = vigil("train --config '" + (tmp / "typo.yaml").string() + "'");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("did you mean 'epochs'"), std::string::npos) << r.err;

  r = vigil(base + " --set data.dataset=nosuch");
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("nosuch"), std::string::npos) << r.err;
  r = vigil(base + " --set data.split=nosuch");
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("vigil data split"), std::string::npos) << r.err;
  r = vigil(base + " --set data.val=test");  // the split has no test list
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("no samples in its 'test' list"), std::string::npos) << r.err;
  r = vigil(base + " --set data.train=test");
  EXPECT_EQ(r.exit_code, 3) << r.err;

  r = vigil(base + " --name ok");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path ok = ws / "runs" / "ok";
  r = vigil(base + " --name ok");  // the name is taken
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--resume"), std::string::npos) << r.err;

  r = vigil(
      base +
      " --name other --set model.arch=mobilenet_v3_small --set data.image_size=64 --set model.weights='" +
      (ok / "weights" / "best.ckpt").string() + "'");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("mask_small_cnn"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(ws / "runs" / "other"));
  r = vigil(base + " --name other --set model.weights=/nonexistent/w.pth");
  EXPECT_EQ(r.exit_code, 4) << r.err;

  r = vigil("train --resume '" + (ws / "runs" / "nosuch").string() + "'");
  EXPECT_EQ(r.exit_code, 4) << r.err;
  r = vigil("train --resume '" + ok.string() + "' --config '" + config.string() + "'");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = vigil("train --resume '" + ok.string() + "' --set optimizer.lr=0.5");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  const fs::path last = ok / "weights" / "last.ckpt";
  std::string bytes = vigil::read_file(last);
  bytes[bytes.size() / 3] ^= 0x10;
  vigil::write_file_atomic(last, bytes);
  r = vigil("train --resume '" + ok.string() + "'");
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("last.ckpt"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("corrupt"), std::string::npos) << r.err;
}

}  // namespace
