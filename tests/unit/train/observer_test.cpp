// Trainer observers: an observer added to a tiny run sees every hook in order, with the numbers that land in
// results.csv, after the built-in outputs of the same hook are on disk; a resumed run reports from where it
// continues; an observer that throws fails the run and the others hear of it.

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <stdexcept>

#include "tests_util.h"
#include "train_fixtures.h"
#include "vigil/core/config.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/interrupt.h"
#include "vigil/core/strings.h"
#include "vigil/data/split.h"
#include "vigil/data/store.h"
#include "vigil/data/synth.h"
#include "vigil/model/checkpoint.h"
#include "vigil/store/store.h"
#include "vigil/train/observer.h"
#include "vigil/train/trainer.h"

namespace vigil::train {
namespace {

namespace fs = std::filesystem;
using testing::quiet;
using vigil::testing::TempDir;

/// 48 synthetic 64x64 shapes of 3 classes, ingested as "shapes" and split 36 train / 12 val.
void make_shapes(const Workspace& ws, const fs::path& tmp) {
  testing::make_dataset(ws, tmp, "shapes", testing::shapes(48));
}

TrainOptions tiny_options(const std::string& name) {
  TrainOptions o;
  o.name = name;
  o.epochs = 3;
  o.seed = 7;
  o.threads = o.data.threads = 1;
  o.model.arch = "mask_small_cnn";
  o.data.dataset = "shapes";
  o.data.batch_size = 8;  // 36 train samples: 4 batches (the rest dropped); 12 val: 2
  o.optimizer.name = "adam";
  o.optimizer.lr = 1e-3;
  return o;
}

/// results.csv as trimmed cells, header first.
std::vector<std::vector<std::string>> csv_cells(const fs::path& file) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& line : split(read_file(file), '\n')) {
    if (line.empty()) continue;
    std::vector<std::string> cells;
    for (const auto& c : split(line, ',')) cells.emplace_back(trim(c));
    rows.push_back(std::move(cells));
  }
  return rows;
}

/// A metric as results.csv writes it (%.5g).
std::string cell(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.5g", v);
  return buf;
}

/// Records every hook as a line, keeps the records, and checks at each epoch's end that the built-in
/// outputs of that epoch are already on disk.
class Recorder : public TrainObserver {
 public:
  void on_train_start(const RunStart& s) override {
    start = s;
    log("start " + std::to_string(s.epochs_completed));
  }
  void on_epoch_start(const EpochStart& e) override {
    log(fmt::format("epoch_start {} {}", e.epoch, e.batches_done));
  }
  void on_batch_end(const BatchReport& b) override {
    log(fmt::format("batch {} {} {}", b.epoch, b.batch, b.iteration));
    batches.push_back(b);
  }
  void on_validation_start(const ValidationProgress& p) override {
    log(fmt::format("val_start {} {}", p.epoch, p.batches));
  }
  void on_validation_batch_end(const ValidationProgress& p) override { ++val_batches; }
  void on_epoch_end(const EpochReport& r) override {
    log(fmt::format("epoch_end {}", r.epoch));
    epochs.push_back(r);
    // The built-in observers ran first: this epoch's row and last.ckpt are written.
    EXPECT_EQ(csv_cells(start.run_dir / "results.csv").size(), static_cast<size_t>(r.epoch + 1));
    EXPECT_EQ(model::read_checkpoint_meta(start.run_dir / "weights" / "last.ckpt").epoch, r.epoch);
  }
  void on_train_end(const TrainEnd& e) override {
    log("train_end");
    end = e;
  }
  void on_finish(const TrainResult& r) override {
    log("finish");
    result = r;
  }
  void on_failure() noexcept override { log("failure"); }

  void log(const std::string& line) { lines.push_back(line); }

  std::vector<std::string> lines;
  RunStart start;
  std::vector<BatchReport> batches;
  std::vector<EpochReport> epochs;
  int val_batches = 0;
  TrainEnd end;
  TrainResult result;
};

/// Every report's metrics equal its results.csv row, cell for cell.
void expect_rows_match(const fs::path& csv, const std::vector<EpochReport>& reports, size_t first_row = 1) {
  const auto rows = csv_cells(csv);
  ASSERT_EQ(rows.size(), first_row + reports.size());
  const auto& header = rows[0];
  for (size_t i = 0; i < reports.size(); ++i) {
    const auto& row = rows[first_row + i];
    ASSERT_EQ(row.size(), header.size());
    EXPECT_EQ(reports[i].metrics.size(), header.size());
    for (size_t c = 0; c < header.size(); ++c) {
      ASSERT_TRUE(reports[i].metrics.count(header[c])) << header[c];
      EXPECT_EQ(row[c], cell(reports[i].metrics.at(header[c])))
          << "epoch " << reports[i].epoch << " " << header[c];
    }
  }
}

class ObserverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_interrupt();
    make_shapes(ws, tmp.path());
  }
  void TearDown() override { clear_interrupt(); }
  TempDir tmp;
  Workspace ws{tmp / "ws"};
};

