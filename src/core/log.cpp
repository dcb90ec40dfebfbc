#include "vigil/core/log.h"

#include <spdlog/sinks/daily_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <vector>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"

namespace vigil {

spdlog::level::level_enum parse_log_level(const std::string& name) {
  static const std::pair<const char*, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug}, {"info", spdlog::level::info},
      {"warn", spdlog::level::warn},   {"error", spdlog::level::err},   {"off", spdlog::level::off}};
  for (const auto& [n, l] : kLevels) {
    if (name == n) return l;
  }
  throw InvalidArgument(
      fmt::format("expected a log level (trace, debug, info, warn, error, off), got '{}'", name));
}

void init_logging(const LogOptions& options) {
  const auto level = parse_log_level(options.level);
  std::vector<spdlog::sink_ptr> sinks;
  if (options.console) {
    auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    console->set_pattern("%^%l%$: %v");
    console->set_level(level);
    sinks.push_back(console);
  }
  if (!options.log_dir.empty()) {
    ensure_dir(options.log_dir);
    auto file = std::make_shared<spdlog::sinks::daily_file_sink_mt>(
        (options.log_dir / "vigil.log").string(), 0, 0, false, static_cast<uint16_t>(options.keep_days));
    file->set_pattern("%Y-%m-%d %H:%M:%S.%e [%P:%t] %l %v");
    file->set_level(std::min(level, spdlog::level::info));
    sinks.push_back(file);
  }
  auto logger = std::make_shared<spdlog::logger>("vigil", sinks.begin(), sinks.end());
  logger->set_level(std::min(level, options.log_dir.empty() ? level : spdlog::level::info));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
}

}  // namespace vigil
