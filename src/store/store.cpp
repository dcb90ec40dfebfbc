// The store: opening and migrating the database, and tracking runs. The registry is in registry.cpp, the
// run search in run_query.cpp.

#include "vigil/store/store.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "store_impl.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"

namespace vigil::store {

namespace fs = std::filesystem;
using detail::now_ms;

namespace {

constexpr int kApplicationId = 0x5647494C;  // "VGIL": a vigil store, not some other SQLite file

// Written once for both engines: BIGINT and DOUBLE PRECISION have SQLite's INTEGER and REAL affinities.
// @IDENTITY@ and @SEQ@ are the Dialect's identity key and insertion-order column.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE experiments(
  id @IDENTITY@, name TEXT NOT NULL UNIQUE, created_ms BIGINT NOT NULL);
CREATE TABLE runs(
  id TEXT PRIMARY KEY, name TEXT NOT NULL, experiment_id BIGINT NOT NULL REFERENCES experiments(id),
  kind TEXT NOT NULL, status TEXT NOT NULL, start_ms BIGINT NOT NULL, end_ms BIGINT NOT NULL DEFAULT 0,
  last_write_ms BIGINT NOT NULL, dataset_id TEXT NOT NULL DEFAULT '', parent_id TEXT NOT NULL DEFAULT '',
  run_dir TEXT NOT NULL DEFAULT '', code_commit TEXT NOT NULL DEFAULT '',
  code_dirty BIGINT NOT NULL DEFAULT 0, vigil_version TEXT NOT NULL DEFAULT '', host TEXT NOT NULL DEFAULT '',
  pid BIGINT NOT NULL DEFAULT 0, pid_identity TEXT NOT NULL DEFAULT ''@SEQ@);
CREATE INDEX runs_by_start ON runs(start_ms);
CREATE INDEX runs_by_name ON runs(name);
CREATE TABLE params(
  run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, key TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY(run_id, key));
CREATE TABLE metrics(
  run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, key TEXT NOT NULL, value DOUBLE PRECISION,
  step BIGINT NOT NULL, timestamp_ms BIGINT NOT NULL@SEQ@);
CREATE INDEX metrics_by_run_key ON metrics(run_id, key, step);
CREATE TABLE latest_metrics(
  run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, key TEXT NOT NULL, value DOUBLE PRECISION,
  step BIGINT NOT NULL, timestamp_ms BIGINT NOT NULL, PRIMARY KEY(run_id, key));
CREATE TABLE tags(
  run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, key TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY(run_id, key));
CREATE TABLE artifacts(
  run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, path TEXT NOT NULL, kind TEXT NOT NULL,
  sha256 TEXT NOT NULL, size BIGINT NOT NULL, PRIMARY KEY(run_id, path));
CREATE TABLE registered_models(
  name TEXT PRIMARY KEY, created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL,
  last_version BIGINT NOT NULL DEFAULT 0);
CREATE TABLE model_versions(
  name TEXT NOT NULL REFERENCES registered_models(name) ON DELETE CASCADE, version BIGINT NOT NULL,
  created_ms BIGINT NOT NULL, file TEXT NOT NULL, sha256 TEXT NOT NULL, size BIGINT NOT NULL,
  run_id TEXT NOT NULL DEFAULT '', dataset_id TEXT NOT NULL DEFAULT '', arch TEXT NOT NULL DEFAULT '',
  task TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '',
  metrics_json TEXT NOT NULL DEFAULT '{}', info_json TEXT NOT NULL DEFAULT '',
  source TEXT NOT NULL DEFAULT '', PRIMARY KEY(name, version));
CREATE INDEX model_versions_by_hash ON model_versions(name, sha256);
CREATE TABLE model_aliases(
  name TEXT NOT NULL, alias TEXT NOT NULL, version BIGINT NOT NULL, updated_ms BIGINT NOT NULL,
  PRIMARY KEY(name, alias), FOREIGN KEY(name, version) REFERENCES model_versions(name, version));
)sql";

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
    s.replace(pos, from.size(), to);
  return s;
}

