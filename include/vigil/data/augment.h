#pragma once
/// Training augmentations for detection (boxes move with the pixels) and classification, OpenCV only.
///
/// Every random draw comes from a caller-owned std::mt19937_64 through uniform01() below, never through
/// std::uniform_real_distribution, whose output differs between standard libraries: one seed gives the same
/// augmented image on every platform.

#include <opencv2/core.hpp>

#include <cstdint>
#include <random>
#include <vector>

#include "vigil/data/dataset.h"

namespace vigil::data {

/// Uniform double in [0, 1) from the top 53 bits of one draw (portable, unlike <random> distributions).
inline double uniform01(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}
/// Uniform double in [lo, hi).
inline double uniform(std::mt19937_64& rng, double lo, double hi) {
  return lo + (hi - lo) * uniform01(rng);
}
/// True with probability p.
inline bool bernoulli(std::mt19937_64& rng, double p) {
  return uniform01(rng) < p;
}

/// Detection augmentations, applied in this order: horizontal flip, scale jitter, random crop, photometric.
struct DetectionAugmentOptions {
  double hflip = 0.5;                         ///< probability of a horizontal flip
  double scale_min = 0.75, scale_max = 1.25;  ///< image resize factor range (boxes scale with it)
  double crop_prob = 0.5;                     ///< probability of a random crop
  double crop_min_scale = 0.6;                ///< smallest crop side as a fraction of the image side
  /// A cropped box is kept when at least this fraction of its area stays visible, else dropped.
  double min_visible = 0.5;
  /// torchvision ColorJitter ranges: factors in [1-x, 1+x]; hue shift in [-hue, hue] of the colour circle.
  double brightness = 0.2, contrast = 0.2, saturation = 0.2, hue = 0.02;
  /// Probability that a training image is a mosaic of four (mosaic4 below; Ultralytics' default 1.0 for
  /// YOLO), made by the loader before the steps above. 0 = off.
  double mosaic = 0;
  bool enabled = true;

  template <class V>
  void visit(V& v) {
    v("enabled", enabled, "apply detection augmentations");
    v("hflip", hflip, "probability of a horizontal flip");
    v("scale_min", scale_min, "smallest scale-jitter factor");
    v("scale_max", scale_max, "largest scale-jitter factor");
    v("crop_prob", crop_prob, "probability of a random crop");
    v("crop_min_scale", crop_min_scale, "smallest crop side as a fraction of the image side");
    v("min_visible", min_visible, "keep a cropped box when at least this fraction of it stays visible");
    v("brightness", brightness, "brightness jitter: factor in [1-x, 1+x]");
    v("contrast", contrast, "contrast jitter: factor in [1-x, 1+x]");
    v("saturation", saturation, "saturation jitter: factor in [1-x, 1+x]");
    v("hue", hue, "hue jitter: shift in [-x, x] of the colour circle (max 0.5)");
    v("mosaic", mosaic, "probability of a 4-image mosaic (Ultralytics' mosaic; 0 = off)");
  }
  void validate() const;
};

/// Augments an 8-bit BGR image in place and moves `boxes` exactly with its pixels. Boxes that a crop leaves
/// mostly outside (visible fraction < min_visible) are removed. Deterministic for a given rng state.
void augment_detection(cv::Mat& bgr, std::vector<Box>& boxes, const DetectionAugmentOptions& o,
                       std::mt19937_64& rng);

/// One image of a mosaic and its boxes, in that image's pixels.
struct MosaicPart {
  cv::Mat bgr;
  std::vector<Box> boxes;
};

/// Ultralytics' 4-image mosaic (load_mosaic, then the central crop its random_perspective makes): the parts
/// are laid on a 2s x 2s grey canvas (s = the longer side of parts[0]) around a random centre (xc, yc) in
/// [s/2, 3s/2), part 0 up and left of it, 1 up and right, 2 down and left, 3 down and right, each cut where
/// the canvas ends; the s x s window [s/2, 3s/2) of the canvas, which always holds the centre and so a piece
/// of each part, is returned. Objects keep their pixel size. Boxes move with their pixels and are clipped to
/// the window; those with less than `min_visible` of their area left are dropped. Two draws from `rng`.
MosaicPart mosaic4(const std::vector<MosaicPart>& parts, double min_visible, std::mt19937_64& rng);

/// Classification augmentations: the seeds' torchvision RandomResizedCrop + RandomHorizontalFlip and Keras
/// ImageDataGenerator (rotation, shifts, zoom, brightness), fused into one affine warp.
struct ClassificationAugmentOptions {
  bool enabled = true;
  double crop_scale_min = 0.8;  ///< random resized crop: smallest area fraction of the source image
  double hflip = 0.5;           ///< probability of a horizontal flip
  double rotation_deg = 20;     ///< rotation in [-x, x] degrees
  double brightness_min = 0.8, brightness_max = 1.2;  ///< pixel value factor range
  double shift = 0.1;  ///< translation in [-x, x] of the output size, each axis
  double zoom = 0.1;   ///< zoom factor in [1-x, 1+x]

  template <class V>
  void visit(V& v) {
    v("enabled", enabled, "apply classification augmentations");
    v("crop_scale_min", crop_scale_min, "random resized crop: smallest area fraction kept");
    v("hflip", hflip, "probability of a horizontal flip");
    v("rotation_deg", rotation_deg, "rotation range in degrees, both ways");
    v("brightness_min", brightness_min, "smallest brightness factor");
    v("brightness_max", brightness_max, "largest brightness factor");
    v("shift", shift, "translation range as a fraction of the output size");
    v("zoom", zoom, "zoom range: factor in [1-x, 1+x]");
  }
  void validate() const;
};

/// Returns an out_w x out_h 8-bit BGR image. When disabled, a plain resize of the whole image.
cv::Mat augment_classification(const cv::Mat& bgr, const ClassificationAugmentOptions& o, int out_w,
                               int out_h, std::mt19937_64& rng);

}  // namespace vigil::data
