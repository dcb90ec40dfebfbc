#pragma once
// Plain-text tables for list commands: columns sized to their widest cell, numbers right-aligned.

#include <cstdint>
#include <string>
#include <vector>

namespace vigil::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  bool empty() const { return rows_.empty(); }
  /// The table as text, one line per row, ending in a newline.
  std::string str() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

/// "2026-12-01 21:07" in UTC from Unix milliseconds ("-" for 0).
std::string format_time_ms(int64_t ms);
/// "42 s", "3 min 5 s", "2 h 10 min" ("-" when negative).
std::string format_duration_s(double seconds);
/// A metric value with 5 significant digits ("-" for NaN).
std::string format_metric(double v);

}  // namespace vigil::cli
