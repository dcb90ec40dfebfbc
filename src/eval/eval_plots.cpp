#include "vigil/eval/eval_plots.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"

namespace vigil::eval {
namespace {

image::PlotSpec make_spec(const EvalPlotOptions& o, const std::string& default_title) {
  image::PlotSpec spec;
  spec.title = o.title.empty() ? default_title : o.title;
  spec.width = o.width;
  spec.height = o.height;
  return spec;
}

bool all_finite(const std::vector<double>& v) {
  return std::all_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
}

// "0.61 at 0.414": the highest finite value of `y` and its x (the first one on ties).
std::string max_summary(const std::vector<double>& x, const std::vector<double>& y) {
  size_t best = y.size();
  for (size_t i = 0; i < y.size(); ++i) {
    if (std::isfinite(y[i]) && (best == y.size() || y[i] > y[best])) best = i;
  }
  if (best == y.size()) return "n/a";
  return fmt::format("{:.2f} at {:.3f}", y[best], x[best]);
}

// Vertical average of ROC curves on a 101-point fpr grid (sklearn's "macro-average ROC" recipe), each curve
// interpolated linearly between its points; at a vertical segment the top point is used.
image::Series mean_roc(const std::vector<image::Series>& curves) {
  image::Series mean{fmt::format("mean of {} classes", curves.size()), {}, {}};
  for (int g = 0; g <= 100; ++g) {
    double x = g / 100.0, sum = 0;
    for (const auto& c : curves) {
      auto k = static_cast<size_t>(std::upper_bound(c.x.begin(), c.x.end(), x) - c.x.begin());
      if (k == 0) continue;  // the curve starts right of x: tpr 0
      if (k == c.x.size()) {
        sum += c.y.back();
        continue;
      }
      double t = (x - c.x[k - 1]) / (c.x[k] - c.x[k - 1]);
      sum += c.y[k - 1] + t * (c.y[k] - c.y[k - 1]);
    }
    mean.x.push_back(x);
    mean.y.push_back(sum / curves.size());
  }
  return mean;
}

std::string format_auc(double auc) {
  return std::isfinite(auc) ? fmt::format("{:.3f}", auc) : std::string("undefined");
}

}  // namespace

void EvalPlotOptions::validate() const {
  VIGIL_CHECK(width >= 100 && height >= 100 && width <= 10000 && height <= 10000,
              "expected a plot size between 100x100 and 10000x10000, got {}x{}", width, height);
}

void CurvePlotOptions::validate() const {
  plot.validate();
}

void plot_confusion(const std::vector<std::vector<double>>& counts, const std::vector<std::string>& labels,
                    bool normalized, const fs::path& png, const EvalPlotOptions& options) {
  options.validate();
  VIGIL_CHECK(labels.size() == counts.size(), "expected one label per confusion-matrix row ({}), got {}",
              counts.size(), labels.size());
  std::vector<std::vector<double>> m;
  for (const auto& row : counts) {
    VIGIL_CHECK(row.size() == counts.size(),
                "expected a square confusion matrix ({} columns), got a row of {}", counts.size(),
                row.size());
    double total = 0;
    for (double v : row) total += std::isfinite(v) ? v : 0.0;
    std::vector<double> r;
    for (double v : row) r.push_back(normalized ? (total > 0 ? v / total : 0.0) : v);
    m.push_back(std::move(r));
  }
  auto spec = make_spec(
      options, normalized ? "Confusion matrix (normalised over each true class)" : "Confusion matrix");
  spec.xlabel = "predicted";
  spec.ylabel = "true";
  image::heatmap(m, labels, labels, spec, png, true);
}

std::vector<double> mean_curve(const std::vector<std::vector<double>>& ys) {
  if (ys.empty()) return {};
  const size_t n = ys.front().size();
  std::vector<double> sum(n, 0.0), count(n, 0.0);
  for (const auto& y : ys) {
    VIGIL_CHECK(y.size() == n, "expected curves of equal length {}, got one of {}", n, y.size());
    for (size_t i = 0; i < n; ++i) {
      if (std::isfinite(y[i])) sum[i] += y[i], count[i] += 1;
    }
  }
  for (size_t i = 0; i < n; ++i) sum[i] = count[i] > 0 ? sum[i] / count[i] : std::nan("");
  return sum;
}

void plot_curves(const std::vector<double>& x, const std::vector<std::vector<double>>& ys,
                 const std::vector<std::string>& names, const fs::path& png,
                 const CurvePlotOptions& options) {
  options.validate();
  VIGIL_CHECK(names.size() == ys.size(), "expected one name per curve ({}), got {}", ys.size(), names.size());
  for (size_t k = 0; k < ys.size(); ++k) {
    VIGIL_CHECK(ys[k].size() == x.size(), "expected curve '{}' to have {} points like x, got {}", names[k],
                x.size(), ys[k].size());
  }
  std::vector<image::Series> series;
  if (ys.size() <= static_cast<size_t>(kMaxClassCurves)) {
    for (size_t k = 0; k < ys.size(); ++k) series.push_back({names[k], x, ys[k]});
  }
  if (!ys.empty()) {
    // Last, so it is drawn over the class curves; with at most kMaxClassCurves of them its colour is unique.
    image::Series mean{options.mean_name, x, mean_curve(ys)};
    if (options.annotate_max) mean.name += " " + max_summary(x, mean.y);
    series.push_back(std::move(mean));
  }
  std::string default_title = options.ylabel + "-" + options.xlabel + " curve";
  default_title[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(default_title[0])));
  if (ys.size() > static_cast<size_t>(kMaxClassCurves)) {
    default_title += fmt::format(" ({} classes, mean only)", ys.size());
  }
  auto spec = make_spec(options.plot, default_title);
  spec.xlabel = options.xlabel;
  spec.ylabel = options.ylabel;
  spec.x_range = std::pair{0.0, 1.0};
  spec.y_range = std::pair{0.0, 1.0};
  image::line_plot(series, spec, png);
}