TEST_F(ObserverTest, SeesEveryEpochInOrderWithTheResultsCsvNumbers) {
  Trainer trainer(ws, tiny_options("seen"), quiet());
  auto rec = std::make_shared<Recorder>();
  trainer.add_observer(rec);
  const auto r = trainer.run();
  ASSERT_FALSE(r.interrupted);

  std::vector<std::string> expected = {"start 0"};
  int64_t iteration = 0;
  for (int e = 1; e <= 3; ++e) {
    expected.push_back(fmt::format("epoch_start {} 0", e));
    for (int b = 1; b <= 4; ++b) expected.push_back(fmt::format("batch {} {} {}", e, b, ++iteration));
    expected.push_back(fmt::format("val_start {} 2", e));
    expected.push_back(fmt::format("epoch_end {}", e));
  }
  expected.push_back("train_end");
  expected.push_back("finish");
  EXPECT_EQ(rec->lines, expected);
  EXPECT_EQ(rec->val_batches, 6);

  EXPECT_EQ(rec->start.run_id, r.run_id);
  EXPECT_EQ(rec->start.batches_per_epoch, 4);
  EXPECT_EQ(rec->start.columns,
            (std::vector<std::string>{"epoch", "train/loss", "metrics/accuracy_top1", "val/loss", "lr/pg0"}));
  EXPECT_EQ(rec->batches.back().images, 8);
  EXPECT_EQ(rec->batches.back().mean_losses.size(), 1u);
  EXPECT_DOUBLE_EQ(rec->batches.back().lr, rec->epochs.back().metrics.at("lr/pg0"));

  expect_rows_match(r.run_dir / "results.csv", rec->epochs);
  EXPECT_EQ(rec->epochs.back().metrics, r.last_metrics);
  for (const auto& e : rec->epochs) EXPECT_EQ(e.metric, "val_accuracy");

  // on_finish gets what run() returns, with the run already recorded as finished.
  EXPECT_EQ(rec->result.run_id, r.run_id);
  EXPECT_EQ(rec->result.epochs_completed, 3);
  EXPECT_EQ(rec->result.best_checkpoint, r.best_checkpoint);
  EXPECT_EQ(rec->result.best_epoch, rec->end.best_epoch);
  EXPECT_EQ(store::Store(ws).get_run(r.run_id).info.status, store::RunStatus::kFinished);
}

TEST_F(ObserverTest, ResumedRunReportsFromWhereItContinues) {
  Trainer first(ws, tiny_options("resumed"), quiet(/*stop_after=*/6));  // epoch 2, batch 2
  auto before = std::make_shared<Recorder>();
  first.add_observer(before);
  const auto r1 = first.run();
  ASSERT_TRUE(r1.interrupted);
  EXPECT_TRUE(before->end.interrupted);
  EXPECT_TRUE(before->end.stopped_inside_epoch);
  EXPECT_EQ(before->end.batch_in_epoch, 2);
  ASSERT_EQ(before->epochs.size(), 1u);
  EXPECT_EQ(before->lines.back(), "finish");
  EXPECT_TRUE(before->result.interrupted);

  auto second = Trainer::resume(ws, r1.run_dir, {}, quiet());
  auto after = std::make_shared<Recorder>();
  second->add_observer(after);
  const auto r2 = second->run();
  EXPECT_EQ(after->start.epochs_completed, 1);
  EXPECT_EQ(after->start.batch_in_epoch, 2);
  EXPECT_EQ(after->start.resumed_from, r1.last_checkpoint);
  ASSERT_GE(after->lines.size(), 3u);
  EXPECT_EQ(after->lines[1], "epoch_start 2 2");
  EXPECT_EQ(after->lines[2], "batch 2 3 7");
  ASSERT_EQ(after->epochs.size(), 2u);
  EXPECT_EQ(after->epochs[0].epoch, 2);

  // The three epochs seen across both runs are results.csv's three rows.
  auto all = before->epochs;
  all.insert(all.end(), after->epochs.begin(), after->epochs.end());
  expect_rows_match(r2.run_dir / "results.csv", all);
}

/// Fails the run at the end of the first epoch.
class Thrower : public TrainObserver {
 public:
  void on_epoch_end(const EpochReport& r) override { throw std::runtime_error("observer failed"); }
};

TEST_F(ObserverTest, AThrowingObserverFailsTheRun) {
  Trainer trainer(ws, tiny_options("failed"), quiet());
  EXPECT_THROW(trainer.add_observer(nullptr), InvalidArgument);
  auto rec = std::make_shared<Recorder>();
  trainer.add_observer(std::make_shared<Thrower>());
  trainer.add_observer(rec);
  EXPECT_THROW(trainer.run(), std::runtime_error);
  ASSERT_FALSE(rec->lines.empty());
  EXPECT_EQ(rec->lines.back(), "failure");
  EXPECT_TRUE(rec->epochs.empty());  // the thrower came first
  EXPECT_EQ(store::Store(ws).get_run("failed").info.status, store::RunStatus::kFailed);
}

}  // namespace
}  // namespace vigil::train
