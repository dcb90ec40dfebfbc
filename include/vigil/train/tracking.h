#pragma once
/// Recording what `vigil train` and `vigil evaluate` do in the workspace's tracking store (store/): the run,
/// its resolved config as params, metrics per epoch, artifacts with their hashes, and how it ended.
/// Registering a finished training run's model in the model registry.

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vigil/core/workspace.h"
#include "vigil/store/store.h"

namespace vigil::train {

/// A resolved YAML config as params: nested keys joined with '.', scalars as written, sequences as flow
/// YAML ("[1, 2]").
std::map<std::string, std::string> flatten_config(const std::string& yaml_text);

/// An artifact for `file`: its SHA-256 and size, its path relative to `base` when inside it; an empty `kind`
/// is guessed from the name (checkpoint, plot, report, metrics, config, log, tensorboard, file).
store::Artifact make_artifact(const std::filesystem::path& file, const std::filesystem::path& base,
                              const std::string& kind);
/// Every file under `dir` as artifacts (kind from the extension: checkpoint, report, plot, metrics, ...).
std::vector<store::Artifact> folder_artifacts(const std::filesystem::path& dir,
                                              const std::filesystem::path& base);

/// One run being recorded. Ends as finished through end(); a run dropped without end() is recorded as
/// killed when an interrupt was requested, else as failed (an error unwound past it). Tracking problems
/// after the run started (a database busy beyond every retry) are logged as warnings: training goes on.
class TrackedRun {
 public:
  /// Starts a new run.
  TrackedRun(std::shared_ptr<store::Store> store, const store::NewRun& run);
  /// Continues the run `run_id` (a resumed training run).
  TrackedRun(std::shared_ptr<store::Store> store, const std::string& run_id);
  ~TrackedRun();
  TrackedRun(const TrackedRun&) = delete;
  TrackedRun& operator=(const TrackedRun&) = delete;

  const std::string& id() const { return id_; }
  store::Store& store() { return *store_; }
  void log_metrics(const std::map<std::string, double>& values, int64_t step);
  void log_artifacts(const std::vector<store::Artifact>& artifacts);
  void end(store::RunStatus status);
  bool ended() const { return ended_; }

 private:
  std::shared_ptr<store::Store> store_;
  std::string id_;
  bool ended_ = false;
};

/// What `vigil models register` is told.
struct RegisterOptions {
  std::string name;         ///< registered model name (required)
  std::string alias;        ///< also point this alias at the new version ("" = none)
  std::string description;  ///< free text kept with the version
  void validate() const;
};

/// Registers the model of training run `run_ref` (id, prefix, name, "last"): its best weights (else last),
/// rewritten as a weights-only model file whose description carries the run's lineage and metrics (the
/// training run's latest values and those of its newest finished evaluation, prefixed "eval/"). The run must
/// have finished (InvalidArgument otherwise, naming its status).
store::ModelVersion register_run_model(store::Store& store, const std::string& run_ref,
                                       const RegisterOptions& options);

}  // namespace vigil::train
