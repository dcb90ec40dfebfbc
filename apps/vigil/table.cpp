#include "table.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ctime>

#include "vigil/core/strings.h"

namespace vigil::cli {

namespace {

bool numeric(const std::string& s) {
  return !s.empty() && parse_double(s).has_value();
}

/// Display width: UTF-8 continuation bytes take no column.
size_t width(const std::string& s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

}  // namespace

std::string Table::str() const {
  std::vector<size_t> w(headers_.size());
  for (size_t c = 0; c < headers_.size(); ++c) w[c] = width(headers_[c]);
  for (const auto& row : rows_)
    for (size_t c = 0; c < row.size() && c < w.size(); ++c) w[c] = std::max(w[c], width(row[c]));
  auto line = [&](const std::vector<std::string>& cells, bool header) {
    std::string out;
    for (size_t c = 0; c < w.size(); ++c) {
      const std::string cell = c < cells.size() ? cells[c] : "";
      const std::string pad(w[c] - std::min(w[c], width(cell)), ' ');
      const bool right = !header && numeric(cell);
      out += right ? pad + cell : cell + (c + 1 < w.size() ? pad : "");
      if (c + 1 < w.size()) out += "  ";
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line(headers_, true);
  for (const auto& row : rows_) out += line(row, false);
  return out;
}

std::string format_time_ms(int64_t ms) {
  if (ms <= 0) return "-";
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

std::string format_duration_s(double s) {
  if (!(s >= 0)) return "-";
  if (s < 60) return fmt::format("{:.0f} s", s);
  if (s < 3600) return fmt::format("{:.0f} min {:.0f} s", std::floor(s / 60), std::fmod(s, 60));
  return fmt::format("{:.0f} h {:.0f} min", std::floor(s / 3600), std::floor(std::fmod(s, 3600) / 60));
}

std::string format_metric(double v) {
  return std::isnan(v) ? "-" : fmt::format("{:.5g}", v);
}

}  // namespace vigil::cli
