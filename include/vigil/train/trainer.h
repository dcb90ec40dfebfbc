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

/// Data-parallel training over LibTorch's c10d with the Gloo backend, started torchrun-style: every process
/// runs the same command with its own rank. Rank 0 hosts the rendezvous (a c10d TCP store) at
/// master_addr:master_port; parameters and buffers start as rank 0's; each step averages the gradients of
/// all ranks, each of which trains on its shard of the epoch with data.batch_size / world_size samples, so
/// data.batch_size stays the global batch. Only rank 0 validates and writes (run folder, checkpoints,
/// tracking); the others follow its decisions.
struct DistributedOptions {
  int rank = 0;
  int world_size = 1;  ///< 1: not distributed
  int local_rank = 0;  ///< rank on this machine (informational on CPU)
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  /// A rank that does not answer within this long fails the job with a message naming it (the
  /// rendezvous and every collective); a dead peer's closed connection fails it at once.
  double timeout_seconds = 300;

  bool enabled() const { return world_size > 1; }
  bool is_main() const { return rank == 0; }
  /// Throws InvalidArgument naming the variable for a rank outside [0, world_size), a bad port or timeout.
  void validate() const;
  /// torchrun's variables: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT (absent: not
  /// distributed). A malformed value is an InvalidArgument naming the variable.
  static DistributedOptions from_env();
};

/// How a run is driven, beyond its options (not part of config.yaml).
struct TrainControl {
  /// Tests: behave as if interrupted once this many optimizer steps have been taken in total (< 0: never).
  int64_t stop_after_iterations = -1;
  bool progress = true;      ///< progress bar / periodic lines on stderr
  std::string code_version;  ///< recorded in the model's lineage (the CLI passes its version)
  /// Record the run in the workspace's tracking store (params, per-epoch metrics, artifacts, status).
  bool track = true;
  DistributedOptions distributed;  ///< world_size 1: a single process
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
