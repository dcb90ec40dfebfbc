#pragma once
// Shared state of the server and the helpers its route files use. Internal to src/serve/ (httplib lives here
// only).

#include <httplib.h>
#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "router.h"
#include "vigil/image/decode.h"
#include "vigil/serve/batcher.h"
#include "vigil/serve/drift_monitor.h"
#include "vigil/serve/event_hub.h"
#include "vigil/serve/metrics.h"
#include "vigil/serve/prediction_recorder.h"
#include "vigil/serve/prediction_stats.h"
#include "vigil/serve/rate_limiter.h"
#include "vigil/serve/registry_notifier.h"
#include "vigil/serve/retrain_jobs.h"
#include "vigil/serve/server.h"
#include "vigil/store/events.h"
#include "vigil/store/store.h"
#include "vigil/video/watcher.h"

namespace vigil::serve {

/// An answer other than 2xx, thrown by handlers and turned into the JSON error body in one place.
struct HttpError {
  int status = 500;
  std::string code;
  std::string message;
  int retry_after_s = 0;
};
[[noreturn]] void throw_http(int status, std::string code, std::string message, int retry_after_s = 0);

/// The metric families the server updates.
struct ServerMetrics {
  explicit ServerMetrics(MetricsRegistry& r);
  MetricFamily& requests;         ///< route, method, status
  MetricFamily& request_seconds;  ///< route
  MetricFamily& stage_seconds;    ///< stage
  MetricFamily& queue_depth;
  MetricFamily& queue_capacity;
  MetricFamily& executions;
  MetricFamily& inferences;
  MetricFamily& batch_size;
  MetricFamily& model_load_seconds;  ///< model, version
  MetricFamily& model_loads;         ///< result
  MetricFamily& rejected;            ///< reason
  MetricFamily& predictions;         ///< label
  MetricFamily& log_rows;            ///< result: written, dropped, failed (the prediction log)
  MetricFamily& drift_detected;      ///< model
  MetricFamily& drift_share;         ///< model
  MetricFamily& drift_score;         ///< model, column, test
  MetricFamily& feedback_accuracy;   ///< model
  MetricFamily& resident_bytes;
  MetricFamily& virtual_bytes;
  MetricFamily& cpu_seconds;
  MetricFamily& start_time;
  MetricFamily& build_info;  ///< version
};

/// The per-camera families of /metrics (routes_cameras.cpp), read from the watcher at every scrape.
struct CameraMetrics {
  explicit CameraMetrics(MetricsRegistry& r);
  /// Sets every family from the cameras' current statistics.
  void update(const std::vector<video::CameraStats>& cameras);
  MetricFamily& fps_in;      ///< camera
  MetricFamily& fps_detect;  ///< camera
  MetricFamily& frames;      ///< camera
  MetricFamily& detected;    ///< camera
  MetricFamily& dropped;     ///< camera
  MetricFamily& reconnects;  ///< camera
  MetricFamily& stalls;      ///< camera
  MetricFamily& events;      ///< camera
  MetricFamily& latency;     ///< camera, quantile (a summary over the last detected frames)
  MetricFamily& up;          ///< camera
};

/// One image of a request, still encoded.
struct ImagePart {
  std::string filename;
  std::string_view bytes;
};

/// Per-request prediction settings (query parameters or KServe parameters), already bounded.
struct PredictParams {
  nn::PostprocessOptions post;
  /// The accident seed's POST /predict: the sequence these images are frames of ("" = none) and the class
  /// whose probability it answers; each frame's log row carries both, so the seed's statistics and history
  /// are computed from the prediction log.
  std::string sequence;
  int positive_class = -1;
};

/// A decoded, answered image.
struct ImageOutcome {
  std::string filename;
  image::ImageType type = image::ImageType::kUnknown;
  cv::Mat bgr;  ///< kept when the caller draws
  InferenceResult result;
  std::string id;          ///< the prediction's id in the log (answered as prediction_id)
  std::string input_json;  ///< the input's statistics (monitor::ImageStats) when predictions are logged
  cv::Mat sample;          ///< the decoded input, when the log keeps this one's image
  double decode_ms = 0;
  std::optional<HttpError> error;  ///< this image failed (the others of a batch may not have)
};

/// Timing of the current request, kept per HTTP thread from pre-routing to the logger.
struct RequestContext {
  std::string id;
  std::chrono::steady_clock::time_point start;
  std::string route;   ///< the route pattern (bounded label set), set by the router
  std::string client;  ///< the remote address (or the first X-Forwarded-For behind a proxy)
};
RequestContext& request_context();
/// A fresh 16-hex-digit id (requests without X-Request-Id, logged predictions).
std::string new_request_id();

/// The accident seed's sequences over the prediction log, kept up to date between calls
/// (routes_accident.cpp).
struct AccidentSequences;

struct Server::Impl {
  explicit Impl(ServeOptions o);

