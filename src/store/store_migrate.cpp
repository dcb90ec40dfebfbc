// `vigil store migrate`: a store copied table by table between engines, ids kept.

#include "vigil/store/store_migrate.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <optional>

#include "db.h"
#include "vigil/core/error.h"
#include "vigil/store/events.h"
#include "vigil/store/prediction_log.h"

namespace vigil::store {

namespace {

/// Every table of a store, parents before children (PostgreSQL checks foreign keys on every row).
constexpr const char* kTables[] = {"experiments",    "runs",          "params",          "metrics",
                                   "latest_metrics", "tags",          "artifacts",       "registered_models",
                                   "model_versions", "model_aliases", "registry_events", "events",
                                   "predictions"};

/// Opens the store at `url` as Store, EventLog and PredictionLog would, so every table exists.
void create_tables(const Workspace& ws, StoreOptions options, const std::string& url) {
  options.url = url;
  options.reap_on_open = false;  // a migration reads and writes rows; it does not judge them
  EventLog events(ws, options);
  PredictionLog predictions(ws, options);
}

int64_t copy_table(detail::Database& src, detail::Database& dst, const std::string& table) {
  // runs and metrics are read in insertion order, so the target numbers them (its seq) the same way.
  const bool ordered = table == "runs" || table == "metrics";
  auto read =
      src.prepare(fmt::format("SELECT * FROM {}{}", table,
                              ordered ? fmt::format(" ORDER BY {}", src.dialect().insertion_order) : ""));
  int64_t rows = 0;
  std::vector<int> columns;
  std::optional<detail::Statement> insert;
  while (read.step()) {
    if (!insert) {
      std::vector<std::string> names, marks;
      for (int c = 0; c < read.column_count(); ++c) {
        if (read.column_name(c) == "seq") continue;  // the target's own insertion order
        columns.push_back(c);
        names.push_back(read.column_name(c));
        marks.push_back("?");
      }
      insert.emplace(dst.prepare(fmt::format("INSERT INTO {}({}) VALUES({})", table, fmt::join(names, ", "),
                                             fmt::join(marks, ", "))));
    }
    insert->reset();
    for (size_t i = 0; i < columns.size(); ++i)
      insert->bind(static_cast<int>(i) + 1, read.value_at(columns[i]));
    insert->run();
    ++rows;
  }
  return rows;
}

}  // namespace

MigrateReport migrate_store(const Workspace& ws, const std::string& from, const std::string& to,
                            StoreOptions options) {
  VIGIL_CHECK(!from.empty() && !to.empty(),
              "store migrate: expected --from and --to store URLs, got '{}' and '{}'",
              detail::redact_url(from), detail::redact_url(to));
  options.validate();
  options.url = from;
  const auto src_url = detail::resolve_store_url(ws, options);
  options.url = to;
  const auto dst_url = detail::resolve_store_url(ws, options);
  VIGIL_CHECK(src_url.target != dst_url.target, "store migrate: --from and --to are the same store ({})",
              src_url.shown);
  create_tables(ws, options, from);
  create_tables(ws, options, to);
  auto src = detail::open_database(src_url, options);
  auto dst = detail::open_database(dst_url, options);

  MigrateReport report;
  report.from = src_url.shown;
  report.to = dst_url.shown;
  src->write([&] {
    dst->write([&] {
      for (const char* table : kTables) {
        auto count = dst->prepare(fmt::format("SELECT count(*) FROM {}", table));
        if (count.step() && count.int_at(0) > 0) {
          throw InvalidArgument(fmt::format(
              "store migrate: {} already holds data ({} rows in {}); migrate copies into an empty store only",
              dst_url.shown, count.int_at(0), table));
        }
      }
      report.tables.clear();
      report.rows = 0;
      for (const char* table : kTables) {
        const int64_t n = copy_table(*src, *dst, table);
        report.tables.emplace_back(table, n);
        report.rows += n;
      }
      dst->sync_identity("experiments", "id");
      dst->sync_identity("registry_events", "id");
    });
  });
  return report;
}

}  // namespace vigil::store
