#pragma once
/// The workspace's tracking store and model registry (DESIGN.md section 3, store/): by default one SQLite
/// database, <workspace>/vigil.db, in WAL mode so several processes (a training run, an evaluation, `vigil
/// serve`, `vigil runs list`) read and write it at once. Every write is one short transaction taken with
/// BEGIN IMMEDIATE under a busy timeout and retried on SQLITE_BUSY, so concurrent writers lose nothing; a row
/// is either committed whole or not at all, so a writer killed mid-run leaves every committed row intact. The
/// same tables live in PostgreSQL when the store URL says so (StoreOptions::url, `--store`, $VIGIL_STORE):
/// each Store is one connection, write transactions are retried on serialization failures and deadlocks, and
/// the schema version is kept in a vigil_meta table.
///
/// Registered model files live under <workspace>/registry/<name>/<version>/, read-only, named by the store
/// and checked against their SHA-256.

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "vigil/core/workspace.h"
#include "vigil/store/records.h"

namespace vigil::store {

struct StoreOptions {
  /// Where the tables live: `sqlite:PATH`, `postgresql://...` or `postgres://...` (libpq URLs). Empty:
  /// $VIGIL_STORE, else sqlite:<workspace>/vigil.db. Registered model files stay in the workspace either way.
  std::string url;
  int busy_timeout_ms = 30000;  ///< how long one statement waits for another process's lock
  int max_retries = 20;         ///< whole-transaction retries after the busy timeout (with back-off)
  /// Mark runs of this host whose process is gone as killed when the store is opened.
  bool reap_on_open = true;
  void validate() const;
};

class Store {
 public:
  /// Opens (creating and migrating as needed) the store of `ws`. IoError names the file when it cannot be
  /// opened, DataError when it is not a vigil database or is newer than this vigil, Unavailable when the
  /// PostgreSQL server cannot be reached, InvalidArgument for a store URL of no known kind.
  explicit Store(const Workspace& ws, StoreOptions options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  /// The SQLite file, or the PostgreSQL URL with its password hidden (for messages).
  const std::filesystem::path& db_file() const;
  const std::filesystem::path& registry_dir() const;

  // ---- tracking ------------------------------------------------------------------------------------------
  /// Starts a run (status running) and returns its id.
  std::string create_run(const NewRun& run);
  /// A resumed run continues: status back to running, this process as its owner.
  void reopen_run(const std::string& run_id);
  void log_params(const std::string& run_id, const std::map<std::string, std::string>& params);
  /// Appends metric points (one transaction); each also updates the key's latest value.
  void log_metrics(const std::string& run_id, const std::vector<MetricPoint>& points);
  void log_metric(const std::string& run_id, const std::string& key, double value, int64_t step);
  void set_tag(const std::string& run_id, const std::string& key, const std::string& value);
  /// Records (or replaces, by path) an artifact.
  void log_artifact(const std::string& run_id, const Artifact& artifact);
  void end_run(const std::string& run_id, RunStatus status);
  /// Marks running runs of this host whose process no longer exists (or is another process with the same
  /// pid) as killed, ending them at their last write. Returns how many.
  int reap_dead_runs();

  /// A run by id, unique id prefix (>= 4 digits), name (the newest run of that name) or "last" (the newest
  /// run; "last:train" the newest of a kind). NotFound lists close names.
  RunRecord get_run(const std::string& ref);
  /// The id `ref` (as for get_run) means.
  std::string resolve_run(const std::string& ref);
  RunPage search_runs(const RunFilter& filter);
  /// Every point of one metric, by step then time.
  std::vector<MetricPoint> metric_history(const std::string& run_id, const std::string& key);
  /// Names of the metrics a run has.
  std::vector<std::string> metric_keys(const std::string& run_id);
  std::vector<std::string> experiments();
  /// Deletes the run and everything recorded about it (not its folder). Returns the deleted id.
  std::string delete_run(const std::string& ref);

  // ---- registry ------------------------------------------------------------------------------------------
  /// Copies `model_file` into the registry as the next version of v.name (created on first use) and records
  /// it; the copy is made read-only and hashed. Returns the new version.
  ModelVersion register_model_file(const NewModelVersion& v, const std::filesystem::path& model_file);
  /// "name@alias", "name@latest", "name/k", "name:k" or "name" (= latest). NotFound names what is missing
  /// and what exists (the versions, the aliases).
  ModelVersion resolve_model(const std::string& spec);
  ModelVersion get_model_version(const std::string& name, int version);
  std::vector<RegisteredModel> list_models();
  std::vector<ModelVersion> list_versions(const std::string& name);
  /// Points `alias` of `name` at `version` (moving it if it pointed elsewhere). "latest" is reserved.
  /// Returns the version it pointed at before (0 = none).
  int set_alias(const std::string& name, const std::string& alias, int version);
  void delete_alias(const std::string& name, const std::string& alias);
  /// Deletes a version and its file. An aliased version needs `force` (InvalidArgument otherwise).
  void delete_model_version(const std::string& name, int version, bool force);
  /// Re-hashes a version's file; DataError when it changed or is missing.
  void verify_model_version(const ModelVersion& v);
  /// The version of `name` whose file has this hash, if any (import is idempotent).
  std::optional<ModelVersion> find_model_version_by_hash(const std::string& name, const std::string& sha256);

  /// The registry's changes after event `after_id` and not older than `since_ms`, oldest first, at most
  /// `limit`: each registration, alias move and deletion writes one in the same transaction as the change.
  std::vector<RegistryEvent> registry_events(int64_t after_id, int64_t since_ms, int limit);
  /// Marks an event as taken by `claimant` for delivery; true for exactly one claimant across processes.
  bool claim_registry_event(int64_t id, const std::string& claimant);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// git commit + dirty flag of the checkout containing `dir` ("" when git is missing or it is not one).
CodeVersion detect_code_version(const std::filesystem::path& dir = std::filesystem::current_path());

/// Registered model names: letters, digits, '-', '_', '.' (1..100, not starting with '.'); aliases the same
/// without '.', and not a number. InvalidArgument otherwise.
void check_model_name(const std::string& name);
void check_alias_name(const std::string& alias);

/// Splits "name@alias" / "name/k" / "name:k" / "name"; version 0 with empty alias = latest.
struct ModelRef {
  std::string name;
  int version = 0;
  std::string alias;
};
ModelRef parse_model_ref(const std::string& spec);

}  // namespace vigil::store
