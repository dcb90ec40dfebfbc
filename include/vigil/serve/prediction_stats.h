#pragma once
/// What the server predicted, for GET /v1/stats and the UI's charts: counts per class, per hour and per day,
/// mean confidence, latency percentiles and a per-minute series (the accident seed's prediction-stats).

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace vigil::serve {

class PredictionStats {
 public:
  using Clock = std::chrono::system_clock;
  static constexpr size_t kLatencyWindow = 10000;  ///< predictions the percentiles are computed over
  static constexpr int kRecentMinutes = 60;

  PredictionStats();

  /// One answered image: the labels it produced (a classifier's one label, a detector's boxes) with their
  /// confidences, and the request's latency.
  void record(const std::vector<std::pair<std::string, float>>& labels, double latency_ms,
              Clock::time_point when = Clock::now());
  /// One failed predict/infer request.
  void record_error(Clock::time_point when = Clock::now());

  /// The /v1/stats body (without the queue and batch fields, which the server adds).
  nlohmann::json to_json(Clock::time_point now = Clock::now()) const;

 private:
  struct ClassStats {
    uint64_t count = 0;
    double confidence_sum = 0;
  };
  struct Minute {
    uint64_t requests = 0, errors = 0;
    std::vector<float> latencies;  ///< capped per minute
  };
  Minute& minute(Clock::time_point when);

  mutable std::mutex mutex_;
  Clock::time_point started_;
  uint64_t predictions_ = 0, errors_ = 0, labelled_ = 0;
  double confidence_sum_ = 0;
  std::map<std::string, ClassStats> by_class_;
  std::map<int64_t, uint64_t> by_hour_;  ///< hours since the epoch (UTC)
  std::map<int64_t, uint64_t> by_day_;   ///< days since the epoch (UTC)
  std::deque<float> latencies_;
  std::map<int64_t, Minute> recent_;  ///< minutes since the epoch
};

/// The q-quantile (0..1) of `values` by linear interpolation between order statistics (numpy's default);
/// NaN when empty.
double percentile(std::vector<float> values, double q);

/// "2026-12-01T17:00:00Z" for seconds since the epoch.
std::string iso_utc(int64_t epoch_seconds);

}  // namespace vigil::serve
