#pragma once
// Shared state of the vigil command line: global flags, the config source of the chosen subcommand, and the
// action it selected. Subcommands register themselves with one register_*() function each.

#include <CLI/CLI.hpp>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "vigil/core/config.h"
#include "vigil/core/workspace.h"

namespace vigil::cli {

struct Context {
  std::string workspace_arg;
  int threads = 0;                ///< 0 = every core
  int torch_default_threads = 0;  ///< what LibTorch chose by itself, before configure_threads
  std::string log_level = "info";
  config::Source config;                    ///< --config FILE and --set overrides of the chosen subcommand
  std::vector<std::string> flag_overrides;  ///< explicit flags, applied after --set
  /// VIGIL_<KEY> variables of the chosen subcommand's flags (read_env_overrides): after the file, before
  /// --set
  std::vector<std::string> env_overrides;
  std::map<const CLI::App*, std::vector<std::string>>
      flag_keys;                ///< the config key of every add_override flag
  bool uses_workspace = false;  ///< the command writes into the workspace (so it gets a log file there)
  std::function<int()> action;  ///< what the chosen subcommand does; returns the exit code

  Workspace workspace() const { return Workspace::resolve(workspace_arg); }
  /// The config file, then VIGIL_* variables, then --set, then explicit flags.
  config::Source config_source() const;
  /// Appends "(set by VIGIL_X=...)" to an options error that names a key the environment set, so a
  /// container's bad variable is found by its name; returns the message unchanged otherwise.
  std::string explain_env(const std::string& message) const;
  /// Resolves an Options struct from the config source.
  template <class O>
  O options() const {
    return config::load<O>(config_source());
  }
};

/// The environment variable of a config key: VIGIL_ and the key upper-cased, dots as underscores
/// (score_threshold -> VIGIL_SCORE_THRESHOLD).
std::string env_name(const std::string& key);
/// For every flag of `sub` added by add_override/add_override_flag, a set VIGIL_<KEY> variable becomes an
/// override between the config file and --set, so flags win over the environment (the guns seed configures
/// its container by variables; vigil reads every serve flag the same way).
void read_env_overrides(const CLI::App* sub, Context& ctx);

/// Adds --config and --set to a subcommand that is configured by an Options struct.
void add_config_options(CLI::App* sub, Context& ctx);
/// Adds a flag whose value becomes the override `key=value` (so flags, YAML and --set fill the same struct).
CLI::Option* add_override(CLI::App* sub, Context& ctx, const std::string& flag, const std::string& key,
                          const std::string& help);
/// --precision, --calibration and --calibration-images, whose keys are `prefix` + the PredictOptions field
/// (predict and serve: "", evaluate: "predict."); `calibration_default` says where int8 calibrates without
/// --calibration.
void add_precision_options(CLI::App* sub, Context& ctx, const std::string& prefix,
                           const std::string& calibration_default);
/// A boolean flag that sets `key=true` when given.
CLI::Option* add_override_flag(CLI::App* sub, Context& ctx, const std::string& flag, const std::string& key,
                               const std::string& help);

/// Sets LibTorch's intra-op threads (default: every core; LibTorch itself defaults to 1 here) and returns
/// the count LibTorch had chosen on its own.
int configure_threads(int requested);

void register_version(CLI::App& app, Context& ctx);
void register_doctor(CLI::App& app, Context& ctx);
void register_data(CLI::App& app, Context& ctx);
void register_weights(CLI::App& app, Context& ctx);
void register_predict(CLI::App& app, Context& ctx);
void register_train(CLI::App& app, Context& ctx);
void register_evaluate(CLI::App& app, Context& ctx);
void register_serve(CLI::App& app, Context& ctx);
void register_runs(CLI::App& app, Context& ctx);
void register_models(CLI::App& app, Context& ctx);
void register_ui(CLI::App& app, Context& ctx);
void register_pipeline(CLI::App& app, Context& ctx);
void register_watch(CLI::App& app, Context& ctx);
void register_events(CLI::App& app, Context& ctx);
void register_monitor(CLI::App& app, Context& ctx);
void register_retrain(CLI::App& app, Context& ctx);
void register_store(CLI::App& app, Context& ctx);

}  // namespace vigil::cli
