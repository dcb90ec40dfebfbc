#pragma once
/// A DVC project as vigil sees it: dvc.yaml, its graph, dvc.lock, the ignore rules, and a hash cache. It
/// answers "what changed in this stage" (dvc/stage/__init__.py Stage.status / Stage.changed, Output.
/// workspace_status, ParamsDependency.workspace_status) and "what would DVC record for it now"
/// (dvc/stage/serialize.py to_single_stage_lockfile).

#include <filesystem>
#include <string>
#include <vector>

#include "vigil/pipeline/dvc_hash.h"
#include "vigil/pipeline/dvcfile.h"
#include "vigil/pipeline/dvcignore.h"
#include "vigil/pipeline/graph.h"
#include "vigil/pipeline/lockfile.h"

namespace vigil::pipeline {

/// A changed dep or out: "modified", "deleted" or "new" (DVC's words).
struct EntryStatus {
  std::string path;
  std::string status;
};

/// A changed param. `key` is empty when the whole file is "new" (never recorded) or "deleted".
struct ParamStatus {
  std::string file;
  std::string key;
  std::string status;
};

/// How a stage differs from its dvc.lock entry.
struct StageStatus {
  std::string stage;
  bool in_lock = false;
  bool frozen = false;
  bool cmd_changed = false;
  bool always_changed = false;  ///< `always_changed: true`, or a command with neither deps nor outs
  std::vector<EntryStatus> deps;
  std::vector<ParamStatus> params;
  std::vector<EntryStatus> outs;

  /// True when `vigil repro` would run the stage (frozen stages ignore their deps).
  bool changed() const;
};

class Project {
 public:
  /// Loads dvc.yaml (and dvc.lock, .dvcignore); builds and checks the graph.
  explicit Project(const std::filesystem::path& dvc_yaml);
  Project(const Project&) = delete;
  Project& operator=(const Project&) = delete;

  const Pipeline& pipeline() const { return pipeline_; }
  const StageGraph& graph() const { return graph_; }
  const DvcIgnore& ignore() const { return ignore_; }
  Lockfile& lock() { return lock_; }
  const Lockfile& lock() const { return lock_; }

  /// The path DVC records for a dep/out/params file of `stage`: relative to its wdir and normalised
  /// (os.path.relpath), or as written when it lies outside the project.
  std::string def_path(const StageDef& stage, const std::string& written) const;

  /// The stage compared with its lock entry.
  StageStatus status(const StageDef& stage);
  /// What DVC would record for the stage now. Throws NotFound naming the stage and path when a dep, out,
  /// params file or params key is missing.
  LockStage snapshot(const StageDef& stage);
  /// Values of a params dependency as recorded in dvc.lock (keys sorted; the whole file sorted at the top).
  /// Throws NotFound naming the file and keys that are missing.
  Json params_values(const StageDef& stage, const ParamsDef& params) const;

  /// Drops memoised hashes (after a command ran: files it rewrote may keep their size and coarse mtime).
  void forget_hashes() { hashes_.clear(); }

  /// Checks, before anything runs, that every dep and params file of `stages` exists or is produced by a
  /// stage, and that params keys exist in files already on disk. Throws NotFound naming stage and path.
  void check_inputs(const std::vector<std::string>& stages) const;

 private:
  std::vector<EntryStatus> entries_status(const StageDef& stage, const std::vector<std::string>& paths,
                                          const LockStage* lock, bool outs);
  std::vector<ParamStatus> params_status(const StageDef& stage, const LockStage* lock) const;
  LockItem record_item(const StageDef& stage, const std::string& written, const LockItem* old, bool is_out);

  Pipeline pipeline_;
  StageGraph graph_;
  DvcIgnore ignore_;
  Lockfile lock_;
  HashCache hashes_;
};

/// `vigil status` text: DVC's layout (dvc/commands/status.py CmdDataStatus._show), or
/// "Data and pipelines are up to date." when nothing changed.
std::string format_status(const std::vector<StageStatus>& statuses);

}  // namespace vigil::pipeline
