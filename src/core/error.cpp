#include "vigil/core/error.h"

namespace vigil {

ExitCode exit_code_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return ExitCode::kUsage;
    case ErrorCode::kInvalidData:
      return ExitCode::kInvalidData;
    case ErrorCode::kNotFound:
      return ExitCode::kNotFound;
    case ErrorCode::kIo:
      return ExitCode::kIo;
    case ErrorCode::kUnavailable:
      return ExitCode::kUnavailable;
    case ErrorCode::kInterrupted:
      return ExitCode::kInterrupted;
    case ErrorCode::kInternal:
      break;
  }
  return ExitCode::kInternal;
}

int http_status_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 400;
    case ErrorCode::kInvalidData:
      return 422;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kUnavailable:
    case ErrorCode::kInterrupted:
      return 503;
    case ErrorCode::kIo:
    case ErrorCode::kInternal:
      break;
  }
  return 500;
}

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid argument";
    case ErrorCode::kInvalidData:
      return "invalid data";
    case ErrorCode::kNotFound:
      return "not found";
    case ErrorCode::kIo:
      return "i/o error";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kInterrupted:
      return "interrupted";
    case ErrorCode::kInternal:
      break;
  }
  return "internal error";
}

void Status::throw_if_error() const {
  if (ok_) return;
  switch (code_) {
    case ErrorCode::kInvalidArgument:
      throw InvalidArgument(message_);
    case ErrorCode::kInvalidData:
      throw DataError(message_);
    case ErrorCode::kNotFound:
      throw NotFound(message_);
    case ErrorCode::kIo:
      throw IoError(message_);
    case ErrorCode::kUnavailable:
      throw Unavailable(message_);
    case ErrorCode::kInterrupted:
      throw Interrupted(message_);
    case ErrorCode::kInternal:
      break;
  }
  throw InternalError(message_);
}

namespace detail {
void throw_internal(const char* file, int line, const char* cond, const std::string& msg) {
  throw InternalError(fmt::format("internal error at {}:{}: check `{}` failed{}{}", file, line, cond,
                                  msg.empty() ? "" : ": ", msg));
}
}  // namespace detail

}  // namespace vigil