// Version 2: the registry's changes in order, an outbox that `vigil serve --registry-webhook` delivers (any
// process may change the registry: the CLI, a retrain job, another replica). claimed_by is set by the one
// server that delivers an event, so replicas sharing the store do not send it twice.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE registry_events(
  id @IDENTITY@, time_ms BIGINT NOT NULL, event TEXT NOT NULL, name TEXT NOT NULL,
  version BIGINT NOT NULL DEFAULT 0, alias TEXT NOT NULL DEFAULT '', payload_json TEXT NOT NULL,
  claimed_by TEXT NOT NULL DEFAULT '', claimed_ms BIGINT NOT NULL DEFAULT 0);
CREATE INDEX registry_events_by_time ON registry_events(time_ms);
)sql";

/// Migration k brings a store from schema version k to k + 1; a store at version v applies v, v+1, ...
/// Each later step is ALTER/CREATE SQL valid for both engines (or spelled with Dialect fragments).
std::vector<std::string> migrations(const detail::Dialect& d) {
  std::vector<std::string> steps = {kSchemaV1, kSchemaV2};
  for (auto& step : steps) {
    step = replace_all(step, "@IDENTITY@", d.identity_key);
    step = replace_all(step, "@SEQ@", d.insertion_order_column);
  }
  return steps;
}

/// Inserts or replaces one (run_id, key, value) row of params or tags.
std::string upsert_key_value(const char* table) {
  return fmt::format(
      "INSERT INTO {}(run_id, key, value) VALUES(?, ?, ?) ON CONFLICT(run_id, key) DO UPDATE SET value = "
      "excluded.value",
      table);
}

std::string read_small_file(const fs::path& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  return s;
}

}  // namespace

// ---- helpers
// -------------------------------------------------------------------------------------------------

namespace detail {

std::string host_name() {
  std::array<char, 256> buf{};
  if (gethostname(buf.data(), buf.size() - 1) != 0) return "unknown";
  return buf.data();
}

std::string process_identity(int64_t pid) {
  const std::string stat = read_small_file(fmt::format("/proc/{}/stat", pid));
  if (stat.empty()) return "";
  // Field 22 (starttime) counts from the end of the command name, which may itself hold spaces.
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return "";
  const auto fields = split_ws(std::string_view(stat).substr(close + 1));
  if (fields.size() < 20) return "";
  return read_small_file("/proc/sys/kernel/random/boot_id") + ":" + fields[19];
}

std::string new_run_id() {
  std::random_device rd;
  return fmt::format("{:08x}{:08x}{:08x}{:08x}", rd(), rd(), rd(), rd());
}

}  // namespace detail

const char* to_string(RunStatus status) {
  switch (status) {
    case RunStatus::kRunning:
      return "running";
    case RunStatus::kFinished:
      return "finished";
    case RunStatus::kFailed:
      return "failed";
    case RunStatus::kKilled:
      return "killed";
  }
  return "unknown";
}

RunStatus parse_run_status(const std::string& name) {
  const std::string n = to_lower(name);
  for (auto s : {RunStatus::kRunning, RunStatus::kFinished, RunStatus::kFailed, RunStatus::kKilled}) {
    if (n == to_string(s)) return s;
  }
  throw InvalidArgument(
      fmt::format("expected a run status (running, finished, failed, killed), got '{}'", name));
}

void StoreOptions::validate() const {
  VIGIL_CHECK(busy_timeout_ms >= 0, "expected busy_timeout_ms >= 0, got {}", busy_timeout_ms);
  VIGIL_CHECK(max_retries >= 0, "expected max_retries >= 0, got {}", max_retries);
}

// ---- opening ---------------------------------------------------------------------------------------------

void Store::Impl::migrate() {
  const auto steps = migrations(db->dialect());
  const int latest = static_cast<int>(steps.size());
  auto check = [&](const detail::SchemaStamp& stamp) {
    if (stamp.application_id != kApplicationId && stamp.application_id != 0) {
      throw DataError(
          fmt::format("{} is not a vigil database (application id {:#x})", db->name(), stamp.application_id));
    }
    if (stamp.version > latest) {
      throw DataError(fmt::format("{} was written by a newer vigil (schema {}; this vigil knows up to {})",
                                  db->name(), stamp.version, latest));
    }
  };
  const auto first = db->read_stamp();
  check(first);
  if (first.version == latest) return;
  db->write_schema([&] {
    // Re-read under the lock: another process may have migrated meanwhile.
    const auto stamp = db->read_stamp();
    check(stamp);
    if (stamp.version == latest) return;
    if (stamp.version == 0 && stamp.has_tables && stamp.application_id != kApplicationId) {
      throw DataError(
          fmt::format("{} is a {} database but not a vigil store", db->name(), db->dialect().name));
    }
    for (int v = stamp.version; v < latest; ++v) db->exec(steps[v]);
    db->write_stamp(kApplicationId, latest);
  });
}

