// SQLite behind the store's Database interface: prepared statements with typed binds and reads, and write
// transactions taken with BEGIN IMMEDIATE that survive other processes holding the lock (busy timeout, then
// Database::write's retries with back-off).

#include "db.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <chrono>
#include <cmath>
#include <thread>

#include "vigil/core/error.h"

namespace vigil::store::detail {

namespace {

bool is_busy(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

[[noreturn]] void fail(sqlite3* db, int rc, const std::string& file, const std::string& what) {
  const std::string msg = fmt::format("database {}: {}: {}", file, what, db ? sqlite3_errmsg(db) : "");
  if (is_busy(rc)) throw BusyError(msg);
  throw IoError(msg);
}

class SqliteStatement final : public StatementImpl {
 public:
  SqliteStatement(sqlite3* db, const std::string& sql, const std::string& file) : db_(db), file_(file) {
    const int rc = sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &stmt_, nullptr);
    if (rc != SQLITE_OK) fail(db_, rc, file_, "cannot prepare a statement");
  }
  ~SqliteStatement() override { sqlite3_finalize(stmt_); }

  void bind(int index, const SqlValue& value) override {
    int rc = SQLITE_OK;
    if (std::holds_alternative<int64_t>(value)) {
      rc = sqlite3_bind_int64(stmt_, index, std::get<int64_t>(value));
    } else if (std::holds_alternative<double>(value)) {
      rc = sqlite3_bind_double(stmt_, index, std::get<double>(value));
    } else if (std::holds_alternative<std::string>(value)) {
      const auto& s = std::get<std::string>(value);
      rc = sqlite3_bind_text(stmt_, index, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    } else {
      rc = sqlite3_bind_null(stmt_, index);
    }
    if (rc != SQLITE_OK) fail(db_, rc, file_, "cannot bind a value");
  }
  void reset() override {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  bool step() override {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(db_, rc, file_, "statement failed");
  }
  int64_t changes() const override { return sqlite3_changes(db_); }
  int column_count() const override { return sqlite3_column_count(stmt_); }
  std::string column_name(int col) const override { return sqlite3_column_name(stmt_, col); }
  SqlValue value_at(int col) const override {
    switch (sqlite3_column_type(stmt_, col)) {
      case SQLITE_NULL:
        return std::monostate{};
      case SQLITE_INTEGER:
        return int_at(col);
      case SQLITE_FLOAT:
        return double_at(col);
      default:
        return text_at(col);
    }
  }
  int64_t int_at(int col) const override { return sqlite3_column_int64(stmt_, col); }
  double double_at(int col) const override {
    if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) return std::nan("");  // SQLite stores NaN as NULL
    return sqlite3_column_double(stmt_, col);
  }
  std::string text_at(int col) const override {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : std::string();
  }
  bool is_null(int col) const override { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  const std::string& file_;
};

class SqliteDatabase final : public Database {
 public:
  SqliteDatabase(const std::string& file, const StoreOptions& options)
      : Database(file, kSqliteDialect, options.max_retries) {
    const int rc = sqlite3_open_v2(
        file.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      db_ = nullptr;
      throw IoError(fmt::format("cannot open the database {}: {}", file, msg));
    }
    sqlite3_busy_timeout(db_, options.busy_timeout_ms);
    sqlite3_extended_result_codes(db_, 1);
    // WAL: readers never block the writer and a killed writer loses only its uncommitted transaction.
    // synchronous=NORMAL is durable against process crashes in WAL mode (only power loss can drop the tail).
    for (int attempt = 0;; ++attempt) {
      try {
        exec("PRAGMA journal_mode = WAL");
        break;
      } catch (const BusyError&) {
        if (attempt >= options.max_retries) throw;
        std::this_thread::sleep_for(std::chrono::milliseconds(20 * (attempt + 1)));
      }
    }
    exec("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON");
  }
  ~SqliteDatabase() override { sqlite3_close_v2(db_); }

  Statement prepare(const std::string& sql) override {
    return Statement(std::make_unique<SqliteStatement>(db_, sql, name()));
  }

  void exec(const std::string& sql) override {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      const std::string msg = err ? err : sqlite3_errstr(rc);
      sqlite3_free(err);
      if (is_busy(rc)) throw BusyError(fmt::format("database {}: {}", name(), msg));
      throw IoError(fmt::format("database {}: {}", name(), msg));
    }
  }

  SchemaStamp read_stamp() override {
    SchemaStamp s;
    s.application_id = pragma_int("application_id");
    s.version = pragma_int("user_version");
    auto tables = prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table'");
    s.has_tables = tables.step() && tables.int_at(0) > 0;
    return s;
  }
  void write_stamp(int application_id, int version) override {
    exec(fmt::format("PRAGMA application_id = {}", application_id));
    exec(fmt::format("PRAGMA user_version = {}", version));
  }
  void sync_identity(const std::string&, const std::string&) override {}  // INTEGER PRIMARY KEY follows max

 protected:
  void rollback() noexcept override { sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr); }

 private:
  int pragma_int(const std::string& pragma) {
    auto s = prepare("PRAGMA " + pragma);
    return s.step() ? static_cast<int>(s.int_at(0)) : 0;
  }

  sqlite3* db_ = nullptr;
};

}  // namespace

std::unique_ptr<Database> open_sqlite(const StoreUrl& url, const StoreOptions& options) {
  return std::make_unique<SqliteDatabase>(url.target, options);
}

}  // namespace vigil::store::detail
