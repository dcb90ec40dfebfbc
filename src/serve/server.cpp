// The server's frame: options, metrics, middleware (request ids, CORS, API keys, bodiless requests, access
// log), the UI's static files, reload, run and graceful stop (cameras start with run() and stop after the
// HTTP threads). Routes live in the tables of routes_predict.cpp, routes_kserve.cpp, routes_tracking.cpp,
// routes_cameras.cpp and ui_routes() here; router.cpp registers them.

#include "vigil/serve/server.h"

#include <fmt/format.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <malloc.h>
#include <sys/socket.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <thread>

#include "server_impl.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/hash.h"
#include "vigil/core/interrupt.h"
#include "vigil/core/strings.h"
#include "vigil/nn/precision.h"
#include "web_assets.h"

namespace vigil::serve {

namespace {

constexpr const char* kVersion =
#ifdef VIGIL_VERSION
    VIGIL_VERSION;
#else
    "dev";
#endif

/// A request id a client may choose: 1..64 of [A-Za-z0-9._-].
bool valid_request_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

bool auth_exempt(const httplib::Request& req) {
  const std::string& p = req.path;
  return p == "/" || p == "/health" || p == "/ready" || p == "/metrics" || starts_with(p, "/v2/health/") ||
         p == "/ui" || starts_with(p, "/ui/") || p == "/favicon.ico";
}

model::PredictOptions predict_options(const ServeOptions& o) {
  model::PredictOptions p;
  p.device = o.device;
  p.fold_batch_norms = o.fold_batch_norms;
  p.channels_last = o.channels_last;
  p.precision = o.precision;
  p.calibration = o.calibration;
  p.calibration_images = o.calibration_images;
  p.embed =
      o.prediction_log && !o.workspace.empty();  // the log keeps each image's embedding for drift checks
  return p;
}

/// Intra-op threads of each inference worker: the user's, or the cores shared among the workers.
int threads_per_instance(const ServeOptions& o) {
  if (o.threads_per_instance > 0) return o.threads_per_instance;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return o.instances == 1 ? 0 : std::max(1, cores / o.instances);  // one worker: the process-wide setting
}

std::shared_ptr<spdlog::logger> make_access_log(const std::string& target) {
  if (target.empty() || target == "off") return nullptr;
  std::shared_ptr<spdlog::logger> logger;
  if (target == "-") {
    logger = std::make_shared<spdlog::logger>("access", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  } else {
    const std::filesystem::path file(target);
    if (file.has_parent_path()) ensure_dir(file.parent_path());
    try {
      logger = std::make_shared<spdlog::logger>("access",
                                                std::make_shared<spdlog::sinks::basic_file_sink_mt>(target));
    } catch (const spdlog::spdlog_ex& e) {
      throw IoError(fmt::format("{}: cannot open the access log: {}", target, e.what()));
    }
  }
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %v", spdlog::pattern_time_type::utc);
  logger->flush_on(spdlog::level::info);
  return logger;
}

std::set<std::string> load_api_keys(const ServeOptions& o) {
  std::set<std::string> keys(o.api_keys.begin(), o.api_keys.end());
  if (!o.api_keys_file.empty()) {
    std::ifstream in(o.api_keys_file);
    if (!in) throw NotFound(fmt::format("{}: API keys file not found or unreadable", o.api_keys_file));
    std::string line;
    while (std::getline(in, line)) {
      const std::string key(trim(line));
      if (!key.empty() && key[0] != '#') keys.insert(key);
    }
    VIGIL_CHECK(!keys.empty(), "expected at least one key in {}, got none", o.api_keys_file);
  }
  return keys;
}

std::string presented_key(const httplib::Request& req) {
  if (req.has_header("X-API-Key")) return req.get_header_value("X-API-Key");
  const std::string auth = req.get_header_value("Authorization");
  if (starts_with(to_lower(auth.substr(0, 7)), "bearer ")) return std::string(trim(auth.substr(7)));
  return "";
}

std::string content_type_for(const std::string& path) {
  const std::string ext = lower_extension(path);
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".json") return "application/json";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".ico") return "image/x-icon";
  return "application/octet-stream";
}

}  // namespace

void throw_http(int status, std::string code, std::string message, int retry_after_s) {
  throw HttpError{status, std::move(code), std::move(message), retry_after_s};
}

RequestContext& request_context() {
  thread_local RequestContext context;
  return context;
}