Store::Store(const Workspace& ws, StoreOptions options) : impl_(std::make_unique<Impl>()) {
  options.validate();
  Impl& m = *impl_;
  m.options = options;
  m.root = ws.root();
  ws.ensure();
  m.registry_dir = ws.root() / "registry";
  const auto url = detail::resolve_store_url(ws, options);
  m.db_file = url.shown;
  m.db = detail::open_database(url, options);
  m.migrate();
  if (options.reap_on_open) reap_dead_runs();
}

Store::~Store() = default;

const fs::path& Store::db_file() const {
  return impl_->db_file;
}
const fs::path& Store::registry_dir() const {
  return impl_->registry_dir;
}

// ---- tracking --------------------------------------------------------------------------------------------

void Store::Impl::touch(const std::string& run_id, int64_t now) {
  auto s = db->prepare("UPDATE runs SET last_write_ms = ? WHERE id = ?");
  if (s.bind_all({now, run_id}).run() == 0) throw NotFound(fmt::format("no run with id {}", run_id));
}

std::string Store::create_run(const NewRun& run) {
  VIGIL_CHECK(!run.kind.empty(), "expected a run kind (train, evaluate, ...), got nothing");
  const std::string experiment = run.experiment.empty() ? "Default" : run.experiment;
  CodeVersion code = run.code;
  if (code.commit.empty()) {
    const auto detected = detect_code_version();
    code.commit = detected.commit;
    code.dirty = detected.dirty;
  }
  const std::string id = detail::new_run_id();
  const int64_t pid = static_cast<int64_t>(getpid());
  const std::string identity = detail::process_identity(pid);
  const std::string host = detail::host_name();
  std::lock_guard lock(impl_->mutex);
  auto& db = *impl_->db;
  db.write([&] {
    const int64_t now = now_ms();
    db.prepare("INSERT INTO experiments(name, created_ms) VALUES(?, ?) ON CONFLICT DO NOTHING")
        .bind_all({experiment, now})
        .run();
    db.prepare(
          "INSERT INTO runs(id, name, experiment_id, kind, status, start_ms, last_write_ms, dataset_id, "
          "parent_id, run_dir, code_commit, code_dirty, vigil_version, host, pid, pid_identity) "
          "VALUES(?, ?, (SELECT id FROM experiments WHERE name = ?), ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, "
          "?, ?, ?)")
        .bind_all({id, run.name.empty() ? id.substr(0, 8) : run.name, experiment, run.kind, now, now,
                   run.dataset_id, run.parent_id, run.run_dir, code.commit, int64_t{code.dirty}, code.vigil,
                   host, pid, identity})
        .run();
    for (const auto& [k, v] : run.params) db.prepare(upsert_key_value("params")).bind_all({id, k, v}).run();
    for (const auto& [k, v] : run.tags) db.prepare(upsert_key_value("tags")).bind_all({id, k, v}).run();
  });
  return id;
}

void Store::reopen_run(const std::string& run_id) {
  const int64_t pid = static_cast<int64_t>(getpid());
  const std::string identity = detail::process_identity(pid), host = detail::host_name();
  std::lock_guard lock(impl_->mutex);
  impl_->db->write([&] {
    impl_->touch(run_id, now_ms());
    impl_->db
        ->prepare(
            "UPDATE runs SET status = 'running', end_ms = 0, pid = ?, pid_identity = ?, host = ? "
            "WHERE id = ?")
        .bind_all({pid, identity, host, run_id})
        .run();
  });
}

void Store::log_params(const std::string& run_id, const std::map<std::string, std::string>& params) {
  std::lock_guard lock(impl_->mutex);
  impl_->db->write([&] {
    impl_->touch(run_id, now_ms());
    for (const auto& [k, v] : params)
      impl_->db->prepare(upsert_key_value("params")).bind_all({run_id, k, v}).run();
  });
}

