#pragma once
/// Runs written in MLflow's file-store layout (`mlruns/`), so a team can point `mlflow ui
/// --backend-store-uri DIR` (or an MLflow tracking server's import) at what vigil recorded:
///   DIR/<experiment_id>/meta.yaml                     name, artifact_location, times, lifecycle_stage
///   DIR/<experiment_id>/<run_id>/meta.yaml            run_id, run_name, status, start/end time, artifact_uri
///   DIR/<experiment_id>/<run_id>/params/<key>         the value
///   DIR/<experiment_id>/<run_id>/metrics/<key>        "timestamp value step" lines
///   DIR/<experiment_id>/<run_id>/tags/<key>           mlflow.runName, mlflow.source.git.commit, ...
///   DIR/<experiment_id>/<run_id>/artifacts/<path>     the run's recorded files (hard links when possible)
/// Experiment "Default" is id 0, the others 1, 2, ... in name order.

#include <filesystem>

#include "vigil/store/store.h"

namespace vigil::store {

struct MlflowExportOptions {
  RunFilter filter;       ///< which runs (paging ignored: every match)
  bool artifacts = true;  ///< copy (hard-link) the artifact files that still exist
};

struct MlflowExportReport {
  int experiments = 0, runs = 0, metric_points = 0, artifacts = 0;
  std::vector<std::string> skipped;  ///< artifacts not copied, with the reason
};

/// Writes the runs into `dir` (created; existing runs of the same id are replaced). IoError names a path
/// that cannot be written.
MlflowExportReport export_mlflow(Store& store, const std::filesystem::path& dir,
                                 const MlflowExportOptions& options);

}  // namespace vigil::store
