#pragma once
/// `vigil serve`: one process serving a model over HTTP (the guns seed's routes, a JSON API under /v1, the
/// KServe v2 protocol, Prometheus metrics), the web UI and, with `cameras`, the cameras of a cameras.yaml
/// (a video::Watcher: live frames, MJPEG streams, events and their server-sent stream). docs/serve-api.md is
/// the contract. cpp-httplib stays inside src/serve/.

#include <memory>
#include <string>
#include <vector>

#include "vigil/serve/model_host.h"

namespace vigil::serve {

/// Everything `vigil serve` can be told; the CLI, a YAML config and --set fill the same struct.
struct ServeOptions {
  /// A vigil model file, a torchvision .pth with arch, or a registered model ("guns@production", "guns/3",
  /// "guns"), resolved through the workspace's registry at every load (so moving the alias and reloading
  /// switches the served version).
  std::string model;
  std::string workspace;  ///< the workspace root (tracking store and registry); the CLI sets it
  std::string arch;
  int num_classes = 0;
  std::vector<std::string> class_names;  ///< .pth: names in head order (detectors: without background)
  std::string name;                      ///< served model name (default: the model file's stem)
  std::string host = "127.0.0.1";
  int port = 8080;  ///< 0 = any free port
  std::string port_file;
  int http_threads = 8;
  int max_batch = 8;
  double max_queue_delay_ms = 5;
  int queue_capacity = 64;
  int instances = 1;             ///< inference workers, each with a copy of the model
  int threads_per_instance = 0;  ///< intra-op threads per worker (0 = the cores divided among them)
  int blas_threads = 0;          ///< OpenBLAS's threads (0 = chosen by timing at load: ModelHost::load)
  double max_body_mb = 10;
  int64_t max_pixels = 40'000'000;
  int max_batch_images = 32;
  int64_t max_detections_limit = 300;
  double score_threshold = 0.7;  ///< the seed route's drawing threshold
  std::string rate_limit;        ///< "10/minute"; empty = none
  std::vector<std::string> api_keys;
  std::string api_keys_file;
  std::vector<std::string> cors_origins;
  std::string access_log;  ///< a file, "-" for stderr, or "off"
  std::string web_dir;     ///< serve the UI from here instead of the embedded copy
  int read_timeout_s = 30;
  std::string device = "cpu";
  /// A cameras.yaml (the format of `vigil watch --config`): the server watches these cameras from start to
  /// stop, writing their events to the workspace store. "" = no cameras.
  std::string cameras;
  /// MJPEG and event streams open at once, at most (then 503). Each holds an HTTP thread while open, so the
  /// server runs http_threads + max_streams threads: streams never starve ordinary requests.
  int max_streams = 8;
  bool fold_batch_norms = true;
  bool channels_last = true;
  std::string precision = "fp32";  ///< "fp32", "bf16" or "int8" (nn/precision.h, nn/quantize.h)
  std::string calibration;         ///< int8: images to calibrate on (model::PredictOptions::calibration)
  int calibration_images = 16;
  /// Record every answered image (input statistics, outputs) in the workspace's prediction log, for
  /// /v1/stats across restarts, feedback and drift monitoring. Never slows a request: a bounded queue, one
  /// writer thread, batched transactions; a full queue drops rows and counts them.
  bool prediction_log = true;
  int log_queue = 4096;            ///< log rows waiting at most
  double log_images = 0;           ///< fraction of inputs kept as JPEG under <workspace>/predictions
  double log_retention_days = 30;  ///< older log rows and images are pruned (0 = keep forever)
  /// Drift monitoring on a schedule (serve/drift_monitor.h): the reference profile or dataset ("" = off).
  std::string monitor_reference;
  double monitor_every_s = 3600;           ///< seconds between drift checks
  double monitor_window_s = 86400;         ///< traffic compared: this many seconds back
  int monitor_min_current = 30;            ///< fewer logged predictions: no verdict
  std::string monitor_webhook;             ///< POST drift / drift_resolved alerts here
  std::string monitor_webhook_secret_env;  ///< environment variable with the alerts' HMAC key
  /// Registry webhooks (serve/registry_notifier.h): every registry change of the workspace store is POSTed
  /// here, by exactly one of the servers sharing the store ("" = off).
  std::string registry_webhook;
  std::string registry_webhook_secret_env;  ///< environment variable with their HMAC key
  /// POST /v1/retrain (serve/retrain_jobs.h): the training config jobs start from ("" = retraining off), the
  /// registered model challengers join (default: the served NAME of NAME@alias) and the champion's alias.
  std::string retrain_config;
  std::string retrain_model;
  std::string retrain_alias;
  /// The accident seed's routes (routes_accident.cpp): the dataset POST /upload adds versions to (each holds
  /// one upload's files; never the training dataset itself, whose newest version a retrain config names and
  /// whose split a new version would not have), and the class whose probability POST /predict answers ("" =
  /// the class named like "Accident", case, '_' and ' ' ignored).
  std::string upload_dataset = "uploads";
  std::string positive_class;
  /// A registered model served by reference (NAME@alias, NAME = latest) is resolved again every this many
  /// seconds and reloaded when it means another version: replicas sharing a store follow an alias move
  /// (0 = only on SIGHUP or POST /v1/models/NAME/load).
  double follow_alias_s = 5;
  /// Serve the UI and the tracking/registry API without a model (`vigil ui`): predict routes then answer
  /// 503. Set in code only (not a config key), so `vigil serve` without a model (or cameras) stays an error.
  bool allow_no_model = false;

