#pragma once
/// COCO box metrics with pycocotools' exact semantics (COCOeval with iouType "bbox", useCats 1, default
/// parameters): per-image greedy matching at ten IoU thresholds, 101-point interpolated precision, the four
/// area ranges and three max-detection limits, crowd regions, and the twelve summary numbers.
/// Torch-free and OpenCV-free: the inputs are plain structs (or COCO JSON, see coco_json.h).

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/data/dataset.h"

namespace vigil::eval {

/// One ground-truth box, COCO style: top-left x, y and width, height in pixels.
struct GtBox {
  int64_t image_id = 0;
  int64_t category_id = 0;
  double x = 0, y = 0, w = 0, h = 0;
  double area = 0;  ///< what the area ranges test (COCO's `area` field, not recomputed from the box)
  bool iscrowd =
      false;  ///< a crowd region: IoU is intersection / detection area, matched repeatedly, ignored
  /// Ignored like a crowd region (neither a hit nor a miss) but matched one-to-one with the usual IoU.
  /// pycocotools discards the JSON `ignore` field, so readers of COCO JSON leave this false.
  bool ignore = false;
};

/// One detection (a COCO results entry).
struct DetBox {
  int64_t image_id = 0;
  int64_t category_id = 0;
  double x = 0, y = 0, w = 0, h = 0;
  double score = 0;
};

/// A COCO category: its id and its display name (the key of per-class metrics).
struct Category {
  int64_t id = 0;
  std::string name;
};

/// Everything one evaluation looks at. Images without ground truth or without detections count, so they are
/// listed explicitly; categories without ground truth are reported as undefined (-1), not as zero.
struct DetectionData {
  std::vector<int64_t> image_ids;
  std::vector<Category> categories;
  std::vector<GtBox> ground_truth;
  std::vector<DetBox> detections;
  /// Throws InvalidArgument naming the offending element: duplicate image or category ids, a box whose image
  /// or category is not listed, a non-finite number, a negative width or height.
  void validate() const;
};

/// Ground truth of `samples` (every sample when empty) of a detection dataset: image id = sample index,
/// category id = class id + 1 (torchvision's label index, 0 being background), categories named after
/// Dataset::classes, boxes converted from x1y1x2y2 to x, y, w, h with area = w * h, Box::crowd -> iscrowd.
/// This matches the ids `vigil predict --format coco` writes for the same inputs in the same order.
DetectionData detection_data_from_dataset(const data::Dataset& ds, const std::vector<int>& samples = {});

/// COCOeval's adjustable parameters (the rest are pycocotools' defaults, fixed for exactness).
struct CocoEvalOptions {
  /// The maxDets parameter: ascending; matching runs with the last, the summary reads all three.
  std::array<int, 3> max_dets = {1, 10, 100};
  size_t threads = 0;  ///< worker threads for matching and accumulation (0 = all cores); results do not vary
  /// Throws InvalidArgument unless max_dets are positive and strictly ascending.
  void validate() const;
};

/// Indices into CocoEvalResult::stats, in pycocotools' summarize() order.
enum CocoStat : int {
  kAP = 0,
  kAP50,
  kAP75,
  kAPSmall,
  kAPMedium,
  kAPLarge,
  kAR1,
  kAR10,
  kAR100,
  kARSmall,
  kARMedium,
  kARLarge,
  kCocoStatCount
};

/// "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl".
const std::array<std::string_view, kCocoStatCount>& coco_stat_names();

/// numpy.linspace(start, stop, num) in float64, value for value: i * ((stop - start) / (num - 1)) + start,
/// the last set to stop. num >= 2.
std::vector<double> numpy_linspace(double start, double stop, size_t num);

/// The IoU thresholds built like numpy's linspace(.5, .95, 10): i * step + .5 with the last set to .95.
const std::vector<double>& coco_iou_thresholds();
/// The recall thresholds, numpy linspace(0, 1, 101).
const std::vector<double>& coco_recall_thresholds();
/// Area ranges [lo, hi] (inclusive at both ends): all, small, medium, large.
const std::array<std::array<double, 2>, 4>& coco_area_ranges();
/// "all", "small", "medium", "large".
const std::array<std::string_view, 4>& coco_area_names();

/// pycocotools' accumulate() output plus the summary. Arrays are flat, row-major in the documented order;
/// -1 marks settings with no ground truth (absent categories), exactly as pycocotools.
struct CocoEvalResult {
  std::vector<double> iou_thresholds;  ///< T
  std::vector<double> rec_thresholds;  ///< R
  std::vector<int64_t> category_ids;   ///< K, ascending
  std::vector<std::string> category_names;
  std::array<int, 3> max_dets = {1, 10, 100};  ///< M
  static constexpr size_t kAreas = 4;          ///< A

  std::vector<double> precision;  ///< [T][R][K][A][M]
  std::vector<double> recall;     ///< [T][K][A][M]
  std::vector<double> scores;     ///< [T][R][K][A][M]: the score at which each precision entry was reached

  std::array<double, kCocoStatCount> stats{};  ///< indexed by CocoStat; -1 where undefined
  std::vector<double> ap_per_class;            ///< K: AP@[.5:.95], area all, last maxDet; -1 without GT
  std::vector<double> ap50_per_class;          ///< K: AP@.5, area all, last maxDet; -1 without GT

  size_t T() const { return iou_thresholds.size(); }  ///< IoU thresholds
  size_t R() const { return rec_thresholds.size(); }  ///< recall thresholds
  size_t K() const { return category_ids.size(); }    ///< categories
  /// Offset of precision[t][r][k][a][m] (also of scores).
  size_t precision_index(size_t t, size_t r, size_t k, size_t a, size_t m) const {
    return (((t * R() + r) * K() + k) * kAreas + a) * max_dets.size() + m;
  }
  /// Offset of recall[t][k][a][m].
  size_t recall_index(size_t t, size_t k, size_t a, size_t m) const {
    return ((t * K() + k) * kAreas + a) * max_dets.size() + m;
  }
};

/// Runs pycocotools' evaluate() + accumulate() + summarize() on `data` (validated first: pycocotools would
/// silently drop a detection of an unknown category, here it is an error). Deterministic for any thread
/// count. Not modelled, since boxes carry no annotation ids: pycocotools counting a match to an annotation
/// with id 0 as unmatched (coco_ground_truth_json numbers annotations from 1).
CocoEvalResult coco_evaluate(const DetectionData& data, const CocoEvalOptions& options = {});

/// The detection fitness that picks a training run's best weights and decides a retraining: Ultralytics'
/// weights, 0.1 AP50 + 0.9 AP, on COCO's AP (an undefined AP counts 0). Ultralytics' own mAPs close the
/// precision curve with a straight line down to recall 1, which credits a weak model with recall it never
/// reaches, so a detector with a few good boxes can outscore a better one.
double detection_fitness(const CocoEvalResult& coco);

/// pycocotools' bbox IoU (maskApi bbIou) of a detection and a ground-truth box given as x, y, w, h: no +1,
/// 0 without overlap, intersection over the detection's area for a crowd region.
double coco_box_iou(const DetBox& dt, const GtBox& gt);

}  // namespace vigil::eval