void send_json(httplib::Response& res, const nlohmann::json& body, int status) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, const HttpError& e) {
  if (e.retry_after_s > 0) res.set_header("Retry-After", std::to_string(e.retry_after_s));
  send_json(res, {{"error", e.message}, {"code", e.code}, {"request_id", request_context().id}}, e.status);
}

const char* status_kind(int status) {
  switch (status) {
    case 400:
      return "bad_request";
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 413:
      return "too_large";
    case 415:
      return "unsupported_media_type";
    case 422:
      return "unprocessable";
    case 429:
      return "rate_limited";
    case 503:
      return "unavailable";
    default:
      return status >= 500 ? "internal" : "bad_request";
  }
}

void ServeOptions::validate() const {
  VIGIL_CHECK(allow_no_model || !model.empty() || !cameras.empty(),
              "expected a model file (--model) or cameras to watch (--cameras), got neither");
  VIGIL_CHECK(follow_alias_s >= 0, "expected follow_alias_s >= 0 (0 = off), got {}", follow_alias_s);
  VIGIL_CHECK(max_streams >= 0 && max_streams <= 256, "expected max_streams in 0..256, got {}", max_streams);
  VIGIL_CHECK(port >= 0 && port <= 65535, "expected port in 0..65535, got {}", port);
  VIGIL_CHECK(http_threads >= 1 && http_threads <= 256, "expected http_threads in 1..256, got {}",
              http_threads);
  VIGIL_CHECK(queue_capacity >= 1, "expected queue_capacity >= 1, got {}", queue_capacity);
  VIGIL_CHECK(blas_threads >= 0 && blas_threads <= 256,
              "expected blas_threads in 0..256 (0 = choose by timing), got {}", blas_threads);
  VIGIL_CHECK(max_body_mb > 0, "expected max_body_mb > 0, got {}", max_body_mb);
  VIGIL_CHECK(max_pixels > 0, "expected max_pixels > 0, got {}", max_pixels);
  VIGIL_CHECK(max_batch_images >= 1, "expected max_batch_images >= 1, got {}", max_batch_images);
  VIGIL_CHECK(max_detections_limit >= 1, "expected max_detections_limit >= 1, got {}", max_detections_limit);
  VIGIL_CHECK(score_threshold >= 0 && score_threshold <= 1, "expected score_threshold in 0..1, got {}",
              score_threshold);
  VIGIL_CHECK(read_timeout_s >= 1, "expected read_timeout_s >= 1, got {}", read_timeout_s);
  RateLimit::parse(rate_limit);
  nn::check_precision_supported(nn::parse_precision(precision));  // at start-up, not at the first load
  predict_options(*this).validate();  // int8's calibration set, named at start-up too
  BatcherOptions{max_batch, max_queue_delay_ms, static_cast<size_t>(queue_capacity), instances,
                 threads_per_instance}
      .validate();
  VIGIL_CHECK(web_dir.empty() || std::filesystem::is_directory(web_dir),
              "expected web_dir to be a folder, got '{}'", web_dir);
  for (const auto& k : api_keys) VIGIL_CHECK(!k.empty(), "expected non-empty API keys, got an empty one");
  VIGIL_CHECK(log_queue >= 1, "expected log_queue >= 1, got {}", log_queue);
  VIGIL_CHECK(log_images >= 0 && log_images <= 1, "expected log_images in 0..1, got {}", log_images);
  VIGIL_CHECK(log_retention_days >= 0, "expected log_retention_days >= 0, got {}", log_retention_days);
  static const std::regex dataset_name(R"([A-Za-z0-9._-]{1,128})");
  VIGIL_CHECK(std::regex_match(upload_dataset, dataset_name),
              "expected upload_dataset to be a dataset name ([A-Za-z0-9._-], at most 128), got '{}'",
              upload_dataset);
}

