#include <spdlog/spdlog.h>

#include <cmath>

#include "observers.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"
#include "vigil/image/plot.h"

namespace vigil::train::detail {

namespace {

namespace fs = std::filesystem;

/// results.csv as columns of numbers (an empty or unreadable cell is NaN, left out of its curve).
std::vector<std::pair<std::string, std::vector<double>>> read_columns(const fs::path& csv) {
  std::vector<std::pair<std::string, std::vector<double>>> cols;
  const std::vector<std::string> lines = split(read_file(csv), '\n');
  if (lines.empty()) return cols;
  for (const auto& h : split(lines[0], ',')) cols.emplace_back(std::string(trim(h)), std::vector<double>{});
  for (size_t i = 1; i < lines.size(); ++i) {
    if (trim(lines[i]).empty()) continue;
    const std::vector<std::string> cells = split(lines[i], ',');
    for (size_t k = 0; k < cols.size(); ++k) {
      const auto v = k < cells.size() ? parse_double(std::string(trim(cells[k]))) : std::nullopt;
      cols[k].second.push_back(v ? *v : NAN);
    }
  }
  return cols;
}

image::Series series_of(const std::string& name, const std::vector<double>& x, const std::vector<double>& y) {
  image::Series s{name, {}, {}};
  for (size_t i = 0; i < x.size() && i < y.size(); ++i)
    if (std::isfinite(x[i]) && std::isfinite(y[i])) {
      s.x.push_back(x[i]);
      s.y.push_back(y[i]);
    }
  return s;
}

}  // namespace

void CurvesObserver::on_train_start(const RunStart& start) {
  run_dir_ = start.run_dir;
}

void CurvesObserver::on_epoch_end(const EpochReport&) {
  try {
    const auto cols = read_columns(run_dir_ / "results.csv");
    if (cols.empty() || cols[0].first != "epoch") return;
    const std::vector<double>& epochs = cols[0].second;
    std::vector<image::Series> losses, metrics;
    for (size_t k = 1; k < cols.size(); ++k) {
      const std::string& name = cols[k].first;
      if (starts_with(name, "lr/") || name == "time") continue;
      image::Series s = series_of(name, epochs, cols[k].second);
      if (s.x.empty()) continue;
      (name.find("loss") != std::string::npos ? losses : metrics).push_back(std::move(s));
    }
    image::PlotSpec spec;
    spec.xlabel = "epoch";
    spec.title = "losses";
    spec.ylabel = "loss";
    image::line_plot(losses, spec, run_dir_ / "curves_loss.png");
    spec.title = "validation metrics";
    spec.ylabel = "value";
    image::line_plot(metrics, spec, run_dir_ / "curves_metrics.png");
  } catch (const std::exception& e) {
    spdlog::warn("training curves not drawn: {}", e.what());
  }
}

}  // namespace vigil::train::detail
