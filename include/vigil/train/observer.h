#pragma once
/// What a training run tells the outside while it runs, and what it did (TrainResult). The trainer's own
/// outputs (progress bars, results.csv, tracking, the log, checkpoints, TensorBoard) are observers, and
/// callers add theirs with Trainer::add_observer (retrain jobs, progress streaming) without touching the
/// trainer.
///
/// Order: each hook is called on every observer in turn, the built-in ones first in the order above, then the
/// added ones in the order they were added. So an added observer's on_epoch_end finds the epoch's results.csv
/// row and checkpoints on disk, and its on_finish finds the run recorded as ended in the tracking store.
///
/// Hooks run on the training thread between optimizer steps (keep them short) and get immutable records.
/// An exception thrown from a hook fails the run, as any training error does. Torch-free, so a progress
/// streamer or job runner can include it cheaply.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace vigil::train {

/// The run about to train (Trainer::run was called).
struct RunStart {
  std::string run_name;
  std::string run_id;  ///< the tracking store's id of the run ("" when not tracked)
  std::filesystem::path run_dir;
  std::filesystem::path resumed_from;  ///< the checkpoint a resumed run continues, empty for a new run
  std::string arch;
  std::string dataset;  ///< "name@short-id" of the dataset version trained on
  std::string split;
  size_t train_samples = 0, val_samples = 0, classes = 0;
  int64_t parameters = 0, trainable_parameters = 0;
  int threads = 0;
  std::string device;
  int epochs = 0;                    ///< epochs the run trains in all
  int epochs_completed = 0;          ///< already trained (> 0 for a resumed run)
  int64_t iterations = 0;            ///< optimizer steps already taken
  int64_t batch_in_epoch = 0;        ///< batches of the unfinished epoch already trained on (a resume)
  int64_t batches_per_epoch = 0;     ///< training batches in an epoch
  std::vector<std::string> columns;  ///< the results.csv header, in order ("epoch", "train/*", ..., "lr/pg0")
  std::string metric;                ///< the metric choosing best.ckpt ("val_accuracy", "fitness", ...)
  std::string stop_metric;           ///< the metric early stopping follows (often the same)
  double time_budget = 0;            ///< seconds (TrainOptions::time), 0 = none
  double time_spent = 0;             ///< seconds of the budget already spent (a resumed run)
};

/// An epoch whose training batches are about to be drawn.
struct EpochStart {
  int epoch = 0;   ///< 1-based
  int epochs = 0;  ///< in the whole run
  int64_t batches_per_epoch = 0;
  int64_t batches_done = 0;  ///< already trained on before this run (a resume inside the epoch), else 0
};

/// One optimizer step taken.
struct BatchReport {
  int epoch = 0;          ///< 1-based
  int64_t iteration = 0;  ///< optimizer steps taken in all, this one included
  int64_t batch = 0;      ///< batches of this epoch trained on, this one included
  int64_t batches_per_epoch = 0;
  int64_t images = 0;     ///< in this batch
  double loss = 0;        ///< this batch's total loss
  double lr = 0;          ///< the learning rate of this step
  double time_left = -1;  ///< seconds of the time budget left, -1 without a budget
  /// Each of the model's losses averaged over the epoch so far, in the model's order (0 for one not seen
  /// yet).
  std::vector<std::pair<std::string, double>> mean_losses;
};

/// Where validation is: `batch` of `batches` done (0 at the start).
struct ValidationProgress {
  int epoch = 0;  ///< 1-based
  int64_t batch = 0;
  int64_t batches = 0;
};

/// An epoch trained and validated. When on_epoch_end is called the trainer's position (epoch, iteration,
/// early-stopping state) already counts it, so a checkpoint written then resumes at the next epoch.
struct EpochReport {
  int epoch = 0;   ///< 1-based
  int epochs = 0;  ///< in the whole run
  /// The results.csv row: "epoch", "train/<loss>" (epoch means), the validation metrics, "lr/pg0".
  std::map<std::string, double> metrics;
  double seconds = 0;       ///< training time of the epoch (summed over resumes), validation excluded
  int64_t images = 0;       ///< training images of the epoch
  int64_t iteration = 0;    ///< optimizer steps taken in all
  std::string metric;       ///< the metric choosing best.ckpt
  double metric_value = 0;  ///< its value this epoch (NaN when missing)
  std::string stop_metric;  ///< the metric early stopping follows
  double stop_value = 0;    ///< its value this epoch (NaN when missing)
  bool improved = false;    ///< a new best: best.ckpt is rewritten
  double best_metric = 0;   ///< the best value so far (NaN when none)
  int best_epoch = -1;      ///< 1-based epoch of the best value, -1 when none
};