ServerMetrics::ServerMetrics(MetricsRegistry& r)
    : requests(r.add("vigil_http_requests_total", "HTTP requests answered, by route, method and status",
                     MetricType::kCounter, {"route", "method", "status"})),
      request_seconds(r.add("vigil_http_request_duration_seconds", "HTTP request latency by route",
                            MetricType::kHistogram, {"route"}, latency_buckets())),
      stage_seconds(r.add("vigil_stage_duration_seconds",
                          "time per image in each stage: decode, queue, inference, encode",
                          MetricType::kHistogram, {"stage"}, latency_buckets())),
      queue_depth(r.add("vigil_queue_depth", "images waiting for inference", MetricType::kGauge)),
      queue_capacity(r.add("vigil_queue_capacity", "images that may wait for inference", MetricType::kGauge)),
      executions(r.add("vigil_inference_executions_total", "forward passes run", MetricType::kCounter)),
      inferences(r.add("vigil_inference_count_total",
                       "images inferred (average batch size = this / vigil_inference_executions_total)",
                       MetricType::kCounter)),
      batch_size(r.add("vigil_batch_size", "images per forward pass", MetricType::kHistogram, {},
                       {1, 2, 3, 4, 6, 8, 12, 16, 32, 64})),
      model_load_seconds(r.add("vigil_model_load_seconds", "time the loaded model took to load and warm up",
                               MetricType::kGauge, {"model", "version"})),
      model_loads(
          r.add("vigil_model_loads_total", "model loads by result", MetricType::kCounter, {"result"})),
      rejected(r.add("vigil_rejected_total", "requests refused before inference, by reason",
                     MetricType::kCounter, {"reason"})),
      predictions(r.add("vigil_predictions_total", "labels predicted (detections or classifications)",
                        MetricType::kCounter, {"label"})),
      log_rows(r.add("vigil_prediction_log_rows_total",
                     "prediction log rows: written, dropped (queue full) or failed (database error)",
                     MetricType::kCounter, {"result"})),
      drift_detected(r.add("vigil_drift_detected", "1 when the last drift check found dataset drift",
                           MetricType::kGauge, {"model"})),
      drift_share(r.add("vigil_drift_share", "share of columns that drifted at the last check",
                        MetricType::kGauge, {"model"})),
      drift_score(r.add("vigil_drift_score",
                        "each column's drift score at the last check (p-value or distance)",
                        MetricType::kGauge, {"model", "column", "test"})),
      feedback_accuracy(r.add("vigil_feedback_accuracy", "share of feedback marking predictions correct",
                              MetricType::kGauge, {"model"})),
      resident_bytes(
          r.add("process_resident_memory_bytes", "resident memory size in bytes", MetricType::kGauge)),
      virtual_bytes(
          r.add("process_virtual_memory_bytes", "virtual memory size in bytes", MetricType::kGauge)),
      cpu_seconds(r.add("process_cpu_seconds_total", "user and system CPU time spent in seconds",
                        MetricType::kCounter)),
      start_time(r.add("process_start_time_seconds", "start time of the process since the epoch in seconds",
                       MetricType::kGauge)),
      build_info(r.add("vigil_build_info", "vigil version", MetricType::kGauge, {"version"})) {}

Server::Impl::Impl(ServeOptions o)
    : options(std::move(o)),
      metrics(registry),
      limiter(RateLimit::parse(options.rate_limit)),
      api_keys(load_api_keys(options)),
      access_log(make_access_log(options.access_log)),
      camera_metrics(registry) {
  metrics.build_info.set(1, {kVersion});
  metrics.queue_capacity.set(options.queue_capacity);
  if (!options.model.empty()) {
    host = std::make_unique<ModelHost>(ModelSource{options.model, options.arch, options.num_classes,
                                                   options.class_names, options.name, options.workspace},
                                       predict_options(options), options.instances, options.blas_threads);
    reload("");
  }
  batcher = std::make_unique<Batcher>(BatcherOptions{options.max_batch, options.max_queue_delay_ms,
                                                     static_cast<size_t>(options.queue_capacity),
                                                     options.instances, threads_per_instance(options)},
                                      [this](int n, double seconds, const std::vector<double>& waits) {
                                        metrics.executions.inc();
                                        metrics.inferences.inc({}, n);
                                        metrics.batch_size.observe(n);
                                        for (double w : waits) metrics.stage_seconds.observe(w, {"queue"});
                                        for (int i = 0; i < n; ++i)
                                          metrics.stage_seconds.observe(seconds, {"inference"});
                                      });
  if (!options.cameras.empty()) open_cameras();
  if (host && options.prediction_log && !options.workspace.empty()) {
    recorder = std::make_unique<PredictionRecorder>(
        PredictionRecorderOptions{options.workspace, static_cast<size_t>(options.log_queue),
                                  options.log_images, options.log_retention_days});
    restore_stats();
  }
  if (!options.retrain_config.empty()) {
    VIGIL_CHECK(!options.workspace.empty(), "retrain_config: retraining needs a workspace");
    open_retraining();
  }
  if (!options.monitor_reference.empty()) {
    VIGIL_CHECK(recorder,
                "monitor_reference: drift monitoring reads the prediction log; it needs a model, a "
                "workspace and prediction_log on");
    DriftMonitorOptions mo{options.monitor_reference,
                           options.monitor_every_s,
                           options.monitor_window_s,
                           static_cast<size_t>(options.monitor_min_current),
                           0.5,
                           options.monitor_webhook,
                           options.monitor_webhook_secret_env,
                           {},
                           {}};
    mo.model_file = [this] { return current_model() ? current_model()->source : std::string(); };
    mo.model_version = [this] { return current_model() ? current_model()->version : std::string(); };
    drift_monitor = std::make_unique<DriftMonitor>(
        std::move(mo), *recorder, [this] { return current_model() ? current_model()->name : std::string(); },
        [this](const monitor::DriftReport& r) { export_drift(r); });
  }
  if (!options.registry_webhook.empty()) {
    VIGIL_CHECK(!options.workspace.empty(),
                "registry_webhook: registry events are read from a workspace store");
    RegistryNotifierOptions ro;
    ro.workspace = options.workspace;
    ro.url = options.registry_webhook;
    ro.secret_env = options.registry_webhook_secret_env;
    registry_notifier = std::make_unique<RegistryNotifier>(ro);
  }
}

