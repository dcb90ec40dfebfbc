#pragma once
/// What the tracking store and the model registry hold: runs (params, metrics with history, tags,
/// artifacts), registered models, their versions and aliases. Plain values, no database types.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace vigil::store {

/// A run's life: running until it ends as finished, failed (an error) or killed (interrupted, or its process
/// vanished without ending it, e.g. SIGKILL: found by Store::reap_dead_runs()). MLflow's RunStatus names.
enum class RunStatus { kRunning, kFinished, kFailed, kKilled };
/// "running", "finished", "failed", "killed".
const char* to_string(RunStatus status);
/// The reverse of to_string (case-insensitive); anything else -> InvalidArgument listing the valid names.
RunStatus parse_run_status(const std::string& name);

/// Where a run's code came from.
struct CodeVersion {
  std::string commit;  ///< git commit of the checkout the command ran in ("" outside git)
  bool dirty = false;  ///< uncommitted changes to tracked files
  std::string vigil;   ///< the vigil version that ran it
};

struct RunInfo {
  std::string id;          ///< 32 lower-case hex digits (MLflow's run id shape)
  std::string name;        ///< human name; not unique (the newest wins when resolving by name)
  std::string experiment;  ///< experiment name ("Default" unless given)
  std::string kind;        ///< "train", "evaluate", ... (what made it)
  RunStatus status = RunStatus::kRunning;
  int64_t start_ms = 0, end_ms = 0;  ///< Unix milliseconds; end 0 while running
  std::string dataset_id;            ///< dataset version the run read
  std::string parent_id;             ///< e.g. the training run an evaluation scored
  std::string run_dir;               ///< folder with the run's files (absolute)
  CodeVersion code;
  std::string host;
  int64_t pid = 0;
};

struct MetricPoint {
  std::string key;
  double value = 0;
  int64_t step = 0;
  int64_t timestamp_ms = 0;
};

struct Artifact {
  std::string path;  ///< relative to the run folder when inside it, else absolute
  std::string kind;  ///< checkpoint, model, report, plot, log, config, metrics, ...
  std::string sha256;
  int64_t size = 0;
};

/// A run with everything recorded about it. latest_metrics holds each key's value at its largest step
/// (the newest when steps tie).
struct RunRecord {
  RunInfo info;
  std::map<std::string, std::string> params;
  std::map<std::string, double> latest_metrics;
  std::map<std::string, std::string> tags;
  std::vector<Artifact> artifacts;
};

/// What a new run starts with. Host, pid, start time and code version are filled by the store.
struct NewRun {
  std::string name;
  std::string experiment = "Default";
  std::string kind;
  std::string dataset_id;
  std::string parent_id;
  std::string run_dir;
  std::map<std::string, std::string> params;
  std::map<std::string, std::string> tags;
  CodeVersion code;  ///< filled by detect_code_version() when code.commit and code.vigil are empty
};

/// Which runs `search_runs` returns, MLflow's search in spirit:
///   conditions: "metrics.val_accuracy > 0.9", "params.optimizer.lr = 0.001", "tags.note != 'x'",
///               "status = finished", "name LIKE 'mask%'", "kind = train", "dataset = <id prefix>"
///   order_by:   "start_time DESC" (default), "metrics.mAP50 DESC", "params.epochs", "name", "end_time"
struct RunFilter {
  std::string experiment;               ///< "" = every experiment
  std::optional<RunStatus> status;      ///< also expressible as a condition
  std::vector<std::string> conditions;  ///< all must hold; each may itself join several with " and "
  std::string order_by = "start_time DESC";
  int limit = 50;  ///< page size (1..10000)
  int offset = 0;  ///< page start
  /// Parses every condition and order_by; throws InvalidArgument naming the bad part and the valid forms.
  void validate() const;
};

/// A page of runs and how many match in total.
struct RunPage {
  std::vector<RunRecord> runs;
  int64_t total = 0;
};

/// One immutable version of a registered model: the model file in the registry plus what it was made from.
struct ModelVersion {
  std::string name;
  int version = 0;
  int64_t created_ms = 0;
  std::string file;    ///< absolute path of the registered model file (read-only)
  std::string sha256;  ///< of the file; checked by verify and export/import
  int64_t size = 0;
  std::string run_id;      ///< lineage: the training run
  std::string dataset_id;  ///< lineage: the dataset version it was trained on
  std::string arch, task;
  std::string description;
  std::map<std::string, double> metrics;
  std::string info_json;             ///< the model file's own description (model::ModelInfo)
  std::string source;                ///< "run <id>" or "import <file> (from name/k)"
  std::vector<std::string> aliases;  ///< aliases pointing at this version
};

/// One change of the registry, named as MLflow's registry webhooks name them: registered_model.created,
/// model_version.created, model_version.deleted, model_version_alias.created (also when an alias moves;
/// `previous_version` then says from where), model_version_alias.deleted. payload_json is MLflow's payload
/// for the event (name, version as a string, alias, source, run_id, description, ...).
struct RegistryEvent {
  int64_t id = 0;
  int64_t time_ms = 0;
  std::string event;
  std::string name;
  int version = 0;
  std::string alias;
  std::string payload_json;
  std::string claimed_by;  ///< "" until a server took it for delivery
};

struct RegisteredModel {
  std::string name;
  int64_t created_ms = 0, updated_ms = 0;
  int latest_version = 0;
  int version_count = 0;
  std::map<std::string, int> aliases;  ///< alias -> version
};

/// What `register_model_file` records beside the file.
struct NewModelVersion {
  std::string name;
  std::string run_id, dataset_id, arch, task, description, info_json, source;
  std::map<std::string, double> metrics;
};

}  // namespace vigil::store
