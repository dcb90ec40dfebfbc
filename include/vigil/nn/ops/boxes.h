#pragma once
/// Box utilities and the box coder, matcher and sampler of torchvision 0.14's detection heads
/// (torchvision/ops/boxes.py and torchvision/models/detection/_utils.py), op for op so results match.

#include <torch/types.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

namespace vigil::nn::ops {

/// Area of [N, 4] (x1, y1, x2, y2) boxes; small float and integer types are upcast like torchvision's
/// _upcast.
torch::Tensor box_area(const torch::Tensor& boxes);

/// Pairwise intersection over union [N, M] of two box sets, like torchvision.ops.box_iou.
torch::Tensor box_iou(const torch::Tensor& boxes1, const torch::Tensor& boxes2);

/// Clamps x to [0, width] and y to [0, height]; `size` is {height, width}. Works on [..., 4].
torch::Tensor clip_boxes_to_image(const torch::Tensor& boxes, std::array<int64_t, 2> size);

/// int64 indices of the boxes whose width and height are both >= min_size.
torch::Tensor remove_small_boxes(const torch::Tensor& boxes, double min_size);

/// Encodes boxes as (dx, dy, dw, dh) regression targets relative to reference boxes and back,
/// exactly as torchvision.models.detection._utils.BoxCoder.
class BoxCoder {
 public:
  /// `weights` scale (x, y, w, h); `bbox_xform_clip` caps dw/dh before exp().
  explicit BoxCoder(std::array<double, 4> weights, double bbox_xform_clip = std::log(1000.0 / 16));

  /// Per-image targets of `proposals` with respect to `reference_boxes` (the ground truth).
  std::vector<torch::Tensor> encode(const std::vector<torch::Tensor>& reference_boxes,
                                    const std::vector<torch::Tensor>& proposals) const;
  /// encode() on already concatenated boxes: [N, 4] -> [N, 4].
  torch::Tensor encode_single(const torch::Tensor& reference_boxes, const torch::Tensor& proposals) const;

  /// Applies `rel_codes` [N, 4 * K] (or anything reshapeable to it) to the concatenated boxes: [N, K, 4].
  torch::Tensor decode(const torch::Tensor& rel_codes, const std::vector<torch::Tensor>& boxes) const;
  /// decode() on already concatenated boxes: [N, 4 * K] -> [N, 4 * K] in (x1, y1, x2, y2) groups.
  torch::Tensor decode_single(const torch::Tensor& rel_codes, const torch::Tensor& boxes) const;

  const std::array<double, 4>& weights() const { return weights_; }
  double bbox_xform_clip() const { return bbox_xform_clip_; }

 private:
  std::array<double, 4> weights_;
  double bbox_xform_clip_;
};

/// Assigns each prediction (column of an [M gt, N pred] quality matrix) the index of its best ground truth,
/// or kBelowLowThreshold / kBetweenThresholds, as torchvision's Matcher.
class Matcher {
 public:
  static constexpr int64_t kBelowLowThreshold = -1;
  static constexpr int64_t kBetweenThresholds = -2;

  /// Throws InvalidArgument when low_threshold > high_threshold.
  Matcher(double high_threshold, double low_threshold, bool allow_low_quality_matches = false);

  /// int64 [N] matches. Throws InvalidArgument on an empty matrix (no ground truth or no predictions).
  torch::Tensor operator()(const torch::Tensor& match_quality_matrix) const;

  double high_threshold() const { return high_threshold_; }
  double low_threshold() const { return low_threshold_; }
  bool allow_low_quality_matches() const { return allow_low_quality_matches_; }

 private:
  double high_threshold_;
  double low_threshold_;
  bool allow_low_quality_matches_;
};

/// Samples a fixed number of predictions per image with a bounded fraction of positives, drawing with
/// torch::randperm from the default generator so a seeded run matches Python's draw.
class BalancedPositiveNegativeSampler {
 public:
  BalancedPositiveNegativeSampler(int64_t batch_size_per_image, double positive_fraction);

  /// For each image's matched indices (-1 ignored, 0 negative, >= 1 positive): uint8 masks of the chosen
  /// positives and negatives.
  std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>> operator()(
      const std::vector<torch::Tensor>& matched_idxs) const;

 private:
  int64_t batch_size_per_image_;
  double positive_fraction_;
};

}  // namespace vigil::nn::ops
