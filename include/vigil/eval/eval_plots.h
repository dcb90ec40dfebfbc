#pragma once
/// Evaluation plots (PNG) shared by detection and classification: confusion matrices, per-class curves with
/// their mean (PR, F1/P/R against confidence), ROC curves and reliability diagrams. The functions take plain
/// vectors and names; rendering goes through vigil::image's plotting API, which writes atomically.

#include <filesystem>
#include <string>
#include <vector>

#include "vigil/eval/classification_metrics.h"
#include "vigil/image/plot.h"

namespace vigil::eval {

/// Size and title shared by every evaluation plot; an empty title picks the plot's default.
struct EvalPlotOptions {
  std::string title;
  int width = 900, height = 600;
  /// Throws InvalidArgument for a size outside 100..10000 pixels.
  void validate() const;
};

/// At most this many per-class curves are drawn (the palette has 10 colours, one kept for the mean);
/// with more classes only the mean curve is shown.
inline constexpr int kMaxClassCurves = 9;

/// Square confusion matrix of counts, rows = true class, columns = predicted class, with the same labels
/// on both axes (detection adds a "background" row and column). `normalized` divides each row by its total
/// (empty rows stay 0) and prints fractions; otherwise the counts are printed. Axes read "true" and
/// "predicted". Throws InvalidArgument when the matrix is not square or the labels do not match it.
void plot_confusion(const std::vector<std::vector<double>>& counts, const std::vector<std::string>& labels,
                    bool normalized, const std::filesystem::path& png, const EvalPlotOptions& options = {});

/// Texts and summary of a curve plot.
struct CurvePlotOptions {
  EvalPlotOptions plot;
  std::string xlabel = "recall", ylabel = "precision";
  std::string mean_name = "all classes";  ///< legend name of the mean curve
  /// Appends the mean curve's maximum and where it is, "0.61 at 0.414", to its name (F1-confidence).
  bool annotate_max = false;
  void validate() const;
};

/// Element-wise mean of curves sampled on one shared x grid; non-finite values are skipped per point
/// (NaN when a point has none). Throws InvalidArgument when the curves have different lengths.
std::vector<double> mean_curve(const std::vector<std::vector<double>>& ys);

/// Per-class curves on one shared x grid (e.g. recall 0..1 for PR curves, confidence 0..1 for F1/P/R
/// curves), one series per class named by `names`, plus the mean curve; both axes span [0, 1].
/// Throws InvalidArgument when the sizes disagree.
void plot_curves(const std::vector<double>& x, const std::vector<std::vector<double>>& ys,
                 const std::vector<std::string>& names, const std::filesystem::path& png,
                 const CurvePlotOptions& options = {});

/// ROC curves (x = false positive rate, y = true positive rate) over [0, 1]² with the chance diagonal.
/// Curves containing a non-finite point (undefined ROC) are left out.
void plot_roc(const std::vector<image::Series>& curves, const std::filesystem::path& png,
              const EvalPlotOptions& options = {});

/// Reliability diagram: the accuracy of each confidence bin drawn as bar outlines, the perfect-calibration
/// diagonal and, when `ece` is finite, the ECE in the default title.
void plot_reliability(const std::vector<ReliabilityBin>& bins, double ece, const std::filesystem::path& png,
                      const EvalPlotOptions& options = {});

/// One written plot: what it shows and where it is.
struct PlotFile {
  std::string title;
  std::filesystem::path path;
};

/// Writes confusion_matrix.png, confusion_matrix_normalized.png, roc.png and reliability.png into `dir`
/// (created when missing) and returns them in that order.
std::vector<PlotFile> write_classification_plots(const ClassificationMetrics& metrics,
                                                 const std::filesystem::path& dir);

}  // namespace vigil::eval