  ServeOptions options;
  std::unique_ptr<ModelHost> host;  ///< null when no model is served (`vigil ui`)
  MetricsRegistry registry;
  ServerMetrics metrics;
  PredictionStats stats;
  RateLimiter limiter;
  std::unique_ptr<Batcher> batcher;
  std::set<std::string> api_keys;
  std::shared_ptr<spdlog::logger> access_log;
  httplib::Server http;
  std::atomic<bool> stopping{false};
  int port = -1;
  /// The workspace's tracking store, opened on first use; one connection shared by the HTTP threads, so
  /// every use holds tracking_mutex (a Store is not thread-safe).
  std::unique_ptr<store::Store> tracking_store;
  std::mutex tracking_mutex;
  /// The watcher's events fanned out to GET /v1/events/stream; declared before `watcher`, whose sink
  /// publishes into it, so it outlives the watcher.
  EventHub hub;
  CameraMetrics camera_metrics;
  /// The cameras of options.cameras; null without. Started by run(), stopped when it returns.
  std::unique_ptr<video::Watcher> watcher;
  std::atomic<int> open_streams{0};  ///< MJPEG and event streams now (at most options.max_streams)
  /// The prediction log's writer (null with prediction_log off, or without a workspace).
  std::unique_ptr<PredictionRecorder> recorder;
  /// The scheduled drift check (null without monitor_reference); declared after `recorder`, which it reads.
  std::unique_ptr<DriftMonitor> drift_monitor;
  std::unique_ptr<RegistryNotifier> registry_notifier;  ///< registry_webhook: the outbox's deliveries
  /// Retraining jobs (null without retrain_config).
  std::unique_ptr<RetrainJobs> retrain_jobs;
  /// The workspace's events table, opened on first use (EventLog is thread-safe).
  std::unique_ptr<store::EventLog> event_log;
  std::mutex event_log_mutex;
  /// GET /prediction-stats and /prediction-history's index, made on first use (routes_accident.cpp).
  std::once_flag accident_sequences_once;
  std::shared_ptr<AccidentSequences> accident_sequences;

  /// Loads the cameras of options.cameras (their models too) and adds the event-stream sink; throws what
  /// video::Watcher throws (InvalidArgument / NotFound naming the camera and key). routes_cameras.cpp.
  void open_cameras();
  /// The events table; 503 when this server has no workspace.
  store::EventLog& events();

  /// Runs `fn(store)` under tracking_mutex, opening the store first when needed; 503 when this server has
  /// no workspace. What the store throws is left to guarded(), which maps every vigil::Error once.
  void with_store(const std::function<void(store::Store&)>& fn);
  // server.cpp
  void install_middleware();
  /// Replays the prediction log's rows of the last 30 days (at most 200000) into `into`; returns how many.
  /// The log is shared by every replica on the same store, so this is also /v1/stats?scope=all.
  size_t replay_log(PredictionStats& into);
  /// Replays the prediction log's recent rows into `stats`.
  void restore_stats();
  /// Creates retrain_jobs from the options (the served NAME@alias gives the defaults).
  void open_retraining();
  /// A drift check's figures into the /metrics gauges.
  void export_drift(const monitor::DriftReport& r);
  void reload(const std::string& path);
  /// True when the served model is a registry reference (not a file) and follow_alias_s > 0.
  bool follows_alias() const;
  /// Until `done`: every follow_alias_s, resolves the served reference in the store and reloads when it
  /// means another version than the published one. A failed check or load is logged; the model keeps serving.
  void follow_alias(const std::atomic<bool>& done);

  /// The published model or 503 (no_model when this server serves none, not_ready before the first load).
  std::shared_ptr<ServedModel> model_or_503() const;
  /// The published model, or null (none served, or not loaded yet).
  std::shared_ptr<ServedModel> current_model() const { return host ? host->current() : nullptr; }
  /// Reads thresholds from name -> text pairs ("score_threshold", "nms_iou", "max_detections"); 400 naming
  /// the parameter when out of bounds.
  PredictParams params_from(const ServedModel& model,
                            const std::function<std::optional<std::string>(const char*)>& get) const;
  /// Decodes, queues (all or nothing) and waits for every image; per-image failures are in the outcomes.
  /// Throws 503 when the queue is full.
  std::vector<ImageOutcome> predict_images(const std::shared_ptr<ServedModel>& model,
                                           const std::vector<ImagePart>& parts, const PredictParams& params,
                                           bool keep_images);
  /// Queues one answered image's row for the prediction log (never blocks; a full queue counts a drop);
  /// `index` is the image's place in its request (a sequence's frame number).
  void log_prediction(const ServedModel& model, ImageOutcome& o, const PredictParams& params, size_t index);
  /// predict_images() for a request of one image; a failed image is counted and thrown as its HttpError.
  ImageOutcome predict_one(const std::shared_ptr<ServedModel>& model, const ImagePart& part,
                           const PredictParams& params, bool keep_image);
  /// The bookkeeping after a single-image answer was encoded (encode began at `encode_start`): the encode
  /// stage metric, the statistics for `shown`, and the Server-Timing header. Returns {encode_ms, total_ms}.
  std::pair<double, double> finish_one(httplib::Response& res, const ImageOutcome& outcome,
                                       const model::Prediction& shown,
                                       std::chrono::steady_clock::time_point start,
                                       std::chrono::steady_clock::time_point encode_start);
  /// The /v1/predict body of one outcome.
  nlohmann::json outcome_json(const ServedModel& model, const ImageOutcome& outcome) const;
  nlohmann::json model_json(const ServedModel& model) const;
  std::string render_metrics();
  /// Applies the rate limit for this client (429 when over).
  void check_rate_limit(const httplib::Request& req);
};

/// Labels and confidences of an answer (a classifier's label, a detector's boxes), for the statistics.
std::vector<std::pair<std::string, float>> answer_labels(const model::Prediction& p);
/// Writes a JSON body.
void send_json(httplib::Response& res, const nlohmann::json& body, int status = 200);
/// Writes the error body for `e` with the current request id.
void send_error(httplib::Response& res, const HttpError& e);
/// The error body's "code" for a status: "bad_request", "not_found", "unavailable", ...
const char* status_kind(int status);
/// The image parts of a request: multipart file parts (every part with content, or only field `field`
/// when given), else the raw body. 400 when there is none.
std::vector<ImagePart> image_parts(const httplib::Request& req, const std::string& field = "");

}  // namespace vigil::serve
