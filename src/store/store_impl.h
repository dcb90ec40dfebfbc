#pragma once
// Store internals shared by the tracking (store.cpp), query (run_query.cpp) and registry (registry.cpp)
// parts.

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "db.h"
#include "vigil/store/store.h"

namespace vigil::store {

struct Store::Impl {
  StoreOptions options;
  std::filesystem::path root, db_file, registry_dir;  ///< db_file: the SQLite file or the redacted URL
  std::unique_ptr<detail::Database> db;
  std::mutex mutex;  ///< one statement sequence at a time per Store object (the server shares one)

  void migrate();
  RunInfo read_run_info(detail::Statement& s) const;  ///< the columns of kRunColumns
  RunRecord load_run(const std::string& id);
  std::string resolve_run_locked(const std::string& ref);
  void touch(const std::string& run_id, int64_t now);
  ModelVersion read_version(detail::Statement& s);  ///< the columns of kVersionColumns
  ModelVersion get_version_locked(const std::string& name, int version);
  std::vector<std::string> aliases_of(const std::string& name, int version);
  /// Appends one registry_events row; called inside the transaction of the change it describes.
  void record_registry_event(const std::string& event, const std::string& name, int version,
                             const std::string& alias, const std::string& payload_json, int64_t now);
};

namespace detail {

/// The columns read_run_info() expects, in order, from `runs r JOIN experiments e`.
inline constexpr const char* kRunColumns =
    "r.id, r.name, e.name, r.kind, r.status, r.start_ms, r.end_ms, r.dataset_id, r.parent_id, r.run_dir, "
    "r.code_commit, r.code_dirty, r.vigil_version, r.host, r.pid";
inline constexpr const char* kVersionColumns =
    "name, version, created_ms, file, sha256, size, run_id, dataset_id, arch, task, description, "
    "metrics_json, info_json, source";

/// Opens the workspace store for a table that lives beside runs and the registry (events, predictions): a
/// Store opens it first (creating, checking and migrating it), then `schema` (CREATE ... IF NOT EXISTS only,
/// so the schema version stays and older vigils keep opening the store) is applied. Under SQLite, commits
/// use synchronous=NORMAL under WAL: consistent after a crash, at most the last moments lost.
std::unique_ptr<Database> open_side_table(const Workspace& ws, StoreOptions options, const char* schema);

/// A WHERE clause built condition by condition with its bound values, and the page query the side tables
/// (events, predictions) answer with: the matching total, then one ordered page of rows.
class PagedQuery {
 public:
  void where(const std::string& condition, SqlValue value) {
    where_ += where_.empty() ? "WHERE " : " AND ";
    where_ += condition;
    values_.push_back(std::move(value));
  }
  /// `SELECT count(*)` of `table` under the conditions; then `SELECT columns ... ORDER BY order LIMIT
  /// OFFSET`, calling `read(statement)` per row. Returns the total.
  template <class Read>
  int64_t run(Database& db, const std::string& table, const std::string& columns, const std::string& order,
              int64_t limit, int64_t offset, Read&& read) const {
    int64_t total = 0;
    auto count = db.prepare("SELECT count(*) FROM " + table + " " + where_);
    count.bind_all(values_);
    if (count.step()) total = count.int_at(0);
    auto s = db.prepare("SELECT " + columns + " FROM " + table + " " + where_ + " ORDER BY " + order +
                        " LIMIT ? OFFSET ?");
    std::vector<SqlValue> values = values_;
    values.push_back(limit);
    values.push_back(offset);
    s.bind_all(values);
    while (s.step()) read(s);
    return total;
  }

 private:
  std::string where_;
  std::vector<SqlValue> values_;
};

inline int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// This machine's name.
std::string host_name();
/// Identifies a live process across pid reuse and reboots: boot id + the process's start time in clock
/// ticks; "" when the process does not exist.
std::string process_identity(int64_t pid);
/// 32 random hex digits.
std::string new_run_id();

/// SQL condition + bound values for one RunFilter (run_query.cpp).
struct RunQuery {
  std::string where;     ///< "" or "WHERE ..."
  std::string order_by;  ///< "ORDER BY ..."
  std::vector<SqlValue> where_values, order_values;
};
RunQuery build_run_query(const RunFilter& filter, const Dialect& dialect);

}  // namespace detail
}  // namespace vigil::store