void Server::Impl::open_retraining() {
  // A registry spec "NAME@alias" (not a file) names the model and the alias a promotion moves.
  std::string name, alias;
  const auto at = options.model.find('@');
  if (at != std::string::npos && !std::filesystem::exists(options.model)) {
    name = options.model.substr(0, at);
    alias = options.model.substr(at + 1);
  }
  RetrainJobsOptions o;
  o.workspace = options.workspace;
  o.config = options.retrain_config;
  o.model = options.retrain_model.empty() ? name : options.retrain_model;
  o.alias = !options.retrain_alias.empty() ? options.retrain_alias : (alias.empty() ? "production" : alias);
  const bool serves_alias = !name.empty() && name == o.model && alias == o.alias;
  retrain_jobs = std::make_unique<RetrainJobs>(o, [this, serves_alias](const nlohmann::json& result) {
    // A promoted challenger is what NAME@alias now resolves to: serve it (hot reload, the old one serves
    // meanwhile).
    if (serves_alias && result.value("state", "") == "promoted") reload("");
  });
}

bool Server::Impl::follows_alias() const {
  return host && options.follow_alias_s > 0 && !options.workspace.empty() &&
         !std::filesystem::exists(options.model);
}

// Replicas behind a balancer share the store and the registry folder but not their memory: each one polls
// what its reference means (a cheap indexed read) instead of waiting for a signal nobody sends it. Polling
// works on SQLite and PostgreSQL alike; an alias move reaches every replica within one interval plus a load.
void Server::Impl::follow_alias(const std::atomic<bool>& done) {
  const auto interval = std::chrono::milliseconds(static_cast<int64_t>(options.follow_alias_s * 1000));
  auto next = std::chrono::steady_clock::now() + interval;
  std::unique_ptr<store::Store> st;
  bool failing = false;
  while (!done) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (std::chrono::steady_clock::now() < next) continue;
    try {
      if (!st) {
        store::StoreOptions so;
        so.reap_on_open = false;
        st = std::make_unique<store::Store>(Workspace(options.workspace), so);
      }
      const auto resolved = st->resolve_model(options.model);
      const auto current = current_model();
      const std::string version = std::to_string(resolved.version);
      if (current && current->version != version) {
        spdlog::info("serve: {} now means version {} (serving {}): reloading", options.model, version,
                     current->version);
        reload("");
      }
      failing = false;
    } catch (const std::exception& e) {
      // Said once per failing stretch, not every interval; the next check opens the store afresh.
      if (!failing)
        spdlog::warn("serve: following {} failed, the served version stays: {}", options.model, e.what());
      failing = true;
      st.reset();
    }
    next = std::chrono::steady_clock::now() + interval;
  }
}

void Server::Impl::export_drift(const monitor::DriftReport& r) {
  if (r.feedback.accuracy) metrics.feedback_accuracy.set(*r.feedback.accuracy, {r.model});
  if (!r.enough_data) return;
  metrics.drift_detected.set(r.drifted() ? 1 : 0, {r.model});
  metrics.drift_share.set(r.drift.share, {r.model});
  for (const auto& c : r.drift.columns)
    metrics.drift_score.set(c.score, {r.model, c.column, std::string(monitor::to_string(c.test))});
  if (r.embedding)
    metrics.drift_score.set(r.embedding->score,
                            {r.model, "embedding", std::string(monitor::to_string(r.embedding->method))});
}

