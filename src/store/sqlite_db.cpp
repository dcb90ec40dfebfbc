#include "sqlite_db.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <thread>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"

namespace vigil::store::detail {

bool is_busy(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

namespace {

[[noreturn]] void fail(sqlite3* db, int rc, const std::string& file, const std::string& what) {
  const std::string msg = fmt::format("database {}: {}: {}", file, what, db ? sqlite3_errmsg(db) : "");
  if (is_busy(rc)) throw BusyError(msg);
  throw IoError(msg);
}

}  // namespace

Statement::Statement(sqlite3* db, const std::string& sql, const std::string& file) : db_(db), file_(file) {
  const int rc = sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &stmt_, nullptr);
  if (rc != SQLITE_OK) fail(db_, rc, file_, "cannot prepare a statement");
}

Statement::~Statement() {
  sqlite3_finalize(stmt_);
}

Statement& Statement::bind(int index, const SqlValue& value) {
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
  return *this;
}

Statement& Statement::bind_all(const std::vector<SqlValue>& values) {
  for (size_t i = 0; i < values.size(); ++i) bind(static_cast<int>(i) + 1, values[i]);
  return *this;
}

Statement& Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  return *this;
}

bool Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  fail(db_, rc, file_, "statement failed");
}

void Statement::run() {
  while (step()) {
  }
}

int64_t Statement::int_at(int col) const {
  return sqlite3_column_int64(stmt_, col);
}

double Statement::double_at(int col) const {
  if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) return std::nan("");
  return sqlite3_column_double(stmt_, col);
}

std::string Statement::text_at(int col) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : std::string();
}

bool Statement::is_null(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

Database::Database(const std::filesystem::path& file, int busy_timeout_ms, int max_retries)
    : file_(to_utf8(file)), max_retries_(max_retries) {
  const int rc = sqlite3_open_v2(file_.c_str(), &db_,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw IoError(fmt::format("cannot open the database {}: {}", file_, msg));
  }
  sqlite3_busy_timeout(db_, busy_timeout_ms);
  sqlite3_extended_result_codes(db_, 1);
}

Database::~Database() {
  sqlite3_close_v2(db_);
}

void Database::exec(const std::string& sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    const std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    if (is_busy(rc)) throw BusyError(fmt::format("database {}: {}", file_, msg));
    throw IoError(fmt::format("database {}: {}", file_, msg));
  }
}

void Database::write(const std::function<void()>& fn) {
  std::string last;
  for (int attempt = 0; attempt <= max_retries_; ++attempt) {
    if (attempt > 0) {
      // Back off with a little jitter from the attempt number and address: no clock-seeded randomness.
      const int ms = std::min(1000, 10 << std::min(attempt, 6)) +
                     static_cast<int>(reinterpret_cast<uintptr_t>(this) % 17);
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    }
    try {
      exec("BEGIN IMMEDIATE");
    } catch (const BusyError& e) {
      last = e.what();
      continue;
    }
    try {
      fn();
      exec("COMMIT");
      return;
    } catch (const BusyError& e) {
      last = e.what();
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }
  throw Unavailable(fmt::format("{} (still busy after {} retries: another process holds the database)", last,
                                max_retries_));
}

}  // namespace vigil::store::detail
