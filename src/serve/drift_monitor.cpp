#include "vigil/serve/drift_monitor.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>

#include "vigil/core/clock.h"
#include "vigil/core/error.h"
#include "vigil/video/event_sinks.h"
#include "vigil/video/watch_config.h"

namespace vigil::serve {

namespace {

/// The webhook body: the verdict and each column's outcome, without the distributions (the report has them).
nlohmann::json alert_body(const std::string& kind, const nlohmann::json& report) {
  nlohmann::json columns = nlohmann::json::array();
  for (const auto& c : report["columns"])
    columns.push_back(
        {{"column", c["column"]}, {"test", c["test"]}, {"score", c["score"]}, {"drifted", c["drifted"]}});
  return {{"type", kind},
          {"model", report["model"]},
          {"time", format_utc_ms(unix_now_ms())},
          {"since", report["since"]},
          {"current_rows", report["current_rows"]},
          {"drift_share", report["drift_share"]},
          {"drifted_columns", report["drifted_columns"]},
          {"columns", std::move(columns)},
          {"embedding_drift", report.value("embedding_drift", false)},
          {"embedding_score", report.contains("embedding") && report["embedding"].is_object()
                                  ? report["embedding"]["score"]
                                  : nlohmann::json()},
          {"feedback", report["feedback"]}};
}

}  // namespace

void DriftMonitorOptions::validate() const {
  VIGIL_CHECK(!reference.empty(), "monitor_reference: expected a profile (.json) or a dataset folder");
  VIGIL_CHECK(every_s >= 1, "monitor_every_s: expected >= 1, got {}", every_s);
  VIGIL_CHECK(window_s >= 1, "monitor_window_s: expected >= 1, got {}", window_s);
  VIGIL_CHECK(drift_share > 0 && drift_share <= 1, "monitor_drift_share: expected (0, 1], got {}",
              drift_share);
}

DriftMonitor::DriftMonitor(DriftMonitorOptions options, PredictionRecorder& recorder,
                           std::function<std::string()> model_name,
                           std::function<void(const monitor::DriftReport&)> on_report)
    : options_(std::move(options)),
      recorder_(recorder),
      model_name_(std::move(model_name)),
      on_report_(std::move(on_report)) {
  options_.validate();
  if (options_.reference == "model")
    follow_model_profile();  // refuses to start without one
  else
    reference_ = monitor::load_reference(options_.reference);
  if (!options_.webhook.empty()) {
    video::WebhookConfig w;
    w.url = options_.webhook;
    w.secret_env = options_.webhook_secret_env;
    webhook_ = std::make_unique<video::WebhookSender>(w);  // validates the URL and the secret's variable
  }
}

DriftMonitor::~DriftMonitor() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (webhook_) webhook_->close(2);
}

void DriftMonitor::start() {
  thread_ = std::thread([this] { run(); });
}

void DriftMonitor::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, std::chrono::duration<double>(options_.every_s), [&] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    try {
      check_now();
    } catch (const std::exception& e) {  // a busy database skips one check, never the server
      spdlog::warn("monitor: drift check failed: {}", e.what());
    }
    lock.lock();
  }
}

void DriftMonitor::follow_model_profile() {
  VIGIL_CHECK(options_.model_file, "monitor_reference model: no served model to follow");
  const std::string file = options_.model_file();
  const std::string path = monitor::profile_path_for(file).string();
  if (path == reference_path_) return;
  if (!std::filesystem::exists(path))
    throw Unavailable(fmt::format(
        "monitor_reference model: the served model {} has no stored profile ({}): training writes one beside "
        "its weights and registering keeps it; for an older or imported model make one with `vigil monitor "
        "profile VALIDATION_DATA -o profile.json --model MODEL` and pass monitor_reference=profile.json",
        file, path));
  reference_ = monitor::load_reference(path);
  reference_path_ = path;
  spdlog::info("monitor: reference profile {} ({} images)", path, reference_.rows.size());
}

nlohmann::json DriftMonitor::check_now() {
  std::lock_guard check(check_mutex_);
  recorder_.flush();
  store::PredictionFilter f;
  f.model = model_name_();
  if (options_.reference == "model") {
    follow_model_profile();
    if (options_.model_version) f.version = options_.model_version();
  }
  f.since_ms = unix_now_ms() - static_cast<int64_t>(options_.window_s * 1000);
  f.limit = 1000000;
  const store::PredictionPage page = recorder_.log().search(f);
  monitor::DriftReportOptions o;
  o.min_current = options_.min_current;
  o.drift_share = options_.drift_share;
  monitor::DriftReport r = monitor::drift_report(reference_, page.rows, o);
  r.model = f.model;
  r.version = f.version;
  r.since_ms = f.since_ms;
  nlohmann::json j = monitor::to_json(r);
  j["checked"] = format_utc_ms(unix_now_ms());
  if (on_report_) on_report_(r);
  bool was_drifted = false;
  {
    std::lock_guard lock(mutex_);
    latest_ = j;
    was_drifted = drifted_;
    if (r.enough_data) drifted_ = r.drifted();
  }
  if (r.enough_data && r.drifted() != was_drifted) {
    const std::string kind = r.drifted() ? "drift" : "drift_resolved";
    spdlog::log(
        r.drifted() ? spdlog::level::warn : spdlog::level::info,
        "monitor: {} for model {}: {} of {} columns{}", kind, r.model, r.drift.drifted_columns,
        r.drift.columns.size(),
        r.embedding ? fmt::format(", embeddings {}", r.embedding->drifted ? "drifted" : "steady") : "");
    if (webhook_)
      webhook_->send(kind, fmt::format("{}:{}:{}", r.model, kind, unix_now_ms()), alert_body(kind, j).dump());
  }
  return j;
}

nlohmann::json DriftMonitor::latest() const {
  std::lock_guard lock(mutex_);
  return latest_;
}

nlohmann::json DriftMonitor::webhook_stats() const {
  if (!webhook_) return nullptr;
  const video::SinkStats s = webhook_->stats();
  return {{"url", webhook_->url()}, {"delivered", s.written}, {"failed", s.failed},
          {"retries", s.retries},   {"queued", s.queued},     {"last_error", s.last_error}};
}

}  // namespace vigil::serve