// /v1/stats survives a restart: the last 30 days of the log are replayed into the in-memory aggregates (the
// per-day and per-class charts; latency percentiles then describe the logged latencies).
size_t Server::Impl::replay_log(PredictionStats& into) {
  store::PredictionFilter f;
  f.since_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                   (std::chrono::system_clock::now() - std::chrono::hours(24 * 30)).time_since_epoch())
                   .count();
  f.limit = 200000;
  const store::PredictionPage page = recorder->log().search(f);
  for (auto it = page.rows.rbegin(); it != page.rows.rend(); ++it) {
    const nlohmann::json out = nlohmann::json::parse(it->output_json, nullptr, false);
    std::vector<std::pair<std::string, float>> labels;
    if (out.contains("label") && out["label"].is_string())
      labels.emplace_back(out["label"].get<std::string>(), out.value("score", 0.0f));
    if (out.contains("boxes") && out["boxes"].is_array())
      for (const auto& b : out["boxes"]) labels.emplace_back(b.value("label", ""), b.value("score", 0.0f));
    into.record(labels, it->latency_ms,
                PredictionStats::Clock::time_point(std::chrono::milliseconds(it->time_ms)));
  }
  return page.rows.size();
}

void Server::Impl::restore_stats() {
  if (const size_t n = replay_log(stats); n > 0)
    spdlog::info("serve: {} logged predictions restored into /v1/stats", n);
}

void Server::Impl::reload(const std::string& path) {
  if (!host)
    throw InvalidArgument("no model is served by this server (started without --model), so none to reload");
  try {
    auto model = host->load(path);
    metrics.model_loads.inc({"success"});
    metrics.model_load_seconds.clear();
    metrics.model_load_seconds.set(model->load_ms / 1000, {model->name, model->version});
  } catch (...) {
    metrics.model_loads.inc({"failure"});
    throw;
  }
}

std::shared_ptr<ServedModel> Server::Impl::model_or_503() const {
  if (!host)
    throw_http(503, "no_model",
               "no model is served by this server (`vigil ui` shows runs and models only); start `vigil "
               "serve --model MODEL` to predict");
  auto m = host->current();
  if (!m) throw_http(503, "not_ready", "no model is loaded yet", 1);
  return m;
}

void Server::Impl::check_rate_limit(const httplib::Request& req) {
  if (!limiter.enabled()) return;
  const std::string key = presented_key(req);
  const std::string client = key.empty() ? "ip:" + req.remote_addr : "key:" + hash_bytes(key).substr(0, 16);
  if (int wait = limiter.acquire(client); wait > 0) {
    metrics.rejected.inc({"rate_limited"});
    throw_http(
        429, "rate_limited",
        fmt::format("rate limit of {} exceeded for this client; retry in {} s", options.rate_limit, wait),
        wait);
  }
}

std::string Server::Impl::render_metrics() {
  const ProcessStats p = read_process_stats();
  metrics.resident_bytes.set(p.resident_bytes);
  metrics.virtual_bytes.set(p.virtual_bytes);
  metrics.cpu_seconds.set(p.cpu_seconds);  // a counter read from the kernel: set to its current total
  metrics.start_time.set(p.start_time_seconds);
  metrics.queue_depth.set(static_cast<double>(batcher ? batcher->depth() : 0));
  if (watcher) camera_metrics.update(watcher->camera_stats());
  if (recorder) {  // counters kept by the writer thread: set to their current totals
    metrics.log_rows.set(static_cast<double>(recorder->written()), {"written"});
    metrics.log_rows.set(static_cast<double>(recorder->dropped()), {"dropped"});
    metrics.log_rows.set(static_cast<double>(recorder->failed()), {"failed"});
  }
  return registry.render();
}

