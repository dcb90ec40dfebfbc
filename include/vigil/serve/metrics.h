#pragma once
/// A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text exposition
/// format (version 0.0.4) that `promtool check metrics` accepts. Thread-safe; one mutex per family, which is
/// cheap next to an inference.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace vigil::serve {

/// kSummary: quantiles computed elsewhere (e.g. over a camera's last frames) and set() like gauges, one
/// series per `quantile` label value; promtool accepts the `quantile` label only on a summary.
enum class MetricType { kCounter, kGauge, kHistogram, kSummary };

/// One metric name with its label names; series are created on first use of a label-value combination.
class MetricFamily {
 public:
  MetricFamily(std::string name, std::string help, MetricType type, std::vector<std::string> label_names,
               std::vector<double> buckets = {});

  /// Counter: adds `by` (>= 0). Label values in the order of the label names.
  void inc(const std::vector<std::string>& labels = {}, double by = 1);
  /// Gauge (or a counter or summary series read from elsewhere): sets the value.
  void set(double value, const std::vector<std::string>& labels = {});
  /// Histogram: records one observation.
  void observe(double value, const std::vector<std::string>& labels = {});
  /// Removes every series (a gauge whose label set changes, e.g. the loaded model's version).
  void clear();
  /// Counter/gauge value of one series (0 when absent); histograms: their observation count.
  double value(const std::vector<std::string>& labels = {}) const;

  void render(std::string& out) const;
  const std::string& name() const { return name_; }

 private:
  struct Series {
    double value = 0;               // counter, gauge; histogram: sum
    uint64_t count = 0;             // histogram
    std::vector<uint64_t> buckets;  // histogram: per-bucket (not cumulative) counts
  };
  Series& series(const std::vector<std::string>& labels);

  std::string name_, help_;
  MetricType type_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, Series> series_;
};

/// Owns families in registration order.
class MetricsRegistry {
 public:
  MetricFamily& add(std::string name, std::string help, MetricType type,
                    std::vector<std::string> label_names = {}, std::vector<double> buckets = {});
  std::string render() const;

 private:
  std::vector<std::unique_ptr<MetricFamily>> families_;
};

/// Histogram buckets for latencies in seconds, 1 ms to 60 s.
std::vector<double> latency_buckets();
/// Escapes a label value for the exposition format (backslash, quote, newline).
std::string escape_label_value(const std::string& value);

/// The process's own figures from /proc (0 where unavailable).
struct ProcessStats {
  double resident_bytes = 0, virtual_bytes = 0, cpu_seconds = 0, start_time_seconds = 0;
  int threads = 0;
};
ProcessStats read_process_stats();

}  // namespace vigil::serve
