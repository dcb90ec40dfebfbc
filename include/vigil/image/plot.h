#pragma once
/// PNG plots for reports and dataset statistics, rendered headless with MathGL (kept out of this header).
/// Every function draws a "no data" plot for empty input, writes the file atomically (temporary file beside
/// it, then rename) and throws IoError naming the path when it cannot. Rendering is serialised by a mutex
/// because MathGL keeps global state (fonts, warnings) that is not thread-safe.

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace vigil::image {

/// What every plot shares: texts, size in pixels and axis options.
struct PlotSpec {
  std::string title, xlabel, ylabel;
  int width = 900, height = 600;
  bool log_y = false;  ///< logarithmic y axis; values <= 0 are left out of it
  /// Fixed axis ranges (e.g. [0,1] for PR curves); nullopt means "from the data". Used by line_plot and
  /// scatter; bar charts and histograms always start their bars at zero.
  std::optional<std::pair<double, double>> x_range, y_range;
};

/// One named curve of a line plot.
struct Series {
  std::string name;
  std::vector<double> x, y;
};

/// Vertical bars, one per category, with the category labels on the x axis (slanted when they do not fit
/// side by side) and each value printed above its bar.
void bar_chart(const std::vector<std::string>& labels, const std::vector<double>& values,
               const PlotSpec& spec, const std::filesystem::path& png);

/// Histogram of `values` in `bins` equal-width bins spanning their range; non-finite values are ignored.
void histogram(const std::vector<double>& values, int bins, const PlotSpec& spec,
               const std::filesystem::path& png);

/// One marker per (x[i], y[i]); pairs with a non-finite coordinate are ignored.
void scatter(const std::vector<double>& x, const std::vector<double>& y, const PlotSpec& spec,
             const std::filesystem::path& png);

/// Curves with a legend placed in the emptiest corner.
void line_plot(const std::vector<Series>& series, const PlotSpec& spec, const std::filesystem::path& png);

/// Matrix as coloured cells, row 0 at the top (confusion matrices: rows = truth, columns = prediction),
/// with labelled rows and columns, a colour bar, and each cell's value printed when `annotate`.
void heatmap(const std::vector<std::vector<double>>& m, const std::vector<std::string>& row_labels,
             const std::vector<std::string>& col_labels, const PlotSpec& spec,
             const std::filesystem::path& png, bool annotate = true);

}  // namespace vigil::image