namespace {

using Req = httplib::Request;
using Res = httplib::Response;
using HandlerResponse = httplib::Server::HandlerResponse;

// ---- middleware: pre-routing steps in the order they run, then httplib's error, exception and log hooks --

/// Starts the request's clock and names it: the client's X-Request-Id when valid, else a new id.
void begin_request(const Req& req, Res& res) {
  RequestContext& ctx = request_context();
  ctx.start = std::chrono::steady_clock::now();
  ctx.route = "unmatched";
  const std::string given = req.get_header_value("X-Request-Id");
  ctx.id = valid_request_id(given) ? given : new_request_id();
  // Behind a proxy (nginx) the peer is the proxy: the first X-Forwarded-For hop is the client.
  const std::string forwarded = req.get_header_value("X-Forwarded-For");
  ctx.client = forwarded.empty() ? req.remote_addr : forwarded.substr(0, forwarded.find(','));
  res.set_header("X-Request-Id", ctx.id);
}

/// The CORS headers for an allowed Origin (--cors-origin), and a preflight's extra ones for OPTIONS.
void apply_cors(const ServeOptions& options, const Req& req, Res& res) {
  const std::string origin = req.get_header_value("Origin");
  if (origin.empty()) return;
  const auto& allowed = options.cors_origins;
  const bool any = std::find(allowed.begin(), allowed.end(), "*") != allowed.end();
  if (!any && std::find(allowed.begin(), allowed.end(), origin) == allowed.end()) return;
  res.set_header("Access-Control-Allow-Origin", any ? "*" : origin);
  res.set_header("Vary", "Origin");
  res.set_header("Access-Control-Expose-Headers", "X-Request-Id, Retry-After, Server-Timing");
  if (req.method != "OPTIONS") return;
  res.set_header("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS");
  res.set_header("Access-Control-Allow-Headers",
                 "Content-Type, Authorization, X-API-Key, X-Request-Id, Inference-Header-Content-Length");
  res.set_header("Access-Control-Max-Age", "600");
}

/// OPTIONS on any path is a CORS preflight: 204, before authentication (browsers send no key with it).
bool answer_preflight(const Req& req, Res& res) {
  if (req.method != "OPTIONS") return false;
  request_context().route = "preflight";
  res.status = 204;
  return true;
}

/// With API keys configured, a request to a path that is not exempt needs one: 401 without, 403 unknown.
bool refuse_without_key(Server::Impl& s, const Req& req, Res& res) {
  if (s.api_keys.empty() || auth_exempt(req)) return false;
  const std::string key = presented_key(req);
  if (key.empty()) {
    res.set_header("WWW-Authenticate", "Bearer");
    s.metrics.rejected.inc({"unauthorized"});
    send_error(res, {401, "unauthorized",
                     "this server needs an API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"});
    return true;
  }
  if (s.api_keys.count(key)) return false;
  s.metrics.rejected.inc({"forbidden"});
  send_error(res, {403, "forbidden", "the API key is not accepted by this server"});
  return true;
}

/// RFC 9112 section 6.3: a request with neither Content-Length nor Transfer-Encoding has no body. httplib
/// 0.11 instead reads the body of such a POST, PUT, PATCH or DELETE until the client closes the connection,
/// so `curl -X POST .../load` (Triton's documented call, no body) waited out the read timeout and got 400
/// "malformed request". Such requests are routed here, from the same route table, before httplib reads.
bool route_without_body(Server::Impl& s, const Req& req, Res& res) {
  const bool read_by_httplib =
      req.method == "POST" || req.method == "PUT" || req.method == "PATCH" || req.method == "DELETE";
  if (!read_by_httplib || req.has_header("Content-Length") || req.has_header("Transfer-Encoding"))
    return false;
  httplib::Request bodiless = req;  // req.matches must point into the path of the request handed on
  if (const Route* route = find_route(bodiless.method, bodiless.path, bodiless.matches)) {
    guarded(s, *route, bodiless, res);
  } else {
    res.status = 404;  // answer_http_error() tells an unknown path from a wrong method, as for any request
  }
  return true;
}

/// httplib's own error answers (no route, body too large, malformed request) as JSON error bodies; a known
/// path asked with another method becomes 405 with Allow. An answer a handler already wrote passes.
HandlerResponse answer_http_error(Server::Impl& s, const Req& req, Res& res) {
  if (!res.body.empty()) return HandlerResponse::Unhandled;
  std::string message;
  switch (res.status) {
    case 404:
      if (const std::string allow = allowed_methods(req.path); !allow.empty()) {
        res.status = 405;
        res.set_header("Allow", allow);
        message = fmt::format("{} is not allowed on {}; use {}", req.method, req.path, allow);
        break;
      }
      message = fmt::format("no route {} {}; see GET /v1/models, POST /v1/predict, /v1/runs, /v2 and /ui/",
                            req.method, req.path);
      break;
    case 413:
      message = fmt::format("request body larger than the server's limit of {} MiB", s.options.max_body_mb);
      s.metrics.rejected.inc({"too_large"});
      break;
    case 405:
      message = fmt::format("method {} not allowed on {}", req.method, req.path);
      break;
    default:
      message = fmt::format("{} {}: {}", res.status, status_kind(res.status),
                            res.status == 400 ? "malformed request" : "request failed");
  }
  if (request_context().id.empty()) request_context().id = new_request_id();
  send_error(res, {res.status, status_kind(res.status), message});
  return HandlerResponse::Handled;
}

/// What escaped a handler outside guarded() (httplib itself threw): a 500 with the reason.
void answer_exception(const Req& req, Res& res, std::exception_ptr ep) {
  std::string what = "unknown exception";
  try {
    std::rethrow_exception(ep);
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  spdlog::error("serve: {} {}: {}", req.method, req.path, what);
  send_error(res, {500, "internal", "internal error: " + what});
}

/// The request's metrics (by route label, method, status) and its access-log line; ends its context.
double request_seconds_so_far(const RequestContext& ctx) {
  return ctx.start.time_since_epoch().count() == 0
             ? 0
             : std::chrono::duration<double>(std::chrono::steady_clock::now() - ctx.start).count();
}

/// Post-routing: count the request before its response is written. httplib calls the logger only after the
/// body went out, so a client could read the answer and scrape /metrics before it was counted (seen on CI).
/// A stream's duration here is its time to the first byte.
void count_request(Server::Impl& s, const Req& req, const Res& res) {
  const RequestContext& ctx = request_context();
  const std::string route = ctx.route.empty() ? "unmatched" : ctx.route;
  s.metrics.requests.inc({route, req.method, std::to_string(res.status)});
  s.metrics.request_seconds.observe(request_seconds_so_far(ctx), {route});
}

/// Logger: after the response was written, one access-log line with the whole duration.
void log_request(Server::Impl& s, const Req& req, const Res& res) {
  RequestContext& ctx = request_context();
  if (s.access_log) {
    s.access_log->info("{} {} \"{} {}\" {} {} {:.1f}ms \"{}\"", ctx.id.empty() ? "-" : ctx.id,
                       req.remote_addr, req.method, req.path, res.status, res.body.size(),
                       request_seconds_so_far(ctx) * 1000, req.get_header_value("User-Agent"));
  }
  ctx = RequestContext{};
}

// ---- the web UI's static files ----------------------------------------------------------------------------

/// GET /ui: the UI lives under /ui/.
void ui_redirect(Server::Impl&, const Req&, Res& res) {
  res.set_redirect("/ui/");
}

/// GET /ui/{path}: a file of the UI, from --web-dir or the copy embedded in the binary.
void ui_file(Server::Impl& s, const Req& req, Res& res) {
  std::string path = req.matches[1];
  if (path.empty()) path = "index.html";
  if (path.find("..") != std::string::npos || path.front() == '/')
    throw_http(400, "bad_request", fmt::format("invalid UI path '{}'", path));
  res.set_header("Cache-Control", "no-cache");
  if (!s.options.web_dir.empty()) {
    const auto file = std::filesystem::path(s.options.web_dir) / path;
    if (!std::filesystem::is_regular_file(file))
      throw_http(404, "not_found", fmt::format("no UI file '{}'", path));
    res.set_content(read_file(file), content_type_for(path));
    return;
  }
  const WebAsset* asset = find_web_asset(path);
  if (!asset) throw_http(404, "not_found", fmt::format("no UI file '{}'", path));
  res.set_content(std::string(asset->body), content_type_for(path));
}

}  // namespace

std::string new_request_id() {
  static const uint64_t seed = std::random_device{}();
  static std::atomic<uint64_t> counter{0};
  return fmt::format("{:016x}", splitmix64(seed, counter.fetch_add(1)));
}

const std::vector<Route>& ui_routes() {
  // clang-format off
  static const std::vector<Route> kRoutes = {
      {"GET", "/ui",      "/ui",        ui_redirect},
      {"GET", "/ui/(.*)", "/ui/{path}", ui_file},
  };
  // clang-format on
  return kRoutes;
}

void Server::Impl::install_middleware() {
  http.set_pre_routing_handler([this](const Req& req, Res& res) {
    begin_request(req, res);
    apply_cors(options, req, res);
    const bool answered = answer_preflight(req, res) || refuse_without_key(*this, req, res) ||
                          route_without_body(*this, req, res);
    return answered ? HandlerResponse::Handled : HandlerResponse::Unhandled;
  });
  http.set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const Req& req, Res& res) { return answer_http_error(*this, req, res); }));
  http.set_exception_handler(answer_exception);
  http.set_post_routing_handler([this](const Req& req, Res& res) { count_request(*this, req, res); });
  http.set_logger([this](const Req& req, const Res& res) { log_request(*this, req, res); });
}

