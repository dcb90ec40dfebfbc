#pragma once
/// Error taxonomy (DESIGN.md section 5).
///
/// Policy: typed exceptions inside, mapped to a number once at each edge.
///  - bugs: VIGIL_ASSERT -> InternalError carrying file:line;
///  - bad input at an API boundary: VIGIL_CHECK -> InvalidArgument "expected ..., got ...";
///  - expected failures (missing file, corrupt data, busy database, dropped stream): the Error subclasses
///    below, each with an ErrorCode; Status / Result<T> only where a failure is a normal per-item outcome
///    (one bad image in a batch, one camera down).
/// Library code throws and never picks an exit code or an HTTP status. The edges map an ErrorCode exactly
/// once: exit_code_for() in apps/vigil/main.cpp, http_status_for() in the one handler wrapper of src/serve/.
/// A new kind of failure is a new ErrorCode here, with its row in both tables, never a string to compare.

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace vigil {

/// Documented process exit codes (README "Exit codes").
enum class ExitCode : int {
  kOk = 0,
  kInternal = 1,       ///< a bug: please report it (message carries file:line)
  kUsage = 2,          ///< bad command line or configuration (unknown key, bad value)
  kInvalidData = 3,    ///< input data failed validation or could not be used
  kNotFound = 4,       ///< a named file, dataset or version does not exist
  kIo = 5,             ///< reading or writing failed (disk full, permissions)
  kUnavailable = 6,    ///< a resource is busy or not there now (locked database, model loading): try again
  kInterrupted = 130,  ///< stopped by Ctrl-C / SIGTERM after saving what could be saved
};

/// What went wrong, independent of where it is reported.
enum class ErrorCode {
  kInternal,
  kInvalidArgument,
  kInvalidData,
  kNotFound,
  kIo,
  kUnavailable,
  kInterrupted
};

/// Maps an error category to the process exit code documented in the README.
ExitCode exit_code_for(ErrorCode code);
/// Maps an error category to the HTTP status the server answers with:
/// invalid argument 400, invalid data 422, not found 404, unavailable 503 (with Retry-After), interrupted 503
/// (the server is stopping), i/o and internal 500.
int http_status_for(ErrorCode code);
/// Short name of an error category, e.g. "not found".
const char* error_code_name(ErrorCode code);

/// Base of every exception vigil throws on purpose. what() is the user-facing message.
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, std::string message) : std::runtime_error(std::move(message)), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

/// Bad configuration or arguments ("expected ..., got ...").
class InvalidArgument : public Error {
 public:
  explicit InvalidArgument(std::string m) : Error(ErrorCode::kInvalidArgument, std::move(m)) {}
};
/// Input data that cannot be used (corrupt file, empty dataset).
class DataError : public Error {
 public:
  explicit DataError(std::string m) : Error(ErrorCode::kInvalidData, std::move(m)) {}
};
class NotFound : public Error {
 public:
  explicit NotFound(std::string m) : Error(ErrorCode::kNotFound, std::move(m)) {}
};
class IoError : public Error {
 public:
  explicit IoError(std::string m) : Error(ErrorCode::kIo, std::move(m)) {}
};
/// Busy or temporarily absent (a locked database after its retries, a model still loading): retrying later
/// may succeed.
class Unavailable : public Error {
 public:
  explicit Unavailable(std::string m) : Error(ErrorCode::kUnavailable, std::move(m)) {}
};
class Interrupted : public Error {
 public:
  explicit Interrupted(std::string m) : Error(ErrorCode::kInterrupted, std::move(m)) {}
};
/// A broken invariant inside vigil; the message names file:line.
class InternalError : public Error {
 public:
  explicit InternalError(std::string m) : Error(ErrorCode::kInternal, std::move(m)) {}
};

/// An expected failure as a value. Default-constructed Status is OK.
class Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : ok_(false), code_(code), message_(std::move(message)) {}
  static Status ok() { return {}; }
  bool is_ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  /// Throws the matching Error subclass when not OK.
  void throw_if_error() const;

 private:
  bool ok_ = true;
  ErrorCode code_ = ErrorCode::kInternal;
  std::string message_;
};

/// A value or the Status explaining why there is none.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {
    if (std::get<Status>(v_).is_ok()) v_ = Status(ErrorCode::kInternal, "Result built from an OK Status");
  }
  bool is_ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & {
    if (!is_ok()) std::get<Status>(v_).throw_if_error();
    return std::get<T>(v_);
  }
  const T& value() const& {
    if (!is_ok()) std::get<Status>(v_).throw_if_error();
    return std::get<T>(v_);
  }
  T&& value() && {
    if (!is_ok()) std::get<Status>(v_).throw_if_error();
    return std::move(std::get<T>(v_));
  }
  T* operator->() { return &value(); }
  T& operator*() { return value(); }

 private:
  std::variant<T, Status> v_;
};

namespace detail {
[[noreturn]] void throw_internal(const char* file, int line, const char* cond, const std::string& msg);
}  // namespace detail

}  // namespace vigil

/// A broken invariant (a bug). Throws InternalError with file:line.
#define VIGIL_ASSERT(cond, ...)                                                                           \
  do {                                                                                                    \
    if (!(cond)) ::vigil::detail::throw_internal(__FILE__, __LINE__, #cond, fmt::format("" __VA_ARGS__)); \
  } while (0)

/// Bad input at an API boundary. Throws InvalidArgument; write the message as "expected ..., got ...".
#define VIGIL_CHECK(cond, ...)                                             \
  do {                                                                     \
    if (!(cond)) throw ::vigil::InvalidArgument(fmt::format(__VA_ARGS__)); \
  } while (0)
