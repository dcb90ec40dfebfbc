#pragma once
/// The drift check on a schedule inside `vigil serve`: every `every_s` seconds the served model's logged
/// traffic of the last `window_s` seconds is compared with its reference profile (monitor/report.h, the same
/// report as `vigil monitor report`). The latest report is kept for GET /v1/monitor and the Monitoring page,
/// its figures go to /metrics, and a webhook hears when drift starts ("drift") and when it ends
/// ("drift_resolved").

#include <nlohmann/json.hpp>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "vigil/monitor/report.h"
#include "vigil/serve/prediction_recorder.h"

namespace vigil::video {
class WebhookSender;
}

namespace vigil::serve {

struct DriftMonitorOptions {
  /// A profile (.json), a dataset folder, or "model": the served model's own profile (written by training
  /// beside its weights and kept with the registered version: train/run_profile.h), followed when the served
  /// version changes; then only the served version's traffic is compared.
  std::string reference;
  double every_s = 3600;           ///< seconds between checks
  double window_s = 86400;         ///< the traffic compared: this many seconds back from the check
  size_t min_current = 30;         ///< fewer logged predictions: no verdict
  double drift_share = 0.5;        ///< dataset drift when at least this share of columns drifted
  std::string webhook;             ///< POST drift / drift_resolved here ("" = none)
  std::string webhook_secret_env;  ///< HMAC key for X-Vigil-Signature from this environment variable
  /// reference "model": the served model's file and version at each check.
  std::function<std::string()> model_file, model_version;
  void validate() const;
};

class DriftMonitor {
 public:
  /// `model_name()` gives the served model's name at each check; `on_report` runs after each check (gauges).
  /// Loads the reference now (NotFound / InvalidArgument naming the file when it is not one).
  DriftMonitor(DriftMonitorOptions options, PredictionRecorder& recorder,
               std::function<std::string()> model_name,
               std::function<void(const monitor::DriftReport&)> on_report);
  ~DriftMonitor();
  DriftMonitor(const DriftMonitor&) = delete;
  DriftMonitor& operator=(const DriftMonitor&) = delete;

  /// Starts the schedule (the first check runs after `every_s`).
  void start();
  /// Runs a check now (after writing what the log queue holds) and returns its report as JSON.
  nlohmann::json check_now();
  /// The latest report as JSON (null before the first check).
  nlohmann::json latest() const;
  /// Deliveries of the drift webhook (for /v1/monitor).
  nlohmann::json webhook_stats() const;

 private:
  void run();

  DriftMonitorOptions options_;
  PredictionRecorder& recorder_;
  std::function<std::string()> model_name_;
  std::function<void(const monitor::DriftReport&)> on_report_;
  /// Loads the served model's profile when the served file changed (reference "model"); Unavailable naming
  /// the file when the model has none.
  void follow_model_profile();

  monitor::Profile reference_;
  std::string reference_path_;  ///< reference "model": the profile loaded
  std::unique_ptr<video::WebhookSender> webhook_;
  mutable std::mutex mutex_;
  std::mutex check_mutex_;  ///< one check at a time (schedule and on-demand)
  std::condition_variable wake_;
  nlohmann::json latest_;
  bool drifted_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace vigil::serve
