#pragma once
// Internal to the trainer: its own outputs, one observer each (vigil/train/observer.h). The trainer adds them
// in this order: progress, results.csv, its curves, tracking, log, checkpoints, TensorBoard. The order keeps
// the writes of an epoch where they always were: the results.csv row and the tracking metrics before the
// checkpoints (a kill between them redoes the epoch, which rewrites both), best.ckpt before last.ckpt, and
// TensorBoard's flush after the checkpoints.

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vigil/core/progress.h"
#include "vigil/train/observer.h"
#include "vigil/train/results_csv.h"
#include "vigil/train/tensorboard.h"
#include "vigil/train/tracking.h"

namespace vigil::train::detail {

/// Progress bars on stderr: one per epoch's training batches (losses, lr and images per second after it),
/// one per validation pass.
class ProgressObserver : public TrainObserver {
 public:
  void on_epoch_start(const EpochStart& epoch) override;
  void on_batch_end(const BatchReport& batch) override;
  void on_validation_start(const ValidationProgress& progress) override;
  void on_validation_batch_end(const ValidationProgress& progress) override;
  void on_epoch_end(const EpochReport& report) override;
  void on_train_end(const TrainEnd& end) override;
  void on_failure() noexcept override;

 private:
  std::optional<Progress> bar_;
  std::chrono::steady_clock::time_point start_;
  int64_t images_ = 0;  ///< trained on since this run reached the epoch
};

/// results.csv: one row per epoch; a resumed run's rows beyond its checkpoint are dropped first.
class ResultsCsvObserver : public TrainObserver {
 public:
  void on_train_start(const RunStart& start) override;
  void on_epoch_end(const EpochReport& report) override;

 private:
  std::unique_ptr<ResultsCsv> csv_;
};

/// The run in the workspace's tracking store: metrics per epoch, then the run folder's files as artifacts
/// and how the run ended.
class TrackingObserver : public TrainObserver {
 public:
  TrackingObserver(std::unique_ptr<TrackedRun> run, std::filesystem::path run_dir);
  void on_epoch_end(const EpochReport& report) override;
  void on_finish(const TrainResult& result) override;
  void on_failure() noexcept override;

 private:
  std::unique_ptr<TrackedRun> run_;
  std::filesystem::path run_dir_;
};

/// The training curves as PNG beside results.csv, redrawn after every epoch from the whole file (a resumed
/// run's earlier epochs included), as the seeds' scripts plot them: curves_loss.png (every loss column,
/// training and validation) and curves_metrics.png (accuracy, precision, recall, mAP...). A failed drawing is
/// logged, never fatal: the curves are a view of results.csv, which is the record.
class CurvesObserver : public TrainObserver {
 public:
  void on_train_start(const RunStart& start) override;
  void on_epoch_end(const EpochReport& report) override;

 private:
  std::filesystem::path run_dir_;
};

/// The run's log lines: what is trained on what, each epoch's summary, early stopping.
class LogObserver : public TrainObserver {
 public:
  void on_train_start(const RunStart& start) override;
  void on_epoch_end(const EpochReport& report) override;
  void on_train_end(const TrainEnd& end) override;

 private:
  std::vector<std::string> columns_;
};

/// weights/best.ckpt when the metric improves and weights/last.ckpt at every epoch's end and on an interrupt
/// inside an epoch. Whether best.ckpt was written is kept in every checkpoint, so a resumed run continues it.
class CheckpointWriter : public TrainObserver {
 public:
  /// Writes the trainer's state to `file` (with the optimizer's or not), recording `best_written`.
  using SaveFn =
      std::function<void(const std::filesystem::path& file, bool with_optimizer, bool best_written)>;
  static constexpr const char* kLastName = "last.ckpt";  ///< in <run>/weights/
  static constexpr const char* kBestName = "best.ckpt";

  CheckpointWriter(const std::filesystem::path& run_dir, SaveFn save, bool best_written);
  void on_epoch_end(const EpochReport& report) override;
  void on_train_end(const TrainEnd& end) override;

  const std::filesystem::path& last_checkpoint() const { return last_; }
  /// weights/best.ckpt once written, else empty.
  std::filesystem::path best_checkpoint() const { return best_written_ ? best_ : std::filesystem::path(); }

 private:
  std::filesystem::path last_, best_;
  SaveFn save_;
  bool best_written_;
};

/// TensorBoard scalars: each batch's loss, each epoch's results.csv values and timing.
class TensorBoardObserver : public TrainObserver {
 public:
  void on_train_start(const RunStart& start) override;
  void on_batch_end(const BatchReport& batch) override;
  void on_epoch_end(const EpochReport& report) override;
  void on_train_end(const TrainEnd& end) override;

 private:
  std::unique_ptr<EventWriter> events_;
};

}  // namespace vigil::train::detail
