// PostgreSQL behind the store's Database interface. Every statement is sent with PQexecParams (text-format
// parameters, types inferred by the server from the SQL) and its whole result read at once: the store's
// queries return pages, not streams. Lock conflicts (serialization failure, deadlock, lock timeout) become
// BusyError, which Database::write retries. A connection lost between transactions is re-opened and the
// statement sent again; one lost inside a transaction (or a server that stays away) is Unavailable naming the
// URL without its password.

#include <fmt/format.h>
#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <optional>

#include "db.h"
#include "vigil/core/error.h"

namespace vigil::store::detail {

namespace {

/// `?` -> `$1`, `$2`, ... and `?N` -> `$N`, outside quoted strings and identifiers: the store's SQL is
/// written once with SQLite's placeholders.
std::string to_dollar_params(const std::string& sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int next = 0;
  char quote = 0;
  for (size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (quote) {
      if (c == quote) quote = 0;  // a doubled quote closes and reopens: same result
      out += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      out += c;
    } else if (c == '?') {
      size_t j = i + 1;
      while (j < sql.size() && std::isdigit(static_cast<unsigned char>(sql[j]))) ++j;
      out += '$';
      out += j > i + 1 ? sql.substr(i + 1, j - i - 1) : std::to_string(++next);
      i = j - 1;
    } else {
      out += c;
    }
  }
  return out;
}

// Type OIDs of PostgreSQL's built-in types (catalog/pg_type_d.h, stable across versions).
constexpr Oid kInt8 = 20, kInt2 = 21, kInt4 = 23, kFloat4 = 700, kFloat8 = 701, kNumeric = 1700;

std::string trimmed(const char* s) {
  std::string m = s ? s : "";
  while (!m.empty() && std::isspace(static_cast<unsigned char>(m.back()))) m.pop_back();
  return m;
}

class PgDatabase;

class PgStatement final : public StatementImpl {
 public:
  PgStatement(PgDatabase& db, std::string sql) : db_(db), sql_(std::move(sql)) {}
  ~PgStatement() override { PQclear(res_); }

  void bind(int index, const SqlValue& value) override {
    if (index > static_cast<int>(params_.size())) params_.resize(index);
    auto& p = params_[index - 1];
    if (std::holds_alternative<int64_t>(value)) {
      p = std::to_string(std::get<int64_t>(value));
    } else if (std::holds_alternative<double>(value)) {
      const double d = std::get<double>(value);
      // NaN is stored as NULL, as SQLite does, so both engines read the same back.
      if (std::isnan(d))
        p.reset();
      else if (std::isinf(d))
        p = d > 0 ? "Infinity" : "-Infinity";
      else
        p = fmt::format("{}", d);
    } else if (std::holds_alternative<std::string>(value)) {
      p = std::get<std::string>(value);
    } else {
      p.reset();
    }
  }
  void reset() override {
    PQclear(res_);
    res_ = nullptr;
    row_ = -1;
    params_.clear();
  }
  bool step() override;
  int64_t changes() const override {
    const char* n = res_ ? PQcmdTuples(res_) : "";
    return *n ? std::strtoll(n, nullptr, 10) : 0;
  }
  int column_count() const override { return res_ ? PQnfields(res_) : 0; }
  std::string column_name(int col) const override { return PQfname(res_, col); }
  SqlValue value_at(int col) const override {
    if (is_null(col)) return std::monostate{};
    switch (PQftype(res_, col)) {
      case kInt8:
      case kInt4:
      case kInt2:
        return int_at(col);
      case kFloat8:
      case kFloat4:
      case kNumeric:
        return double_at(col);
      default:
        return text_at(col);
    }
  }
  int64_t int_at(int col) const override {
    if (is_null(col)) return 0;
    const char* v = PQgetvalue(res_, row_, col);
    if (v[0] == 't' || v[0] == 'f') return v[0] == 't';  // booleans
    return std::strtoll(v, nullptr, 10);
  }
  double double_at(int col) const override {
    if (is_null(col)) return std::nan("");
    return std::strtod(PQgetvalue(res_, row_, col), nullptr);
  }
  std::string text_at(int col) const override {
    if (is_null(col)) return {};
    return std::string(PQgetvalue(res_, row_, col), static_cast<size_t>(PQgetlength(res_, row_, col)));
  }
  bool is_null(int col) const override { return PQgetisnull(res_, row_, col) != 0; }

 private:
  PgDatabase& db_;
  std::string sql_;
  std::vector<std::optional<std::string>> params_;
  PGresult* res_ = nullptr;
  int row_ = -1;
};

class PgDatabase final : public Database {
 public:
  PgDatabase(const StoreUrl& url, const StoreOptions& options)
      : Database(url.shown, kPostgresDialect, options.max_retries),
        url_(url.target),
        lock_timeout_ms_(options.busy_timeout_ms) {
    connect();
  }
  ~PgDatabase() override { PQfinish(conn_); }

  Statement prepare(const std::string& sql) override {
    return Statement(std::make_unique<PgStatement>(*this, to_dollar_params(sql)));
  }

  void exec(const std::string& sql) override {
    const bool begin = sql == dialect().begin;
    PGresult* res = send([&] { return PQexec(conn_, sql.c_str()); });
    if (sql == "COMMIT") in_transaction_ = false;
    check(res, "statement failed");
    PQclear(res);
    if (begin) in_transaction_ = true;
  }

  /// Sends a statement. Outside a transaction nothing can be half done, so a connection found lost (a server
  /// restart, an idle connection dropped by a proxy) is re-opened and the statement sent once more; inside
  /// one the loss is reported (check: Unavailable), as the transaction died with the connection.
  template <class Send>
  PGresult* send(Send&& fn) {
    if (in_transaction_) return fn();
    reconnect_if_lost();
    PGresult* res = fn();
    if (PQstatus(conn_) != CONNECTION_OK) {
      PQclear(res);
      reconnect_if_lost();
      res = fn();
    }
    return res;
  }

