#pragma once
/// Pictures for the report's sample gallery: an image with its ground truth and predictions drawn in the
/// colours of their match status (over each other, or ground truth beside prediction), re-encoded as a small
/// JPEG. The colours are fixed so the report's legend can name them: true positives green, false positives
/// red, missed ground truth orange, matched ground truth (optional) grey, or blue on the truth panel of a
/// two-panel picture.

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/core/error.h"

namespace vigil::eval {

/// CSS colours of the match statuses, the same as drawn on the pictures.
inline constexpr const char* kTruePositiveColour = "#2ca02c";
inline constexpr const char* kFalsePositiveColour = "#d62728";
inline constexpr const char* kMissedColour = "#ff7f0e";
inline constexpr const char* kMatchedTruthColour = "#7f7f7f";
/// Matched ground truth on the truth panel of a two-panel picture: grey would vanish on grey CCTV frames.
inline constexpr const char* kFoundTruthColour = "#1f77b4";

/// A ground-truth box in the pixel coordinates of the original image (x2/y2 exclusive).
struct TruthBox {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  std::string label;
  bool matched = false;  ///< a prediction matched it; unmatched boxes are misses (orange)
};

/// A predicted box in the pixel coordinates of the original image.
struct PredictedBox {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  std::string label;
  float score = -1;            ///< printed after the label when >= 0
  bool true_positive = false;  ///< green when true, red (false positive) otherwise
};

/// How gallery pictures are drawn and encoded.
struct SampleDrawingOptions {
  int max_side = 640;               ///< larger images are shrunk to this longest side (boxes scaled along)
  int jpeg_quality = 85;            ///< 1..100
  bool draw_matched_truth = false;  ///< also frame matched ground truth (grey), under the predictions
  int thickness = 0;                ///< line width in output pixels; 0 scales with the image
  /// Two panels side by side under caption strips: "ground truth" (every box: matched blue, missed orange)
  /// on the left, "prediction" (true positives green, false positives red) on the right; max_side applies to
  /// each panel. Off: one picture with the predictions over the missed (and optionally matched) truth.
  bool truth_beside_prediction = false;
  void validate() const;
};

/// Decodes `image_bytes` (any format vigil::image reads), draws missed and optionally matched ground truth,
/// then the predictions, and returns JPEG bytes. Bytes that do not decode give an InvalidData Status
/// ("cannot draw sample: <kind>: <detail>"). Throws InvalidArgument for bad options.
Result<std::string> draw_sample(std::string_view image_bytes, const std::vector<TruthBox>& truth,
                                const std::vector<PredictedBox>& predictions,
                                const SampleDrawingOptions& options = {});

/// draw_sample on a file's bytes: a missing file is a NotFound Status, an unreadable or undecodable one an
/// InvalidData Status, both naming the file.
Result<std::string> draw_sample_file(const std::filesystem::path& image, const std::vector<TruthBox>& truth,
                                     const std::vector<PredictedBox>& predictions,
                                     const SampleDrawingOptions& options = {});

}  // namespace vigil::eval
