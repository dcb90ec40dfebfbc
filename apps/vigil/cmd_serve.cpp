// `vigil serve`: the model over HTTP (the guns seed's routes, /v1 JSON API, KServe v2, /metrics), the web
// UI and, with --cameras, the cameras of a cameras.yaml (live frames, MJPEG, events), until SIGINT/SIGTERM
// (graceful: accepted requests are answered, open events end as `stopped`, then exit 0). SIGHUP reloads the
// model.

#include <fmt/core.h>

#include <cstdio>
#include <filesystem>
#include <functional>

#include "cli.h"
#include "vigil/core/interrupt.h"
#include "vigil/serve/server.h"

namespace vigil::cli {

namespace {

struct ServeArgs {
  std::vector<std::string> api_keys, cors_origins, class_names;
};

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

int run_serve(const Context& ctx, const ServeArgs& a) {
  auto options = ctx.options<serve::ServeOptions>();
  finish_options(ctx, a, options);
  return run_server(options, "serve", [&](const std::string& url) {
    return fmt::format(
        "listening on {} (UI {}/ui/){}", url, url,
        options.cameras.empty() ? "" : fmt::format("; cameras of {} at {}/v1/cameras", options.cameras, url));
  });
}

int run_ui(const Context& ctx, const ServeArgs& a) {
  // Not ctx.options<>(): its validate() would refuse the missing model before allow_no_model is set.
  serve::ServeOptions options;
  options.allow_no_model = true;
  config::bind(config::build_tree(ctx.config_source()), options);
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
  add_override(sub, ctx, "--max-queue-delay-ms", "max_queue_delay_ms",
               "how long a waiting image waits for others to batch with (default 5)");
  add_override(sub, ctx, "--instances", "instances", "inference workers, each with a model copy (default 1)");
  add_override(sub, ctx, "--threads-per-instance", "threads_per_instance",
               "LibTorch threads per worker (default: the cores shared among them)");
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
  add_override(sub, ctx, "--max-streams", "max_streams", "MJPEG and event streams open at once (default 8)");
  add_override(sub, ctx, "--log-images", "log_images",
               "fraction of inputs kept as JPEG in the prediction log, for review (default 0)");
  add_override(sub, ctx, "--log-retention-days", "log_retention_days",
               "prune prediction log rows older than this (default 30; 0 = never)");
  add_override(sub, ctx, "--monitor-reference", "monitor_reference",
               "check drift on a schedule against this profile (vigil monitor profile) or dataset folder");
  add_override(sub, ctx, "--monitor-every-s", "monitor_every_s",
               "seconds between drift checks (default 3600)");
  add_override(sub, ctx, "--monitor-window-s", "monitor_window_s",
               "seconds of traffic a drift check compares (default 86400)");
  add_override(sub, ctx, "--monitor-webhook", "monitor_webhook", "POST drift and drift_resolved alerts here");
  sub->footer(
      "Routes: GET / and POST /predict/ (the guns seed's), POST /v1/predict, /v1/predict/batch, GET "
      "/v1/models, "
      "/v1/stats, /metrics, KServe v2 under /v2, runs and registered models under /v1/runs and "
      "/v1/registry, cameras and events under /v1/cameras and /v1/events (with --cameras), the UI under "
      "/ui/. "
      "See docs/serve-api.md.");
  sub->callback([&ctx] {
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
      "API: /v1/experiments, /v1/runs, /v1/registry/models; see docs/serve-api.md.");
  sub->callback([&ctx] {
    ctx.uses_workspace = true;
    ctx.action = [&ctx] { return run_ui(ctx, a); };
  });
}

}  // namespace vigil::cli
