// `vigil serve`: the model over HTTP (the guns seed's routes, /v1 JSON API, KServe v2, /metrics), the web
// UI and, with --cameras, the cameras of a cameras.yaml (live frames, MJPEG, events), until SIGINT/SIGTERM
// (graceful: accepted requests are answered, open events end as `stopped`, then exit 0). SIGHUP reloads the
// model.

#include <fmt/core.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <set>

#include "cli.h"
#include "vigil/core/error.h"
#include "vigil/core/interrupt.h"
#include "vigil/serve/server.h"

namespace vigil::cli {

namespace {

struct ServeArgs {
  std::vector<std::string> api_keys, cors_origins, class_names;
  std::vector<std::string> unknown_env;  ///< VIGIL_* variables set that no flag reads (said once at start)
};

/// VIGIL_* variables in the environment that nothing reads: a misspelt VIGIL_SCORE_THRESHOLDD would otherwise
/// be ignored without a word.
std::vector<std::string> unknown_env(const Context& ctx, const CLI::App* sub) {
  std::set<std::string> known = {"VIGIL_WORKSPACE",   "VIGIL_STORE",      "VIGIL_LOG_LEVEL",
                                 "VIGIL_THREADS",     "VIGIL_API_KEY",    "VIGIL_CORS_ORIGIN",
                                 "VIGIL_CLASS_NAMES", "VIGIL_FACEAPI_DIR"};
  if (auto it = ctx.flag_keys.find(sub); it != ctx.flag_keys.end())
    for (const auto& key : it->second) known.insert(env_name(key));
  std::vector<std::string> unknown;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    if (name.rfind("VIGIL_", 0) == 0 && known.count(name) == 0) unknown.push_back(name);
  }
  return unknown;
}

/// The repeatable flags from VIGIL_API_KEY, VIGIL_CORS_ORIGIN and VIGIL_CLASS_NAMES (comma-separated) when
/// the command line gave none of them: flags win over the environment.
void read_env_lists(ServeArgs& a) {
  auto read = [](const char* name, std::vector<std::string>& into) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0' || !into.empty()) return;
    std::string item;
    for (const char* c = value;; ++c) {
      if (*c == ',' || *c == '\0') {
        if (!item.empty()) into.push_back(item);
        item.clear();
        if (*c == '\0') break;
      } else if (*c != ' ') {
        item += *c;
      }
    }
  };
  read("VIGIL_API_KEY", a.api_keys);
  read("VIGIL_CORS_ORIGIN", a.cors_origins);
  read("VIGIL_CLASS_NAMES", a.class_names);
}

/// Options from the config file, VIGIL_* variables, --set and flags; an error caused by a variable names it.
serve::ServeOptions load_options(const Context& ctx, bool allow_no_model) {
  try {
    if (!allow_no_model) return ctx.options<serve::ServeOptions>();
    // Not ctx.options<>(): its validate() would refuse the missing model before allow_no_model is set.
    serve::ServeOptions options;
    options.allow_no_model = true;
    config::bind(config::build_tree(ctx.config_source()), options);
    return options;
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(ctx.explain_env(e.what()));
  }
}

/// What `vigil serve` and `vigil ui` both fill in: the workspace, repeatable flags, the access log.
void finish_options(const Context& ctx, const ServeArgs& a, serve::ServeOptions& options) {
  // Registered models and the Experiments/Models pages read the workspace; a config's own key wins.
  if (options.workspace.empty())
    options.workspace = std::filesystem::absolute(ctx.workspace().root()).string();
  options.api_keys.insert(options.api_keys.end(), a.api_keys.begin(), a.api_keys.end());
  options.cors_origins.insert(options.cors_origins.end(), a.cors_origins.begin(), a.cors_origins.end());
  if (!a.class_names.empty()) options.class_names = a.class_names;
  if (options.access_log.empty()) options.access_log = (ctx.workspace().logs_dir() / "access.log").string();
  options.validate();
}

int run_server(const serve::ServeOptions& options, const char* command,
               const std::function<std::string(const std::string& url)>& banner) {
  serve::Server server(options);
  const int port = server.bind();
  const std::string host = options.host == "0.0.0.0" ? "localhost" : options.host;
  fmt::print(stderr, "vigil {}: {}\n", command, banner(fmt::format("http://{}:{}", host, port)));
  std::fflush(stderr);
  server.run();
  // A stop asked for by SIGINT/SIGTERM is the normal end of a server, not an interruption of work.
  if (interrupt_requested()) clear_interrupt();
  fmt::print(stderr, "vigil {}: stopped\n", command);
  return 0;
}