Server::Server(ServeOptions options) {
  options.validate();
  // glibc gives every thread that contends its own arena; with a dozen HTTP threads allocating image-sized
  // buffers that fragments into steadily growing resident memory (seen in a 10-minute soak). Two arenas keep
  // it flat at no measurable cost here.
  mallopt(M_ARENA_MAX, 2);
  impl_ = std::make_unique<Impl>(std::move(options));
  Impl& s = *impl_;
  // Every open stream holds a thread: they get their own share, so ordinary requests keep http_threads.
  const int threads = s.options.http_threads + s.options.max_streams;
  s.http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  s.http.set_payload_max_length(static_cast<size_t>(s.options.max_body_mb * 1024 * 1024));
  s.http.set_read_timeout(s.options.read_timeout_s, 0);
  s.http.set_write_timeout(s.options.read_timeout_s, 0);
  s.http.set_keep_alive_max_count(1000);
  s.http.set_tcp_nodelay(true);
  // httplib's default also sets SO_REUSEPORT, which lets a second server silently share the port; keep only
  // SO_REUSEADDR (restart right after a stop), so "port in use" is an error.
  s.http.set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  s.install_middleware();
  register_routes(s.http, s);
}

Server::~Server() {
  if (impl_) {
    impl_->stopping = true;
    impl_->http.stop();
    impl_->hub.close();
    if (impl_->watcher) impl_->watcher->stop();
    if (impl_->batcher) impl_->batcher->shutdown();
  }
}