void Store::log_metrics(const std::string& run_id, const std::vector<MetricPoint>& points) {
  if (points.empty()) return;
  std::lock_guard lock(impl_->mutex);
  auto& db = *impl_->db;
  db.write([&] {
    const int64_t now = now_ms();
    impl_->touch(run_id, now);
    auto insert =
        db.prepare("INSERT INTO metrics(run_id, key, value, step, timestamp_ms) VALUES(?, ?, ?, ?, ?)");
    // The latest value is the one with the largest step (the newest when steps tie), as MLflow keeps it.
    auto latest = db.prepare(
        "INSERT INTO latest_metrics(run_id, key, value, step, timestamp_ms) VALUES(?, ?, ?, ?, ?) "
        "ON CONFLICT(run_id, key) DO UPDATE SET value = excluded.value, step = excluded.step, "
        "timestamp_ms = excluded.timestamp_ms WHERE excluded.step > latest_metrics.step OR "
        "(excluded.step = latest_metrics.step AND excluded.timestamp_ms >= latest_metrics.timestamp_ms)");
    for (const auto& p : points) {
      VIGIL_CHECK(!p.key.empty(), "expected a metric name, got an empty one");
      const int64_t t = p.timestamp_ms > 0 ? p.timestamp_ms : now;
      const std::vector<detail::SqlValue> row = {run_id, p.key, p.value, p.step, t};
      insert.reset().bind_all(row).run();
      latest.reset().bind_all(row).run();
    }
  });
}

void Store::log_metric(const std::string& run_id, const std::string& key, double value, int64_t step) {
  log_metrics(run_id, {MetricPoint{key, value, step, 0}});
}

void Store::set_tag(const std::string& run_id, const std::string& key, const std::string& value) {
  std::lock_guard lock(impl_->mutex);
  impl_->db->write([&] {
    impl_->touch(run_id, now_ms());
    impl_->db->prepare(upsert_key_value("tags")).bind_all({run_id, key, value}).run();
  });
}

void Store::log_artifact(const std::string& run_id, const Artifact& a) {
  std::lock_guard lock(impl_->mutex);
  impl_->db->write([&] {
    impl_->touch(run_id, now_ms());
    impl_->db
        ->prepare(
            "INSERT INTO artifacts(run_id, path, kind, sha256, size) VALUES(?, ?, ?, ?, ?) ON "
            "CONFLICT(run_id, "
            "path) DO UPDATE SET kind = excluded.kind, sha256 = excluded.sha256, size = excluded.size")
        .bind_all({run_id, a.path, a.kind, a.sha256, a.size})
        .run();
  });
}

void Store::end_run(const std::string& run_id, RunStatus status) {
  VIGIL_CHECK(status != RunStatus::kRunning, "expected an end status, got running");
  std::lock_guard lock(impl_->mutex);
  impl_->db->write([&] {
    const int64_t now = now_ms();
    impl_->touch(run_id, now);
    impl_->db->prepare("UPDATE runs SET status = ?, end_ms = ? WHERE id = ?")
        .bind_all({std::string(to_string(status)), now, run_id})
        .run();
  });
}

int Store::reap_dead_runs() {
  std::lock_guard lock(impl_->mutex);
  auto& db = *impl_->db;
  const std::string host = detail::host_name();
  std::vector<std::string> dead;
  {
    auto s = db.prepare("SELECT id, pid, pid_identity FROM runs WHERE status = 'running' AND host = ?");
    s.bind(1, host);
    while (s.step()) {
      const std::string identity = detail::process_identity(s.int_at(1));
      if (identity.empty() || identity != s.text_at(2)) dead.push_back(s.text_at(0));
    }
  }
  if (dead.empty()) return 0;
  db.write([&] {
    for (const auto& id : dead) {
      db.prepare(
            "UPDATE runs SET status = 'killed', end_ms = last_write_ms WHERE id = ? AND status = 'running'")
          .bind(1, id)
          .run();
    }
  });
  for (const auto& id : dead) spdlog::info("run {} ended without a word from its process: marked killed", id);
  return static_cast<int>(dead.size());
}

}  // namespace vigil::store
