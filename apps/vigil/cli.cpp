#include "cli.h"

#include <cctype>
#include <cstdlib>

namespace vigil::cli {

config::Source Context::config_source() const {
  config::Source s = config;
  s.overrides.insert(s.overrides.begin(), env_overrides.begin(), env_overrides.end());
  s.overrides.insert(s.overrides.end(), flag_overrides.begin(), flag_overrides.end());
  return s;
}

std::string Context::explain_env(const std::string& message) const {
  std::string named;
  for (const auto& o : env_overrides) {
    const std::string key = o.substr(0, o.find('='));
    const std::string value = o.substr(key.size() + 1);
    // Errors name the key ("config key 'port'") or quote the value ("got 'often'").
    if (message.find(key) == std::string::npos && message.find("'" + value + "'") == std::string::npos)
      continue;
    named += (named.empty() ? "" : ", ") + env_name(key) + "=" + value;
  }
  return named.empty() ? message : message + " (set by the environment: " + named + ")";
}

std::string env_name(const std::string& key) {
  std::string name = "VIGIL_";
  for (char c : key) name += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

void read_env_overrides(const CLI::App* sub, Context& ctx) {
  auto it = ctx.flag_keys.find(sub);
  if (it == ctx.flag_keys.end()) return;
  for (const auto& key : it->second) {
    const char* value = std::getenv(env_name(key).c_str());
    if (value != nullptr && *value != '\0') ctx.env_overrides.push_back(key + "=" + value);
  }
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
  ctx.flag_keys[sub].push_back(key);
  return sub->add_option_function<std::string>(
      flag, [&ctx, key](const std::string& v) { ctx.flag_overrides.push_back(key + "=" + v); },
      help + " (config key: " + key + ")");
}

void add_precision_options(CLI::App* sub, Context& ctx, const std::string& prefix,
                           const std::string& calibration_default) {
  add_override(
      sub, ctx, "--precision", prefix + "precision",
      "fp32 (default); bf16 on CPUs with AVX512_BF16/AMX; int8 for ResNet backbones on CPUs with VNNI "
      "(calibrated on --calibration)");
  add_override(sub, ctx, "--calibration", prefix + "calibration",
               "int8: representative images to calibrate on (file, folder or @LIST; e.g. training images; "
               "default: " +
                   calibration_default + ")");
  add_override(sub, ctx, "--calibration-images", prefix + "calibration_images",
               "int8: how many of them to use (default 16)");
}

CLI::Option* add_override_flag(CLI::App* sub, Context& ctx, const std::string& flag, const std::string& key,
                               const std::string& help) {
  ctx.flag_keys[sub].push_back(key);
  return sub->add_flag_callback(
      flag, [&ctx, key] { ctx.flag_overrides.push_back(key + "=true"); },
      help + " (config key: " + key + ")");
}

}  // namespace vigil::cli
