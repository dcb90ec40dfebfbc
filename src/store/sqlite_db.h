#pragma once
// A thin RAII layer over sqlite3 for the store: one connection, prepared statements with typed binds and
// reads, and write transactions that survive other processes holding the lock (busy timeout, then retries
// with back-off). sqlite3.h stays in src/store/.

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "vigil/core/error.h"

namespace vigil::store::detail {

/// A value bound to a statement parameter.
using SqlValue = std::variant<std::monostate, int64_t, double, std::string>;

class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql, const std::string& file);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int index, const SqlValue& value);  ///< 1-based
  Statement& bind_all(const std::vector<SqlValue>& values);
  /// Makes the statement ready to run again with new values.
  Statement& reset();
  /// Advances to the next row; false when done. Throws IoError (busy, disk) naming the database file.
  bool step();
  /// Runs a statement that returns no rows.
  void run();

  int64_t int_at(int col) const;
  double double_at(int col) const;  ///< NULL reads as NaN (SQLite stores NaN as NULL)
  std::string text_at(int col) const;
  bool is_null(int col) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  const std::string& file_;
};

class Database {
 public:
  Database(const std::filesystem::path& file, int busy_timeout_ms, int max_retries);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  Statement prepare(const std::string& sql) { return Statement(db_, sql, file_); }
  void exec(const std::string& sql);
  /// Runs `fn` inside BEGIN IMMEDIATE ... COMMIT; on SQLITE_BUSY past the busy timeout the whole transaction
  /// is retried (fn must be safe to run again); any exception rolls back and propagates.
  void write(const std::function<void()>& fn);
  const std::string& file() const { return file_; }
  sqlite3* handle() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
  std::string file_;
  int max_retries_;
};

/// True for the error codes that mean "another connection holds the lock".
bool is_busy(int rc);

/// SQLite reported busy past the busy timeout: Database::write retries the transaction; elsewhere it reaches
/// the caller as Unavailable (a 503 at the HTTP edge, exit 6 on the command line: try again).
struct BusyError : Unavailable {
  explicit BusyError(std::string m) : Unavailable(std::move(m)) {}
};

}  // namespace vigil::store::detail
