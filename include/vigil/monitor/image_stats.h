#pragma once
/// Per-image statistics that drift monitoring compares between the training data and the served traffic:
/// size, brightness, contrast, sharpness and colour. Cheap enough for the request path (computed on a copy
/// scaled to 128 px on its long side: bench/monitor_bench), and identical for a training image and a served
/// one.

#include <opencv2/core/mat.hpp>

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

namespace vigil::monitor {

struct ImageStats {
  int width = 0, height = 0;
  double aspect = 0;                    ///< width / height
  double brightness = 0;                ///< mean of the grey image, 0..255
  double contrast = 0;                  ///< standard deviation of the grey image
  double sharpness = 0;                 ///< variance of the Laplacian of the grey image (at the scaled size)
  double saturation = 0;                ///< mean HSV saturation, 0..255
  double red = 0, green = 0, blue = 0;  ///< channel means, 0..255
};

/// The statistics of a decoded BGR (or grey) image. An empty image is an InvalidArgument.
ImageStats image_stats(const cv::Mat& bgr);

/// The numeric statistics by name, in a fixed order (the drift report's columns).
const std::vector<std::string>& image_stat_names();
/// The value of one named statistic; an unknown name is an InvalidArgument listing the names.
double image_stat(const ImageStats& s, const std::string& name);

nlohmann::json to_json(const ImageStats& s);
/// Reads what to_json wrote; missing fields stay 0 (older log rows).
ImageStats image_stats_from_json(const nlohmann::json& j);

}  // namespace vigil::monitor
