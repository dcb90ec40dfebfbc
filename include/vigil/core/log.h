#pragma once
/// Logging: spdlog to the console (stderr, so stdout stays clean for command output) and to a daily-rotating
/// file in the workspace's logs/ folder. Library code logs through spdlog's default logger.

#include <spdlog/spdlog.h>

#include <filesystem>
#include <string>

namespace vigil {

struct LogOptions {
  std::string level = "info";     ///< trace, debug, info, warn, error, off
  std::filesystem::path log_dir;  ///< empty: console only
  bool console = true;
  int keep_days = 14;  ///< rotated files kept
};

/// Installs the default logger. Safe to call again (e.g. once the workspace is known).
void init_logging(const LogOptions& options);
/// Parses a level name; throws InvalidArgument listing the valid names.
spdlog::level::level_enum parse_log_level(const std::string& name);

}  // namespace vigil
