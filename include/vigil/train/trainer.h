#pragma once
/// Training runs: a classifier (cross-entropy) or a detector (the sum of its losses) trained on a stored
/// dataset split, tracked in a run folder and resumable bit-for-bit.
///
/// Run folder <workspace>/runs/<name>/:
///   config.yaml        the fully resolved TrainOptions
///   results.csv        one row per epoch (Ultralytics layout: epoch, train/*, val/*, metrics/*, lr/pg0)
///   events.out.tfevents.*  TensorBoard scalars: losses, learning rate, validation metrics, epoch time
///   train.log          this run's log lines
///   weights/last.ckpt  everything needed to continue (model, optimizer, RNG, epoch and batch position,
///                      early-stopping state, resolved config, model::ModelInfo with lineage); written every
///                      epoch and when interrupted
///   weights/best.ckpt  the weights of the best epoch by the early-stopping metric (a model file)
///
/// Reproducibility: weights, data order, augmentation and dropout all derive from TrainOptions::seed, so the
/// same options and thread count give bit-identical weights; a run interrupted at any step and resumed ends
/// with the same weights as one that was never interrupted.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vigil/core/workspace.h"
#include "vigil/train/observer.h"
#include "vigil/train/train_options.h"

namespace vigil::train {

/// How a run is driven, beyond its options (not part of config.yaml).
struct TrainControl {
  /// Tests: behave as if interrupted once this many optimizer steps have been taken in total (< 0: never).
  int64_t stop_after_iterations = -1;
  bool progress = true;      ///< progress bar / periodic lines on stderr
  std::string code_version;  ///< recorded in the model's lineage (the CLI passes its version)
  /// Record the run in the workspace's tracking store (params, per-epoch metrics, artifacts, status).
  bool track = true;
};

/// One training run. Construction checks everything (options, dataset, split, model, starting weights) and
/// creates the run folder; run() trains.
class Trainer {
 public:
  /// A new run in `ws`. Throws InvalidArgument for bad options or weights of another architecture,
  /// NotFound for a missing dataset, split or weights file, DataError for an empty dataset or split.
  Trainer(Workspace ws, TrainOptions options, TrainControl control = {});
  /// Continues the run that `run_or_checkpoint` (a run folder or a checkpoint in one) belongs to, with its
  /// saved options. `overrides` ("key=value") may change only epochs, device, threads, data.threads and
  /// data.prefetch_batches. A corrupt checkpoint is a DataError naming the file.
  static std::unique_ptr<Trainer> resume(Workspace ws, const std::filesystem::path& run_or_checkpoint,
                                         const std::vector<std::string>& overrides = {},
                                         TrainControl control = {});
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  /// Trains until the last epoch, early stopping, or an interrupt (core/interrupt.h or
  /// stop_after_iterations), after which weights/last.ckpt holds the exact position to resume from.
  TrainResult run();

  /// Adds an observer of run() (vigil/train/observer.h), called after the built-in outputs and the observers
  /// added before it. Call before run(). A null observer -> InvalidArgument.
  void add_observer(std::shared_ptr<TrainObserver> observer);

  const TrainOptions& options() const;
  const std::filesystem::path& run_dir() const;

 private:
  struct Impl;
  explicit Trainer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// The checkpoint `--resume` means: `path` itself when it is a file, else <path>/weights/last.ckpt.
/// Throws NotFound naming what was looked for.
std::filesystem::path resume_checkpoint_path(const std::filesystem::path& path);

}  // namespace vigil::train