/// After parsing: the VIGIL_* variables of the command's flags and lists, and the ones nothing reads.
void read_environment(Context& ctx, const CLI::App* sub, ServeArgs& a) {
  read_env_overrides(sub, ctx);
  read_env_lists(a);
  a.unknown_env = unknown_env(ctx, sub);
}

void warn_unknown_env(const ServeArgs& a) {
  for (const auto& name : a.unknown_env)
    spdlog::warn("{} is set but vigil reads no such variable (see `vigil serve --help`); ignored", name);
}

int run_serve(const Context& ctx, const ServeArgs& a) {
  warn_unknown_env(a);
  auto options = load_options(ctx, false);
  finish_options(ctx, a, options);
  return run_server(options, "serve", [&](const std::string& url) {
    return fmt::format(
        "listening on {} (UI {}/ui/){}", url, url,
        options.cameras.empty() ? "" : fmt::format("; cameras of {} at {}/v1/cameras", options.cameras, url));
  });
}

int run_ui(const Context& ctx, const ServeArgs& a) {
  warn_unknown_env(a);
  serve::ServeOptions options = load_options(ctx, true);
  options.instances = 1;  // the batcher's worker only waits: there is nothing to infer with
  finish_options(ctx, a, options);
  return run_server(options, "ui", [&](const std::string& url) {
    return fmt::format("workspace {}; listening on {}/ui/#experiments", options.workspace, url);
  });
}

/// The listening, security and UI flags `vigil serve` and `vigil ui` share.
void add_http_options(CLI::App* sub, Context& ctx, ServeArgs& a) {
  add_override(sub, ctx, "--host", "host", "address to listen on (default 127.0.0.1; 0.0.0.0 = every)");
  add_override(sub, ctx, "--port,-p", "port", "port (default 8080; 0 = any free port)");
  add_override(sub, ctx, "--port-file", "port_file", "write the bound port to this file");
  sub->add_option("--api-key", a.api_keys,
                  "accept this API key (repeatable); without any, no authentication");
  add_override(sub, ctx, "--api-keys-file", "api_keys_file", "file with one API key per line");
  sub->add_option("--cors-origin", a.cors_origins, "allow this browser origin (repeatable; '*' = any)");
  add_override(sub, ctx, "--access-log", "access_log",
               "access log file, '-' = stderr, 'off' (default: <workspace>/logs/access.log)");
  add_override(sub, ctx, "--web-dir", "web_dir",
               "serve the UI from this folder instead of the built-in copy");
}

}  // namespace

