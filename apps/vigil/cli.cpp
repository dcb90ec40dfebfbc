#include "cli.h"

namespace vigil::cli {

config::Source Context::config_source() const {
  config::Source s = config;
  s.overrides.insert(s.overrides.end(), flag_overrides.begin(), flag_overrides.end());
  return s;
}

void add_config_options(CLI::App* sub, Context& ctx) {
  sub->add_option("--config", ctx.config.file, "YAML file with this command's options")
      ->check(CLI::ExistingFile);
  sub->add_option("--config-key", ctx.config.key,
                  "read the options from this key of --config (e.g. `train` in a DVC params.yaml)");
  sub->add_option("--set", ctx.config.overrides, "override one option: --set key=value (repeatable)")
      ->allow_extra_args(false);
}

CLI::Option* add_override(CLI::App* sub, Context& ctx, const std::string& flag, const std::string& key,
                          const std::string& help) {
  return sub->add_option_function<std::string>(
      flag, [&ctx, key](const std::string& v) { ctx.flag_overrides.push_back(key + "=" + v); },
      help + " (config key: " + key + ")");
}

CLI::Option* add_override_flag(CLI::App* sub, Context& ctx, const std::string& flag, const std::string& key,
                               const std::string& help) {
  return sub->add_flag_callback(
      flag, [&ctx, key] { ctx.flag_overrides.push_back(key + "=true"); },
      help + " (config key: " + key + ")");
}

}  // namespace vigil::cli