  /// Throws the error `res` (which it clears) reports, unless it is a success.
  void check(PGresult* res, const char* what) {
    const auto status = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return;
    const std::string state = res ? trimmed(PQresultErrorField(res, PG_DIAG_SQLSTATE)) : "";
    const std::string msg = trimmed(res ? PQresultErrorMessage(res) : PQerrorMessage(conn_));
    PQclear(res);
    if (PQstatus(conn_) == CONNECTION_BAD || state.rfind("08", 0) == 0 || state.rfind("57P", 0) == 0) {
      in_transaction_ = false;
      throw Unavailable(fmt::format("database {}: connection lost: {}", name(), msg));
    }
    if (state == "40001" || state == "40P01" || state == "55P03")  // serialization, deadlock, lock timeout
      throw BusyError(fmt::format("database {}: {}: {}", name(), what, msg));
    throw IoError(fmt::format("database {}: {}: {}", name(), what, msg));
  }

  PGresult* run(const std::string& sql, const std::vector<std::optional<std::string>>& params) {
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    PGresult* res = send([&] {
      return PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                          nullptr, nullptr, 0);
    });
    check(res, "statement failed");
    return res;
  }

  SchemaStamp read_stamp() override {
    SchemaStamp s;
    auto meta = prepare("SELECT to_regclass('vigil_meta') IS NOT NULL");
    if (meta.step() && meta.int_at(0)) {
      auto rows = prepare("SELECT key, value FROM vigil_meta");
      while (rows.step()) {
        if (rows.text_at(0) == "application_id") s.application_id = std::atoi(rows.text_at(1).c_str());
        if (rows.text_at(0) == "schema_version") s.version = std::atoi(rows.text_at(1).c_str());
      }
    }
    auto tables =
        prepare("SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()");
    s.has_tables = tables.step() && tables.int_at(0) > 0;
    return s;
  }
  void write_stamp(int application_id, int version) override {
    exec("CREATE TABLE IF NOT EXISTS vigil_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    auto s =
        prepare("INSERT INTO vigil_meta VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    s.bind_all({std::string("application_id"), std::to_string(application_id)}).run();
    s.reset().bind_all({std::string("schema_version"), std::to_string(version)}).run();
  }
  // Two connections creating the same tables at once collide in the catalog, so schema changes take turns
  // under a session lock. It is taken before BEGIN on purpose: a transaction started after the other
  // connection committed sees its tables even in name lookups (to_regclass, IF NOT EXISTS), which read
  // caches refreshed only when a transaction starts.
  void write_schema(const std::function<void()>& fn) override {
    const char* unlock = "SELECT pg_advisory_unlock(hashtext('vigil store schema'))";
    exec("SELECT pg_advisory_lock(hashtext('vigil store schema'))");
    try {
      write(fn);
    } catch (...) {
      if (PQstatus(conn_) == CONNECTION_OK) PQclear(PQexec(conn_, unlock));
      throw;
    }
    exec(unlock);
  }
  void sync_identity(const std::string& table, const std::string& column) override {
    exec(
        fmt::format("SELECT setval(pg_get_serial_sequence('{0}', '{1}'), coalesce(max({1}), 0) + 1, false) "
                    "FROM {0}",
                    table, column));
  }

 protected:
  void rollback() noexcept override {
    in_transaction_ = false;
    if (PQstatus(conn_) == CONNECTION_OK) PQclear(PQexec(conn_, "ROLLBACK"));
  }

 private:
  void connect() {
    // Keywords before dbname are defaults the URL may override.
    const char* keys[] = {"connect_timeout", "fallback_application_name", "dbname", nullptr};
    const char* values[] = {"10", "vigil", url_.c_str(), nullptr};
    conn_ = PQconnectdbParams(keys, values, 1);
    if (PQstatus(conn_) != CONNECTION_OK) {
      const std::string msg = trimmed(PQerrorMessage(conn_));
      PQfinish(conn_);
      conn_ = nullptr;
      throw Unavailable(fmt::format("cannot connect to the store {}: {}", name(), msg));
    }
    // CREATE TABLE IF NOT EXISTS says NOTICE when the table exists; libpq would print it on stderr.
    PQsetNoticeProcessor(
        conn_, [](void*, const char* message) { spdlog::debug("postgresql: {}", trimmed(message)); },
        nullptr);
    set_up_session();
  }
  // A lock wait as long as SQLite's busy timeout, then BusyError and a retry of the whole transaction.
  void set_up_session() {
    if (lock_timeout_ms_ <= 0) return;
    PGresult* res = PQexec(conn_, fmt::format("SET lock_timeout = {}", lock_timeout_ms_).c_str());
    check(res, "cannot set up the session");
    PQclear(res);
  }
  void reconnect_if_lost() {
    if (PQstatus(conn_) == CONNECTION_OK) return;
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK)
      throw Unavailable(
          fmt::format("database {}: connection lost: {}", name(), trimmed(PQerrorMessage(conn_))));
    spdlog::warn("database {}: connection lost and re-established", name());
    set_up_session();
  }

  std::string url_;
  int lock_timeout_ms_;
  PGconn* conn_ = nullptr;
  bool in_transaction_ = false;
};

bool PgStatement::step() {
  if (!res_) res_ = db_.run(sql_, params_);
  return ++row_ < PQntuples(res_);
}

}  // namespace

std::unique_ptr<Database> open_postgres(const StoreUrl& url, const StoreOptions& options) {
  return std::make_unique<PgDatabase>(url, options);
}

}  // namespace vigil::store::detail