void register_serve(CLI::App& app, Context& ctx) {
  static ServeArgs a;
  auto* sub =
      app.add_subcommand("serve", "serve a model over HTTP (REST, KServe v2, metrics) with the web UI");
  add_config_options(sub, ctx);
  add_override(
      sub, ctx, "--model,-m", "model",
      "vigil model file, a torchvision .pth with --arch, or a registered model NAME@alias, NAME/k, NAME");
  add_override(sub, ctx, "--arch", "arch", "architecture of a torchvision .pth file");
  add_override(sub, ctx, "--num-classes", "num_classes", ".pth: classes of the head (0 = the file's)");
  add_override(sub, ctx, "--name", "name", "served model name (default: the file's stem)");
  add_http_options(sub, ctx, a);
  add_override(sub, ctx, "--http-threads", "http_threads", "HTTP worker threads (default 8)");
  add_override(sub, ctx, "--max-batch", "max_batch", "images per forward pass (default 8)");
  add_precision_options(sub, ctx, "", "none, required");
  add_override(sub, ctx, "--max-queue-delay-ms", "max_queue_delay_ms",
               "how long a waiting image waits for others to batch with (default 5)");
  add_override(sub, ctx, "--instances", "instances", "inference workers, each with a model copy (default 1)");
  add_override(sub, ctx, "--threads-per-instance", "threads_per_instance",
               "LibTorch threads per worker (default: the cores shared among them)");
  add_override(sub, ctx, "--blas-threads", "blas_threads",
               "OpenBLAS threads (default: 1 or one per core, whichever runs the model faster at load)");
  add_override(sub, ctx, "--queue-capacity", "queue_capacity",
               "images waiting at most, then 503 (default 64)");
  add_override(sub, ctx, "--max-body-mb", "max_body_mb", "request body limit in MiB, then 413 (default 10)");
  add_override(sub, ctx, "--max-pixels", "max_pixels", "image pixel limit, then 413 (default 40000000)");
  add_override(sub, ctx, "--max-batch-images", "max_batch_images", "images per batch request (default 32)");
  add_override(sub, ctx, "--score-threshold", "score_threshold",
               "POST /predict/ draws boxes above this (0.7)");
  add_override(sub, ctx, "--rate-limit", "rate_limit", "per-client limit, e.g. 10/minute (default none)");
  add_override(sub, ctx, "--read-timeout-s", "read_timeout_s",
               "seconds a client may take to send (default 30)");
  sub->add_option("--class-names", a.class_names,
                  ".pth: class names in head order (detectors: without background)")
      ->delimiter(',');
  add_override(sub, ctx, "--device", "device", "cpu (default) or cuda");
  add_override(
      sub, ctx, "--cameras", "cameras",
      "watch the cameras of this cameras.yaml (the format of `vigil watch --config`); --model is then "
      "optional");
  add_override(
      sub, ctx, "--follow-alias-s", "follow_alias_s",
      "re-resolve a served NAME@alias this often and hot-reload another version (default 5; 0 = off)");
  add_override(sub, ctx, "--max-streams", "max_streams", "MJPEG and event streams open at once (default 8)");
  add_override(sub, ctx, "--log-images", "log_images",
               "fraction of inputs kept as JPEG in the prediction log, for review (default 0)");
  add_override(sub, ctx, "--log-retention-days", "log_retention_days",
               "prune prediction log rows older than this (default 30; 0 = never)");
  add_override(sub, ctx, "--monitor-reference", "monitor_reference",
               "check drift on a schedule against this profile (vigil monitor profile), dataset folder, or "
               "'model': the served version's own profile, written by training");
  add_override(sub, ctx, "--monitor-every-s", "monitor_every_s",
               "seconds between drift checks (default 3600)");
  add_override(sub, ctx, "--monitor-window-s", "monitor_window_s",
               "seconds of traffic a drift check compares (default 86400)");
  add_override(sub, ctx, "--monitor-webhook", "monitor_webhook", "POST drift and drift_resolved alerts here");
  add_override(sub, ctx, "--registry-webhook", "registry_webhook",
               "POST each registry change (new version, alias moved or deleted) here");
  add_override(sub, ctx, "--retrain-config", "retrain_config",
               "training config of POST /v1/retrain and /retrain jobs (default: retraining off)");
  add_override(sub, ctx, "--upload-dataset", "upload_dataset",
               "dataset POST /upload adds versions to (default uploads)");
  add_override(sub, ctx, "--positive-class", "positive_class",
               "class whose probability POST /predict answers (default: the class named like Accident)");
  sub->footer(
      "Routes: GET / and POST /predict/ (the guns seed's), POST /predict, /upload, /retrain, GET "
      "/prediction-stats, /prediction-history, /training-data-sources (the accident seed's), POST "
      "/v1/predict, /v1/predict/batch, GET "
      "/v1/models, "
      "/v1/stats, /metrics, KServe v2 under /v2, runs and registered models under /v1/runs and "
      "/v1/registry, cameras and events under /v1/cameras and /v1/events (with --cameras), the UI under "
      "/ui/. "
      "See docs/serve-api.md.\n"
      "Environment: every flag above is also read from VIGIL_<FLAG> (VIGIL_MODEL, VIGIL_SCORE_THRESHOLD, "
      "VIGIL_MAX_PIXELS, VIGIL_INSTANCES, ...; VIGIL_API_KEY, VIGIL_CORS_ORIGIN and VIGIL_CLASS_NAMES "
      "comma-separated), and VIGIL_LOG_LEVEL, VIGIL_THREADS, VIGIL_WORKSPACE for the global flags. Order: "
      "--config < environment < --set < flags.");
  sub->callback([&ctx, sub] {
    read_environment(ctx, sub, a);
    ctx.uses_workspace = true;
    ctx.action = [&ctx] { return run_serve(ctx, a); };
  });
}

void register_ui(CLI::App& app, Context& ctx) {
  static ServeArgs a;
  auto* sub = app.add_subcommand(
      "ui", "web UI for the workspace's runs and registered models (no model served; see `vigil serve`)");
  add_config_options(sub, ctx);
  add_http_options(sub, ctx, a);
  sub->footer(
      "Pages: Experiments (runs: filter, sort, curves, compare) and Models (versions, lineage, aliases). "
      "API: /v1/experiments, /v1/runs, /v1/registry/models; see docs/serve-api.md. The flags are also read "
      "from VIGIL_<FLAG> variables, as for `vigil serve`.");
  sub->callback([&ctx, sub] {
    read_environment(ctx, sub, a);
    ctx.uses_workspace = true;
    ctx.action = [&ctx] { return run_ui(ctx, a); };
  });
}

}  // namespace vigil::cli
