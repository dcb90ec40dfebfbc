#pragma once
/// The Ultralytics-style view of detection quality, on the same DetectionData as coco_eval.h: per-class
/// precision-recall and metric-confidence curves, precision and recall at the confidence where the mean F1
/// peaks, mAP50 and mAP50-95 computed the Ultralytics way (ap_per_class, compute_ap, match_predictions), the
/// detection confusion matrix with a background row and column (ConfusionMatrix.process_batch), and
/// darknet-style per-class lines (AP50, TP, FP, FN at one operating confidence).
///
/// Ultralytics has no crowd regions: crowd and ignored ground truth is left out of this view (Ultralytics'
/// COCO converter drops iscrowd annotations), so a detection on a crowd region is a false positive here.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "vigil/eval/coco_eval.h"

namespace vigil::eval {

/// Number of IoU thresholds of the Ultralytics view (0.50:0.05:0.95, the COCO ones).
inline constexpr size_t kUltralyticsIous = 10;
/// Points of the confidence grid of the metric-confidence curves (px = linspace(0, 1, 1000)).
inline constexpr size_t kCurvePoints = 1000;

/// Settings of ultralytics_metrics().
struct UltralyticsOptions {
  /// Confidence for the per-class TP/FP/FN lines; < 0: the one where the smoothed mean F1 peaks.
  double operating_conf = -1;
  size_t threads = 0;  ///< worker threads for matching (0 = all cores); results do not vary
  /// Throws InvalidArgument unless operating_conf is finite.
  void validate() const;
};

/// One class with ground truth (Ultralytics' unique target classes).
struct UltralyticsClass {
  int64_t category_id = 0;
  std::string name;
  size_t labels = 0;                          ///< ground-truth boxes (crowd and ignored ones excluded)
  size_t predictions = 0;                     ///< detections of this class
  std::array<double, kUltralyticsIous> ap{};  ///< compute_ap at each IoU threshold
  double p = 0, r = 0, f1 = 0;                ///< at the confidence where the smoothed mean F1 peaks
  double tp = 0, fp = 0;  ///< Ultralytics' estimates there: round(r * labels), round(tp / p - tp)
  std::vector<double> p_curve, r_curve, f1_curve;  ///< over UltralyticsMetrics::px (confidence)
  std::vector<double> pr_curve;  ///< precision envelope at IoU 0.5 over px read as recall (the PR plot)
  double ap50() const { return ap[0]; }  ///< AP at IoU 0.5
  double ap50_95() const;                ///< mean AP over the ten thresholds
};

/// Darknet-style line for one category (every category, with ground truth or not).
struct ClassLine {
  int64_t category_id = 0;
  std::string name;
  double ap50 = -1;               ///< Ultralytics AP at IoU 0.5; -1 for a class without ground truth
  size_t tp = 0, fp = 0, fn = 0;  ///< detections with score >= the operating confidence, matched at IoU 0.5
};

/// Ultralytics' DetMetrics for boxes, plus the darknet-style lines.
struct UltralyticsMetrics {
  std::vector<double> px;                 ///< confidence grid, numpy linspace(0, 1, 1000)
  std::vector<UltralyticsClass> classes;  ///< classes with ground truth, by category id
  size_t best_index = 0;                  ///< argmax of the smoothed (box filter 0.1) mean F1 curve
  double best_conf = 0;                   ///< px[best_index]
  double mp = 0, mr = 0;                 ///< mean precision and recall at best_index ("metrics/precision(B)")
  double map50 = 0, map75 = 0, map = 0;  ///< 0 when no class has ground truth, as Ultralytics
  /// Ultralytics' model fitness: 0.1 mAP50 + 0.9 mAP50-95.
  double fitness() const { return 0.1 * map50 + 0.9 * map; }

  double operating_conf = 0;      ///< the confidence of `lines`
  std::vector<ClassLine> lines;   ///< every category, by id
  size_t tp = 0, fp = 0, fn = 0;  ///< totals of `lines`
};

/// Ultralytics' DetMetrics on `data`. Matching is match_predictions per image and class (IoU >= threshold,
/// each detection keeps its best ground truth, each ground truth its highest-scoring detection); then
/// ap_per_class. Deviations, all where Ultralytics itself is not deterministic or works in float32: IoUs and
/// thresholds are float64; detections with equal scores keep image order, then input order (Ultralytics'
/// argsort is unstable); equal IoUs go to the later ground truth (what numpy's small-array sort gives).
UltralyticsMetrics ultralytics_metrics(const DetectionData& data, const UltralyticsOptions& options = {});

/// "class_id = 1, name = gun, ap = 85.50%   (TP = 80, FP = 10, FN = 5)" per category, then the totals with
/// precision, recall and F1 at the operating confidence, as darknet's `detector map` prints them.
std::vector<std::string> format_class_lines(const UltralyticsMetrics& metrics);

/// Settings of confusion_matrix(); Ultralytics' defaults.
struct ConfusionMatrixOptions {
  double conf = 0.25;  ///< detections with score > conf take part (strictly greater, as Ultralytics)
  double iou = 0.45;   ///< a detection and a ground truth pair up when IoU > iou
  /// Throws InvalidArgument unless conf and iou are in [0, 1].
  void validate() const;
};

/// Detection confusion matrix over the categories (by id) plus background, index K.
/// Layout: counts[true][predicted], the transpose of Ultralytics' matrix[predicted][true]. Row K (true
/// background) holds detections that matched nothing; column K (predicted background) ground truth no
/// detection matched.
struct ConfusionMatrix {
  std::vector<int64_t> category_ids;
  std::vector<std::string> names;               ///< K category names, then "background"
  std::vector<int64_t> counts;                  ///< (K + 1) x (K + 1), row-major
  size_t size() const { return names.size(); }  ///< K + 1
  /// How many boxes of true class `true_index` were predicted as `predicted_index` (K = background).
  int64_t at(size_t true_index, size_t predicted_index) const {
    return counts[true_index * size() + predicted_index];
  }
  /// Each row divided by its sum + 1e-9 (Ultralytics' normalised plot, transposed): row i is where the true
  /// class i went.
  std::vector<double> normalized() const;
};

/// Ultralytics' ConfusionMatrix.process_batch over every image: class-agnostic pairing (each detection keeps
/// its highest-IoU ground truth, then each ground truth its highest-IoU detection), then counts. Crowd and
/// ignored ground truth is left out. One deliberate difference: Ultralytics (`if n:` in process_batch) does
/// not count unmatched detections of an image where nothing paired up at all; here every detection above
/// `conf` is counted somewhere, so the background row holds all false alarms.
ConfusionMatrix confusion_matrix(const DetectionData& data, const ConfusionMatrixOptions& options = {});

/// numpy.interp(x, xp, fp, left, right) for ascending xp (ties allowed), value for value with numpy's rule
/// for repeated xp: an x equal to repeated points takes the last one's fp.
double numpy_interp(double x, const std::vector<double>& xp, const std::vector<double>& fp, double left,
                    double right);

}  // namespace vigil::eval
