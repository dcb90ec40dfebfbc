#pragma once
/// The detection part of an evaluation's outputs: the plots (PR, F1/P/R-confidence curves, confusion
/// matrices), the report sections, the printed summary, and the per-box match status of one image for the
/// sample gallery.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "vigil/eval/coco_eval.h"
#include "vigil/eval/detection_metrics.h"
#include "vigil/eval/eval_plots.h"
#include "vigil/eval/report.h"
#include "vigil/eval/sample_drawing.h"

namespace vigil::eval {

/// Everything computed for one detection evaluation.
struct DetectionEvaluation {
  CocoEvalResult coco;
  UltralyticsMetrics ultralytics;
  ConfusionMatrix confusion;
  ConfusionMatrixOptions confusion_options;  ///< the thresholds `confusion` was counted with
};

/// Runs the COCO evaluation, the Ultralytics view and the confusion matrix on `data`.
DetectionEvaluation evaluate_detections(const DetectionData& data,
                                        const ConfusionMatrixOptions& confusion = {});

/// Writes PR_curve.png, F1_curve.png, P_curve.png, R_curve.png, confusion_matrix.png and
/// confusion_matrix_normalized.png into `dir` (created when missing), Ultralytics' file names.
std::vector<PlotFile> write_detection_plots(const DetectionEvaluation& evaluation,
                                            const std::filesystem::path& dir);

/// The summary table printed by `vigil evaluate`: the twelve COCO numbers, the Ultralytics headline numbers
/// and darknet-style per-class lines.
std::string detection_summary(const DetectionEvaluation& evaluation);

/// Adds the COCO and Ultralytics tables, the per-class table (instances, P, R, AP50, AP50-95, TP, FP, FN),
/// the confusion matrix as a table of counts (rows true, columns predicted, background last) and the plots.
void add_detection_sections(HtmlReport& report, const DetectionEvaluation& evaluation,
                            const std::vector<PlotFile>& plots);

/// Match status of one image's boxes for drawing: detections scoring at least `min_score` are matched
/// greedily by descending score to unmatched ground truth of the same category with IoU >= `iou` (COCO's
/// rule at one threshold; crowd ground truth absorbs detections without counting). Labels come from
/// `categories`.
struct ImageMatch {
  std::vector<TruthBox> truth;
  std::vector<PredictedBox> predictions;
  size_t true_positives = 0, false_positives = 0, misses = 0;
};
ImageMatch match_image(const std::vector<GtBox>& truth, const std::vector<DetBox>& detections,
                       const std::vector<Category>& categories, double min_score, double iou = 0.5);

}  // namespace vigil::eval