int Server::bind() {
  Impl& s = *impl_;
  if (s.options.port == 0) {
    s.port = s.http.bind_to_any_port(s.options.host);
  } else {
    s.port = s.http.bind_to_port(s.options.host, s.options.port) ? s.options.port : -1;
  }
  if (s.port <= 0)
    throw IoError(fmt::format("cannot listen on {}:{} (in use, or not an address of this machine)",
                              s.options.host, s.options.port));
  if (!s.options.port_file.empty()) write_file_atomic(s.options.port_file, std::to_string(s.port) + "\n");
  return s.port;
}

namespace {

/// SIGHUP: reloads the model from its source; a failure is logged and the old model keeps serving.
void reload_on_signal(Server::Impl& s) {
  if (!s.host) {
    spdlog::info("serve: SIGHUP: no model is served, nothing to reload");
    return;
  }
  try {
    s.reload("");
  } catch (const std::exception& e) {
    spdlog::error("serve: reload on SIGHUP failed, the previous model keeps serving: {}", e.what());
  }
}

}  // namespace

void Server::run() {
  Impl& s = *impl_;
  if (s.port <= 0) bind();
  install_reload_handler();
  std::atomic<bool> done{false};
  // Signals only set flags; this thread turns them into a graceful stop or a reload.
  std::thread signals([&] {
    while (!done) {
      if (interrupt_requested() && !s.stopping.exchange(true)) {
        spdlog::info("serve: stopping: finishing accepted requests");
        s.http.stop();
        s.hub.close();  // event streams end now rather than at their next poll
      }
      if (take_reload_request()) reload_on_signal(s);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  std::thread follower;
  if (s.follows_alias()) follower = std::thread([&] { s.follow_alias(done); });
  if (s.watcher) s.watcher->start();
  if (s.drift_monitor) s.drift_monitor->start();
  if (s.registry_notifier) s.registry_notifier->start();
  const bool ok = s.http.listen_after_bind();
  done = true;
  signals.join();
  if (follower.joinable()) follower.join();
  s.hub.close();
  // After the HTTP threads (and with them every stream) have ended: open events end as `stopped` and are
  // written to the store before run() returns.
  if (s.watcher) s.watcher->stop();
  s.batcher->shutdown();
  if (s.recorder) s.recorder->flush();  // every answered prediction is in the log before run() returns
  if (s.registry_notifier) s.registry_notifier->stop(2);  // claimed events get their delivery attempts
  if (!ok && !s.stopping) throw IoError(fmt::format("the server on port {} stopped unexpectedly", s.port));
}

void Server::stop() {
  impl_->stopping = true;
  impl_->http.stop();
  impl_->hub.close();
}

void Server::reload(const std::string& path) {
  impl_->reload(path);
}

}  // namespace vigil::serve