  template <class V>
  void visit(V& v) {
    v("model", model, "model file (vigil model or torchvision .pth with arch) or registered NAME@alias");
    v("workspace", workspace, "workspace folder (tracking store and model registry)");
    v("arch", arch, "architecture of a torchvision .pth file");
    v("num_classes", num_classes, ".pth: classes of the head (0 = the file's)");
    v("class_names", class_names, ".pth: class names in head order (detectors: without the background)");
    v("name", name, "served model name (default: the file's stem)");
    v("host", host, "address to listen on");
    v("port", port, "port (0 = any free port)");
    v("port_file", port_file, "write the bound port here once listening");
    v("http_threads", http_threads, "HTTP worker threads (decode, validate, encode)");
    v("max_batch", max_batch, "images per forward pass, at most");
    v("max_queue_delay_ms", max_queue_delay_ms, "how long the first waiting image waits for more");
    v("queue_capacity", queue_capacity, "images waiting for inference, at most (then 503)");
    v("instances", instances, "inference workers, each with its own copy of the model");
    v("threads_per_instance", threads_per_instance, "LibTorch threads per worker (0 = cores / instances)");
    v("blas_threads", blas_threads,
      "OpenBLAS threads (0 = 1 or one per core, whichever runs the model faster)");
    v("max_body_mb", max_body_mb, "request body limit in MiB (then 413)");
    v("max_pixels", max_pixels, "image pixel limit against decompression bombs (then 413)");
    v("max_batch_images", max_batch_images, "images per /v1/predict/batch or infer request");
    v("max_detections_limit", max_detections_limit, "largest max_detections a request may ask for");
    v("score_threshold", score_threshold, "POST /predict/ draws boxes scoring above this");
    v("rate_limit", rate_limit, "per-client limit on predict routes, e.g. 10/minute (empty = none)");
    v("api_keys", api_keys, "accepted API keys (empty = no authentication)");
    v("api_keys_file", api_keys_file, "file with one API key per line");
    v("cors_origins", cors_origins, "origins allowed by CORS ('*' = any)");
    v("access_log", access_log, "access log file, '-' for stderr, 'off' (default: none)");
    v("web_dir", web_dir, "serve the UI from this folder instead of the embedded copy");
    v("read_timeout_s", read_timeout_s, "seconds a client may take to send a request");
    v("device", device, "cpu or cuda");
    v("cameras", cameras, "cameras.yaml to watch (as `vigil watch --config`); \"\" = none");
    v("max_streams", max_streams, "MJPEG and event streams open at once, at most (then 503)");
    v("fold_batch_norms", fold_batch_norms, "fold batch norms into convolutions (faster)");
    v("channels_last", channels_last, "channels-last convolution weights (faster on CPU)");
    v("precision", precision,
      "fp32; bf16 on CPUs with AVX512_BF16/AMX (faster, within rounding); int8 for ResNet backbones on "
      "CPUs with VNNI (calibrated on `calibration` at every load)");
    v("calibration", calibration, "int8: images to calibrate on (file, folder or @LIST)");
    v("calibration_images", calibration_images, "int8: how many of them to use");
    v("prediction_log", prediction_log, "record every answered image in the workspace's prediction log");
    v("log_queue", log_queue, "prediction log rows waiting at most (then dropped and counted)");
    v("log_images", log_images, "fraction of inputs kept as JPEG for review (0..1)");
    v("log_retention_days", log_retention_days, "prune prediction log rows older than this (0 = never)");
    v("monitor_reference", monitor_reference,
      "drift monitoring: reference profile (.json), dataset folder, or 'model' (the served model's own)");
    v("monitor_every_s", monitor_every_s, "seconds between drift checks");
    v("monitor_window_s", monitor_window_s, "seconds of traffic each drift check compares");
    v("monitor_min_current", monitor_min_current, "logged predictions a drift verdict needs at least");
    v("monitor_webhook", monitor_webhook, "URL that drift and drift_resolved alerts are POSTed to");
    v("monitor_webhook_secret_env", monitor_webhook_secret_env,
      "environment variable with the alerts' HMAC key");
    v("registry_webhook", registry_webhook,
      "URL each registry change (new version, alias moved or deleted) is POSTed to");
    v("registry_webhook_secret_env", registry_webhook_secret_env,
      "environment variable with the registry webhook's HMAC key");
    v("retrain_config", retrain_config, "training config of POST /v1/retrain jobs ('' = retraining off)");
    v("retrain_model", retrain_model, "registered model challengers join (default: the served NAME@alias's)");
    v("retrain_alias", retrain_alias, "the champion's alias (default: the served alias, else production)");
    v("upload_dataset", upload_dataset, "dataset POST /upload adds versions to (default uploads)");
    v("positive_class", positive_class,
      "class whose probability POST /predict answers (default: the class named like Accident)");
    v("follow_alias_s", follow_alias_s,
      "seconds between re-resolving a served NAME@alias; another version is hot-reloaded (0 = off)");
  }
  /// Throws InvalidArgument naming the field.
  void validate() const;
};

/// One route the server answers, as its route table declares it.
struct RouteInfo {
  std::string method;   ///< "GET", "POST", "PUT" or "DELETE"
  std::string pattern;  ///< a regex matched against the whole path
  std::string label;    ///< the bounded route name of metrics and logs, e.g. "/v1/runs/{ref}"
};

/// Every row of every route table, in registration order: the single list the server registers, labels
/// requests by and answers 405 `Allow` from (tests iterate it, so a new route is covered by its row alone).
std::vector<RouteInfo> server_routes();

class Server {
 public:
  /// Loads the model, if any (throws NotFound/DataError/InvalidArgument when it cannot be served), and sets
  /// up the routes; does not listen yet.
  explicit Server(ServeOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds host:port; returns the bound port (the chosen one for port 0). Throws IoError when it cannot.
  int bind();
  /// Serves until stop(), an interrupt (SIGINT/SIGTERM) or a fatal error; SIGHUP reloads the model. Returns
  /// after the accepted requests were answered and the inference queue drained.
  void run();
  /// Stops accepting; thread-safe.
  void stop();
  /// Reloads the model (path empty: from its source) beside the old one; throws and keeps the old one on
  /// failure.
  void reload(const std::string& path = "");

  struct Impl;  ///< defined in src/serve/server_impl.h (keeps httplib out of this header)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil::serve
