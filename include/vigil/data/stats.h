#pragma once
/// Descriptive statistics of a dataset (class balance, objects per image, box and image sizes) as JSON, as a
/// text summary and as PNG plots.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "vigil/data/dataset.h"

namespace vigil::data {

/// Per class: classification counts images; detection counts boxes and the images containing the class.
struct ClassCount {
  std::string name;
  int64_t images = 0;
  int64_t boxes = 0;
};

/// Per split ("" = samples without a split are not listed).
struct SplitCount {
  std::string split;
  int64_t images = 0;
  int64_t boxes = 0;
};

/// Summary of a list of values: count, min, max, mean and the 5/50/95th percentiles.
struct ValueSummary {
  int64_t count = 0;
  double min = 0, max = 0, mean = 0, p5 = 0, median = 0, p95 = 0;
  static ValueSummary of(std::vector<double> values);
  nlohmann::json to_json() const;
};

struct DatasetStats {
  Task task = Task::kDetection;
  int64_t n_images = 0;
  int64_t n_boxes = 0;
  std::vector<ClassCount> classes;  ///< same order as Dataset::classes
  int64_t unlabelled_images = 0;    ///< classification: label outside the class list
  int64_t bad_class_boxes = 0;      ///< detection: class_id outside the class list (not in class counts)
  std::vector<int64_t> objects_per_image;  ///< [n] = images with exactly n boxes (detection)
  // Box geometry in pixels; degenerate boxes (width or height <= 0) are counted but left out of these.
  std::vector<double> box_widths, box_heights, box_sqrt_areas, box_aspects;  ///< aspect = width / height
  int64_t degenerate_boxes = 0;
  int64_t boxes_small = 0, boxes_medium = 0, boxes_large = 0;  ///< COCO: area < 32^2, < 96^2, the rest
  // Images whose size is known; images with width or height 0 are counted in unknown_size_images only.
  std::vector<double> image_widths, image_heights;
  int64_t unknown_size_images = 0;
  std::vector<SplitCount> splits;  ///< sorted by name; empty when no sample has a split

  /// Counts plus summaries and the COCO size bins; the per-box lists are summarised, not listed.
  nlohmann::json to_json() const;
  /// A readable multi-line summary with a class table.
  std::string to_text() const;
};

/// Computes the statistics of every sample in `ds`.
DatasetStats compute_stats(const Dataset& ds);

/// Writes class_counts.png and image_sizes.png, plus objects_per_image.png, box_sizes.png and box_aspect.png
/// for detection datasets, into `dir` (created if missing). Returns the files written.
std::vector<std::filesystem::path> write_stats_plots(const DatasetStats& s, const std::filesystem::path& dir);

}  // namespace vigil::data
