#pragma once
/// `vigil repro` and `vigil status`: run the stages of a dvc.yaml in dependency order, skipping those whose
/// command, deps, params and outs match dvc.lock, and record each stage in dvc.lock as soon as it succeeds
/// (dvc/repo/reproduce.py, dvc/stage/run.py). Messages use DVC's wording and go to a caller-provided sink.

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "vigil/pipeline/project.h"

namespace vigil::pipeline {

/// Receives one line of progress text (without the newline).
using MessageSink = std::function<void(const std::string& line)>;

struct ReproOptions {
  std::filesystem::path file = "dvc.yaml";
  std::vector<std::string> targets;  ///< stage names; empty = every stage
  bool force = false;                ///< run even unchanged stages
  bool dry = false;                  ///< print what would run; run nothing, write nothing
  bool single_item = false;          ///< only the targets, not their upstream

  /// Throws InvalidArgument on a meaningless combination.
  void validate() const;
};

struct ReproResult {
  std::vector<std::string> ran;      ///< stages whose command ran (or would run, with dry)
  std::vector<std::string> skipped;  ///< unchanged stages
  bool lock_written = false;
};

/// Runs the pipeline. Before anything runs, a missing dep or params file/key throws NotFound naming the stage
/// and path. A failing command throws DataError naming the stage, the command and its exit status; dvc.lock
/// then holds every stage that succeeded before it, and the failed stage's previous entry. Ctrl-C stops after
/// the running command and throws Interrupted.
ReproResult reproduce(const ReproOptions& options, const MessageSink& sink);

/// Every stage of the pipeline compared with dvc.lock, in dvc.yaml order.
std::vector<StageStatus> pipeline_status(const std::filesystem::path& file);

}  // namespace vigil::pipeline
