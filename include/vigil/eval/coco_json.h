#pragma once
/// COCO JSON in and out for the detection metrics: ground-truth documents (images, categories, annotations),
/// results arrays ({image_id, category_id, bbox [x, y, w, h], score}), and the flat metrics object that
/// `vigil evaluate` logs and reports ("coco/AP", ..., "metrics/mAP50-95(B)").
/// Errors are InvalidArgument naming the file (or source) and the offending element, e.g.
/// "preds.json: results[12]: expected an image id of the ground truth, got 4711".

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "vigil/eval/coco_eval.h"
#include "vigil/eval/detection_metrics.h"

namespace vigil::eval {

/// A COCO ground-truth document: images[].id, categories[] (id, name), annotations[] (image_id, category_id,
/// bbox [x, y, w, h], area, iscrowd as 0/1 or a bool). Like pycocotools the `ignore` field is not read. An
/// annotation without `area` gets w * h (pycocotools would fail on it). Annotations of unknown images or
/// categories, duplicate ids, and malformed entries are errors. `source` names the document in messages.
DetectionData parse_coco_ground_truth(const nlohmann::json& doc, const std::string& source);
/// Reads a ground-truth file (NotFound / IoError when it cannot be read) and parses it.
DetectionData read_coco_ground_truth(const std::filesystem::path& path);

/// A COCO results array checked against `gt`: every entry needs an image id and a category id of the ground
/// truth (pycocotools' loadRes asserts the first and silently drops the second; both are errors here), a bbox
/// of four finite numbers with w, h >= 0 and a finite score. Other fields are ignored.
std::vector<DetBox> parse_coco_results(const nlohmann::json& doc, const DetectionData& gt,
                                       const std::string& source);
/// Reads a results file and parses it against `gt`.
std::vector<DetBox> read_coco_results(const std::filesystem::path& path, const DetectionData& gt);

/// The results array for `dets`, numbers written to round-trip exactly.
nlohmann::json coco_results_json(const std::vector<DetBox>& dets);
/// Writes coco_results_json atomically.
void write_coco_results(const std::filesystem::path& path, const std::vector<DetBox>& dets);

/// A ground-truth document pycocotools can load: images [{id}], categories [{id, name}], annotations with ids
/// 1..N in input order, bbox, area and iscrowd. GtBox::ignore has no COCO spelling (pycocotools drops the
/// `ignore` field) and is not written.
nlohmann::json coco_ground_truth_json(const DetectionData& data);
/// Writes coco_ground_truth_json atomically.
void write_coco_ground_truth(const std::filesystem::path& path, const DetectionData& data);

/// "coco/AP", "coco/AP50", "coco/AP75", "coco/APs", "coco/APm", "coco/APl", "coco/AR1", "coco/AR10",
/// "coco/AR100", "coco/ARs", "coco/ARm", "coco/ARl" (-1 where undefined), then "coco/AP/<class name>" and
/// "coco/AP50/<class name>" per category.
nlohmann::json metrics_json(const CocoEvalResult& coco);
/// The COCO keys plus Ultralytics' "metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)",
/// "metrics/mAP50-95(B)".
nlohmann::json metrics_json(const CocoEvalResult& coco, const UltralyticsMetrics& ultralytics);

}  // namespace vigil::eval
