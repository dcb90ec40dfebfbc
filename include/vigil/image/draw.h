#pragma once
/// Drawing detection boxes with class-coloured frames and "label score" captions.

#include <opencv2/core.hpp>

#include <optional>
#include <string>
#include <vector>

namespace vigil::image {

/// One box to draw, in pixel coordinates of the image it is drawn on.
struct DrawBox {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  std::string label;                ///< caption text; "" draws no caption unless there is a score
  float score = -1;                 ///< appended to the caption as "0.93" when >= 0
  int class_id = 0;                 ///< picks the colour from class_color unless `color` is set
  std::optional<cv::Scalar> color;  ///< BGR override
};

/// A distinct BGR colour per class id, the same in every run (a fixed palette, cycled).
cv::Scalar class_color(int class_id);

/// Draws frames and captions onto an 8-bit BGR image. Boxes are clipped to the image; captions sit above
/// the box when there is room, else inside it, and are always kept within the image. `thickness` 0 scales the
/// line width with the image size.
void draw_boxes(cv::Mat& bgr, const std::vector<DrawBox>& boxes, int thickness = 0);

}  // namespace vigil::image
