#pragma once
// The store's database layer, one interface over two engines: SQLite (a file in the workspace, the default)
// and PostgreSQL (shared by several machines). SQL is written once with `?` placeholders in the dialect both
// understand (upserts as INSERT ... ON CONFLICT, BIGINT and DOUBLE PRECISION columns); the few differences
// that remain are the strings of a Dialect. sqlite3.h and libpq-fe.h stay in their .cpp files.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "vigil/core/error.h"
#include "vigil/store/store.h"

namespace vigil::store::detail {

/// A value bound to a statement parameter or read from a column.
using SqlValue = std::variant<std::monostate, int64_t, double, std::string>;

/// What differs between the engines, as SQL fragments.
struct Dialect {
  const char* name;                    ///< "sqlite" or "postgresql"
  const char* begin;                   ///< starts a write transaction
  const char* identity_key;            ///< an integer primary key numbered by the database
  const char* insertion_order;         ///< a column ordering rows of runs and metrics as they were inserted
  const char* insertion_order_column;  ///< its declaration in CREATE TABLE ("" when the engine has one)
  const char* like_nocase;             ///< LIKE that ignores ASCII case (SQLite's LIKE does already)
  const char* is_number;               ///< fmt pattern: condition that text column {0} holds a number
  const char* to_number;  ///< fmt pattern: text column {0} as a number (NULL when it is none, or 0 in SQLite)
};
extern const Dialect kSqliteDialect;
extern const Dialect kPostgresDialect;

/// One engine's prepared statement (see Statement).
class StatementImpl {
 public:
  virtual ~StatementImpl() = default;
  virtual void bind(int index, const SqlValue& value) = 0;
  virtual void reset() = 0;
  virtual bool step() = 0;
  virtual int64_t changes() const = 0;
  virtual int column_count() const = 0;
  virtual std::string column_name(int col) const = 0;
  virtual SqlValue value_at(int col) const = 0;
  virtual int64_t int_at(int col) const = 0;
  virtual double double_at(int col) const = 0;
  virtual std::string text_at(int col) const = 0;
  virtual bool is_null(int col) const = 0;
};

/// A statement with typed binds and reads. Binds are 1-based, columns 0-based.
class Statement {
 public:
  explicit Statement(std::unique_ptr<StatementImpl> impl) : impl_(std::move(impl)) {}

  Statement& bind(int index, const SqlValue& value) {
    impl_->bind(index, value);
    return *this;
  }
  Statement& bind_all(const std::vector<SqlValue>& values);
  /// Makes the statement ready to run again with new values.
  Statement& reset() {
    impl_->reset();
    return *this;
  }
  /// Advances to the next row; false when done. Throws BusyError (lock conflict), Unavailable (connection
  /// lost) or IoError naming the database.
  bool step() { return impl_->step(); }
  /// Runs a statement that returns no rows; returns how many rows it changed.
  int64_t run();

  int column_count() const { return impl_->column_count(); }  ///< after the first step
  std::string column_name(int col) const { return impl_->column_name(col); }
  SqlValue value_at(int col) const { return impl_->value_at(col); }  ///< typed as the engine returned it
  int64_t int_at(int col) const { return impl_->int_at(col); }
  double double_at(int col) const { return impl_->double_at(col); }  ///< NULL reads as NaN
  std::string text_at(int col) const { return impl_->text_at(col); }
  bool is_null(int col) const { return impl_->is_null(col); }

 private:
  std::unique_ptr<StatementImpl> impl_;
};

/// What a database says about its own schema.
struct SchemaStamp {
  int application_id = 0;  ///< kApplicationId for a vigil store, 0 when unset
  int version = 0;         ///< schema version, 0 = none yet
  bool has_tables = false;
};

/// One connection. Not thread-safe: its owner serialises use (Store::Impl::mutex).
class Database {
 public:
  virtual ~Database() = default;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  virtual Statement prepare(const std::string& sql) = 0;
  /// Runs one or more statements without parameters.
  virtual void exec(const std::string& sql) = 0;
  /// Runs `fn` inside a write transaction. When another writer holds the lock (SQLite busy past the busy
  /// timeout; a PostgreSQL serialization failure or deadlock) the whole transaction is retried with back-off
  /// (fn must be safe to run again); any other exception rolls back and propagates.
  void write(const std::function<void()>& fn);

  virtual SchemaStamp read_stamp() = 0;
  /// Records the schema version (inside a write transaction).
  virtual void write_stamp(int application_id, int version) = 0;
  /// write() for schema changes: waits until no other connection is changing the schema, then runs `fn` in
  /// a transaction that sees everything they did (SQLite's write lock does both already).
  virtual void write_schema(const std::function<void()>& fn) { write(fn); }
  /// After rows were copied in with explicit ids: the next generated id of table.column follows them.
  virtual void sync_identity(const std::string& table, const std::string& column) = 0;

  /// The file, or the URL with its password hidden: what messages name.
  const std::string& name() const { return name_; }
  const Dialect& dialect() const { return dialect_; }

 protected:
  Database(std::string name, const Dialect& dialect, int max_retries)
      : name_(std::move(name)), dialect_(dialect), max_retries_(max_retries) {}
  virtual void rollback() noexcept = 0;

 private:
  std::string name_;
  const Dialect& dialect_;
  int max_retries_;
};

/// Another connection holds the lock: Database::write retries the transaction; elsewhere it reaches the
/// caller as Unavailable (a 503 at the HTTP edge, exit 6 on the command line: try again).
struct BusyError : Unavailable {
  explicit BusyError(std::string m) : Unavailable(std::move(m)) {}
};

/// Where a store lives, from StoreOptions::url, else $VIGIL_STORE, else <workspace>/vigil.db.
struct StoreUrl {
  bool postgres = false;
  std::string target;  ///< the SQLite file, or the libpq connection URL
  std::string shown;   ///< for messages: the file, or the URL without its password
};
StoreUrl resolve_store_url(const Workspace& ws, const StoreOptions& options);
/// `postgresql://user:secret@host/db?password=x` -> `postgresql://user:***@host/db?password=***`.
std::string redact_url(const std::string& url);

/// Opens a connection to the store at `url` (SQLite: WAL, synchronous=NORMAL, foreign keys on).
std::unique_ptr<Database> open_database(const StoreUrl& url, const StoreOptions& options);
std::unique_ptr<Database> open_sqlite(const StoreUrl& url, const StoreOptions& options);    // sqlite_db.cpp
std::unique_ptr<Database> open_postgres(const StoreUrl& url, const StoreOptions& options);  // pg_db.cpp

}  // namespace vigil::store::detail