void plot_roc(const std::vector<image::Series>& curves, const fs::path& png, const EvalPlotOptions& options) {
  options.validate();
  std::vector<image::Series> series;
  for (const auto& c : curves) {
    VIGIL_CHECK(c.x.size() == c.y.size(), "expected ROC curve '{}' with as many x as y, got {} and {}",
                c.name, c.x.size(), c.y.size());
    if (!c.x.empty() && all_finite(c.x) && all_finite(c.y)) series.push_back(c);
  }
  std::string default_title = "ROC curve";
  if (series.size() > static_cast<size_t>(kMaxClassCurves)) {
    default_title += fmt::format(" (mean of {} curves)", series.size());
    series = {mean_roc(series)};
  }
  // Only drawn with real curves, so an all-undefined ROC reads "no data" instead of a lone diagonal.
  if (!series.empty()) series.push_back({"chance", {0.0, 1.0}, {0.0, 1.0}});
  auto spec = make_spec(options, default_title);
  spec.xlabel = "false positive rate";
  spec.ylabel = "true positive rate";
  spec.x_range = std::pair{0.0, 1.0};
  spec.y_range = std::pair{0.0, 1.0};
  image::line_plot(series, spec, png);
}

void plot_reliability(const std::vector<ReliabilityBin>& bins, double ece, const fs::path& png,
                      const EvalPlotOptions& options) {
  options.validate();
  // Bars as a step outline (line_plot has no filled bars): up the left edge, across at the bin's accuracy,
  // down the right edge; empty bins stay at zero.
  image::Series bars{"accuracy", {}, {}};
  for (const auto& b : bins) {
    VIGIL_CHECK(b.lower < b.upper, "expected reliability bins with lower < upper, got ({}, {}]", b.lower,
                b.upper);
    double acc = b.count > 0 ? b.accuracy : 0.0;
    for (auto [x, y] : {std::pair{b.lower, 0.0}, std::pair{b.lower, acc}, std::pair{b.upper, acc},
                        std::pair{b.upper, 0.0}}) {
      bars.x.push_back(x);
      bars.y.push_back(y);
    }
  }
  std::vector<image::Series> series;
  if (!bins.empty()) {
    series.push_back(std::move(bars));
    series.push_back({"perfect calibration", {0.0, 1.0}, {0.0, 1.0}});
  }
  std::string title = "Reliability diagram";
  if (std::isfinite(ece)) title += fmt::format(" (ECE {:.4f})", ece);
  auto spec = make_spec(options, title);
  spec.xlabel = "confidence (top-1 probability)";
  spec.ylabel = "accuracy";
  spec.x_range = std::pair{0.0, 1.0};
  spec.y_range = std::pair{0.0, 1.0};
  image::line_plot(series, spec, png);
}

std::vector<PlotFile> write_classification_plots(const ClassificationMetrics& metrics, const fs::path& dir) {
  ensure_dir(dir);
  std::vector<PlotFile> out;
  out.push_back({"Confusion matrix", dir / "confusion_matrix.png"});
  plot_confusion(metrics.confusion_matrix(false), metrics.classes, false, out.back().path);
  out.push_back({"Confusion matrix (normalised)", dir / "confusion_matrix_normalized.png"});
  plot_confusion(metrics.confusion_matrix(false), metrics.classes, true, out.back().path);

  std::vector<image::Series> curves;
  for (const auto& c : metrics.roc) {
    curves.push_back({fmt::format("{} (AUC {})", c.name, format_auc(c.auc)), c.fpr, c.tpr});
  }
  EvalPlotOptions roc_options;
  roc_options.title = metrics.roc.size() > 1 ? fmt::format("ROC curves, one vs rest (macro AUC {})",
                                                           format_auc(metrics.macro_auc))
                                             : "ROC curve";
  out.push_back({"ROC", dir / "roc.png"});
  plot_roc(curves, out.back().path, roc_options);
  out.push_back({"Reliability diagram", dir / "reliability.png"});
  plot_reliability(metrics.reliability, metrics.ece, out.back().path);
  return out;
}

}  // namespace vigil::eval
