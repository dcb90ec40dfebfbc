#include "vigil/serve/prediction_stats.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

namespace vigil::serve {

namespace {
constexpr size_t kMinuteLatencyCap = 5000;

int64_t epoch_seconds(PredictionStats::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

nlohmann::json number_or_null(double v) {
  return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(std::round(v * 1000) / 1000);
}
}  // namespace

double percentile(std::vector<float> values, double q) {
  if (values.empty()) return std::nan("");
  std::sort(values.begin(), values.end());
  const double pos = q * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (values[hi] - values[lo]) * (pos - static_cast<double>(lo));
}

std::string iso_utc(int64_t epoch_seconds) {
  const std::time_t t = static_cast<std::time_t>(epoch_seconds);
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(t));
}

PredictionStats::PredictionStats() : started_(Clock::now()) {}

PredictionStats::Minute& PredictionStats::minute(Clock::time_point when) {
  const int64_t m = epoch_seconds(when) / 60;
  Minute& entry = recent_[m];
  while (!recent_.empty() && recent_.begin()->first <= m - kRecentMinutes) recent_.erase(recent_.begin());
  return entry;
}

void PredictionStats::record(const std::vector<std::pair<std::string, float>>& labels, double latency_ms,
                             Clock::time_point when) {
  std::lock_guard lock(mutex_);
  ++predictions_;
  for (const auto& [label, confidence] : labels) {
    ClassStats& c = by_class_[label];
    ++c.count;
    c.confidence_sum += confidence;
    confidence_sum_ += confidence;
    ++labelled_;
  }
  const int64_t s = epoch_seconds(when);
  ++by_hour_[s / 3600];
  ++by_day_[s / 86400];
  latencies_.push_back(static_cast<float>(latency_ms));
  if (latencies_.size() > kLatencyWindow) latencies_.pop_front();
  Minute& m = minute(when);
  ++m.requests;
  if (m.latencies.size() < kMinuteLatencyCap) m.latencies.push_back(static_cast<float>(latency_ms));
}

void PredictionStats::record_error(Clock::time_point when) {
  std::lock_guard lock(mutex_);
  ++errors_;
  Minute& m = minute(when);
  ++m.requests;
  ++m.errors;
}

nlohmann::json PredictionStats::to_json(Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  nlohmann::json j;
  j["started_at"] = iso_utc(epoch_seconds(started_));
  j["uptime_s"] = std::round(std::chrono::duration<double>(now - started_).count() * 10) / 10;
  j["requests"] = predictions_ + errors_;
  j["errors"] = errors_;
  j["predictions"] = predictions_;
  nlohmann::json classes = nlohmann::json::object();
  for (const auto& [label, c] : by_class_)
    classes[label] = {{"count", c.count}, {"mean_confidence", number_or_null(c.confidence_sum / c.count)}};
  j["by_class"] = classes;
  j["mean_confidence"] = labelled_ ? number_or_null(confidence_sum_ / labelled_) : nlohmann::json(nullptr);
  const std::vector<float> window(latencies_.begin(), latencies_.end());
  double mean = std::nan("");
  if (!window.empty()) {
    double sum = 0;
    for (float v : window) sum += v;
    mean = sum / window.size();
  }
  j["latency_ms"] = {{"p50", number_or_null(percentile(window, 0.50))},
                     {"p90", number_or_null(percentile(window, 0.90))},
                     {"p95", number_or_null(percentile(window, 0.95))},
                     {"p99", number_or_null(percentile(window, 0.99))},
                     {"mean", number_or_null(mean)},
                     {"window", window.size()}};
  nlohmann::json hours = nlohmann::json::array();
  for (const auto& [h, n] : by_hour_) hours.push_back({{"hour", iso_utc(h * 3600)}, {"count", n}});
  j["by_hour"] = hours;
  nlohmann::json days = nlohmann::json::array();
  for (const auto& [d, n] : by_day_)
    days.push_back({{"day", iso_utc(d * 86400).substr(0, 10)}, {"count", n}});
  j["by_day"] = days;
  nlohmann::json recent = nlohmann::json::array();
  const int64_t now_minute = epoch_seconds(now) / 60;
  for (const auto& [m, entry] : recent_) {
    if (m <= now_minute - kRecentMinutes) continue;
    recent.push_back({{"t", iso_utc(m * 60)},
                      {"requests", entry.requests},
                      {"errors", entry.errors},
                      {"p50_ms", number_or_null(percentile(entry.latencies, 0.50))},
                      {"p95_ms", number_or_null(percentile(entry.latencies, 0.95))}});
  }
  j["recent"] = recent;
  return j;
}

}  // namespace vigil::serve
