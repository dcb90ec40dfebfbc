#include "vigil/serve/metrics.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "vigil/core/error.h"

namespace vigil::serve {

namespace {

const char* type_name(MetricType t) {
  switch (t) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
    case MetricType::kSummary:
      return "summary";
  }
  return "untyped";
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{}", v);
}

/// The exposition format's escapes: backslash and newline everywhere, the double quote in label values only.
std::string escape(const std::string& text, bool quote) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

/// `{a="x",b="y"` without the closing brace, so a histogram can append `le`.
std::string label_prefix(const std::vector<std::string>& names, const std::vector<std::string>& values) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    out += out.empty() ? "{" : ",";
    out += names[i] + "=\"" + escape_label_value(values[i]) + "\"";
  }
  return out;
}

std::string close_labels(const std::string& prefix) {
  return prefix.empty() ? "" : prefix + "}";
}

}  // namespace

std::string escape_label_value(const std::string& value) {
  return escape(value, true);
}

std::vector<double> latency_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

MetricFamily::MetricFamily(std::string name, std::string help, MetricType type,
                           std::vector<std::string> label_names, std::vector<double> buckets)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)),
      bounds_(std::move(buckets)) {
  VIGIL_ASSERT(type_ != MetricType::kHistogram || !bounds_.empty(), "histogram {} needs buckets", name_);
}

MetricFamily::Series& MetricFamily::series(const std::vector<std::string>& labels) {
  VIGIL_ASSERT(labels.size() == label_names_.size(), "{}: {} label values for {} labels", name_,
               labels.size(), label_names_.size());
  auto [it, inserted] = series_.try_emplace(labels);
  if (inserted && type_ == MetricType::kHistogram) it->second.buckets.assign(bounds_.size(), 0);
  return it->second;
}

void MetricFamily::inc(const std::vector<std::string>& labels, double by) {
  std::lock_guard lock(mutex_);
  series(labels).value += by;
}

void MetricFamily::set(double value, const std::vector<std::string>& labels) {
  std::lock_guard lock(mutex_);
  series(labels).value = value;
}

void MetricFamily::observe(double value, const std::vector<std::string>& labels) {
  std::lock_guard lock(mutex_);
  Series& s = series(labels);
  s.value += value;
  ++s.count;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (value <= bounds_[i]) {
      ++s.buckets[i];
      break;
    }
  }
}

void MetricFamily::clear() {
  std::lock_guard lock(mutex_);
  series_.clear();
}

double MetricFamily::value(const std::vector<std::string>& labels) const {
  std::lock_guard lock(mutex_);
  auto it = series_.find(labels);
  if (it == series_.end()) return 0;
  return type_ == MetricType::kHistogram ? static_cast<double>(it->second.count) : it->second.value;
}

void MetricFamily::render(std::string& out) const {
  std::lock_guard lock(mutex_);
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name_, escape(help_, false), name_, type_name(type_));
  for (const auto& [labels, s] : series_) {
    const std::string prefix = label_prefix(label_names_, labels);
    if (type_ != MetricType::kHistogram) {
      out += fmt::format("{}{} {}\n", name_, close_labels(prefix), format_value(s.value));
      continue;
    }
    uint64_t cumulative = 0;
    for (size_t i = 0; i < bounds_.size(); ++i) {
      cumulative += s.buckets[i];
      out += fmt::format("{}_bucket{}le=\"{}\"}} {}\n", name_, prefix.empty() ? "{" : prefix + ",",
                         format_value(bounds_[i]), cumulative);
    }
    out += fmt::format("{}_bucket{}le=\"+Inf\"}} {}\n", name_, prefix.empty() ? "{" : prefix + ",", s.count);
    out += fmt::format("{}_sum{} {}\n", name_, close_labels(prefix), format_value(s.value));
    out += fmt::format("{}_count{} {}\n", name_, close_labels(prefix), s.count);
  }
}

MetricFamily& MetricsRegistry::add(std::string name, std::string help, MetricType type,
                                   std::vector<std::string> label_names, std::vector<double> buckets) {
  families_.push_back(std::make_unique<MetricFamily>(std::move(name), std::move(help), type,
                                                     std::move(label_names), std::move(buckets)));
  return *families_.back();
}

std::string MetricsRegistry::render() const {
  std::string out;
  for (const auto& f : families_) f->render(out);
  return out;
}

ProcessStats read_process_stats() {
  ProcessStats p;
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  std::ifstream statm("/proc/self/statm");
  double size = 0, resident = 0;
  if (statm >> size >> resident) {
    p.virtual_bytes = size * page;
    p.resident_bytes = resident * page;
  }
  std::ifstream stat_file("/proc/self/stat");
  std::string line;
  if (std::getline(stat_file, line)) {
    // Fields after the parenthesised command name (which may contain spaces): state is field 3.
    const size_t close = line.rfind(')');
    if (close != std::string::npos) {
      std::istringstream rest(line.substr(close + 2));
      std::vector<std::string> f;
      std::string tok;
      while (rest >> tok) f.push_back(tok);
      // f[0] = field 3; utime = 14, stime = 15, num_threads = 20, starttime = 22.
      if (f.size() > 19) {
        p.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / ticks;
        p.threads = std::stoi(f[17]);
        std::ifstream uptime_file("/proc/uptime");
        double uptime = 0;
        if (uptime_file >> uptime) {
          const double started_ago = uptime - std::stod(f[19]) / ticks;
          p.start_time_seconds = std::floor(static_cast<double>(time(nullptr)) - started_ago);
        }
      }
    }
  }
  return p;
}

}  // namespace vigil::serve