/// Why and where training stopped, before the result is final.
struct TrainEnd {
  bool interrupted = false;           ///< Ctrl-C / SIGTERM / stop_after_iterations
  bool stopped_inside_epoch = false;  ///< interrupted between two batches of an epoch (not at its end)
  bool early_stopped = false;         ///< patience ran out before the last epoch
  bool time_budget_reached = false;   ///< the time budget ended the run
  double seconds = 0;                 ///< wall-clock of the whole run (resumes summed)
  int epochs_completed = 0;
  int64_t iterations = 0;
  int64_t batch_in_epoch = 0;  ///< batches of the unfinished epoch trained on
  std::string metric;          ///< the metric choosing best.ckpt
  double best_metric = 0;      ///< NaN when none
  int best_epoch = -1;
  std::string stop_metric;     ///< the metric early stopping follows
  double best_stop_value = 0;  ///< its best value (NaN when none)
  int best_stop_epoch = -1;
  int patience = 0;  ///< early_stopping.patience
};

/// What a run did.
struct TrainResult {
  std::string run_name;
  std::string run_id;  ///< the tracking store's id of the run ("" when not tracked)
  std::filesystem::path run_dir;
  std::filesystem::path last_checkpoint, best_checkpoint;
  bool interrupted = false;    ///< stopped by Ctrl-C / SIGTERM / stop_after_iterations; last.ckpt resumes
  bool early_stopped = false;  ///< patience ran out before the last epoch
  bool time_budget_reached = false;  ///< the time budget ended the run
  double seconds = 0;                ///< wall-clock of the whole run (resumes summed)
  int epochs_completed = 0;
  int64_t iterations = 0;  ///< optimizer steps taken in total
  /// This process's training throughput: images trained on and the seconds their steps took (loader waits
  /// included, validation not), the figure to compare with another trainer's images per second.
  int64_t train_images = 0;
  double train_seconds = 0;
  int64_t batch_in_epoch = 0;  ///< when interrupted: batches of the unfinished epoch already trained on
  std::string metric;          ///< the metric that chose best.ckpt ("val_accuracy", "fitness", ...)
  double best_metric = 0;      ///< its best value (NaN when no epoch finished)
  int best_epoch = -1;         ///< 1-based epoch of the best value = of best.ckpt, -1 when none
  std::string stop_metric;     ///< the metric early stopping followed
  std::map<std::string, double> last_metrics;  ///< the last epoch's results.csv row
};

/// Receives a run's progress. Every hook does nothing by default; override the ones needed.
class TrainObserver {
 public:
  virtual ~TrainObserver() = default;

  /// run() started (its train.log is open); outputs are opened here.
  virtual void on_train_start(const RunStart& start) {}
  virtual void on_epoch_start(const EpochStart& epoch) {}
  virtual void on_batch_end(const BatchReport& batch) {}
  /// The epoch's training batches are done (the last one was reported) and validation begins.
  virtual void on_validation_start(const ValidationProgress& progress) {}
  virtual void on_validation_batch_end(const ValidationProgress& progress) {}
  virtual void on_epoch_end(const EpochReport& report) {}
  /// Training stopped: outputs are completed and flushed here. Every observer's on_train_end runs before any
  /// on_finish, so on_finish sees every file of the run complete.
  virtual void on_train_end(const TrainEnd& end) {}
  /// The run's result, as run() returns it.
  virtual void on_finish(const TrainResult& result) {}
  /// run() is leaving with an exception (a training error, or one thrown by a hook); no hook follows. Called
  /// from a catch block: must not throw.
  virtual void on_failure() noexcept {}
};

}  // namespace vigil::train
