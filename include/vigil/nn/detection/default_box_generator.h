#pragma once
/// torchvision 0.14's DefaultBoxGenerator (models/detection/anchor_utils.py): SSD's default boxes, one set of
/// (width, height) pairs per feature map from the scales and aspect ratios, tiled over every map cell.

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "vigil/nn/detection/transform.h"

namespace vigil::nn {

/// DefaultBoxGenerator's constructor arguments; names and defaults follow torchvision.
struct DefaultBoxGeneratorOptions {
  /* implicit */ DefaultBoxGeneratorOptions(std::vector<std::vector<double>> aspect_ratios)
      : aspect_ratios_(std::move(aspect_ratios)) {}
  /// Aspect ratios per feature map besides 1 (each adds a w:h and an h:w box), e.g. {{2, 3}} * 6.
  TORCH_ARG(std::vector<std::vector<double>>, aspect_ratios);
  /// Smallest and largest box scale (fraction of the image side) when `scales` is not given.
  TORCH_ARG(double, min_ratio) = 0.15;
  TORCH_ARG(double, max_ratio) = 0.9;
  /// One scale per feature map plus one (the extra is the last map's neighbour for its s'_k box).
  TORCH_ARG(std::optional<std::vector<double>>, scales) = std::nullopt;
  /// Pixel stride of each map's cells; nullopt: the image divided evenly by the map's size.
  TORCH_ARG(std::optional<std::vector<int64_t>>, steps) = std::nullopt;
  /// Clamps the normalised (w, h) pairs to [0, 1] before tiling.
  TORCH_ARG(bool, clip) = true;

 public:
  /// Throws InvalidArgument on no feature maps, a non-positive ratio or scale, too few scales, or steps of
  /// another length.
  void validate() const;
};

/// SSD's default boxes for a set of feature maps. No parameters or buffers (torchvision's has none either).
class DefaultBoxGeneratorImpl : public torch::nn::Module {
 public:
  explicit DefaultBoxGeneratorImpl(DefaultBoxGeneratorOptions options);

  /// One [sum over maps of H * W * A_k, 4] tensor (x1, y1, x2, y2 in pixels of the padded batch) per image,
  /// in the feature maps' dtype and device; boxes of a cell contiguous, maps in order. Throws InvalidArgument
  /// when the map count differs from the aspect-ratio lists.
  std::vector<torch::Tensor> forward(const ImageList& images, const std::vector<torch::Tensor>& feature_maps);

  /// 2 + 2 * aspect_ratios[k].size() per feature map.
  std::vector<int64_t> num_anchors_per_location() const;
  /// The scales in use (given or estimated from min_ratio / max_ratio), one more than there are maps.
  const std::vector<double>& scales() const { return scales_; }
  /// Normalised (w, h) pairs per feature map [A_k, 2] (float32, before clipping).
  const std::vector<torch::Tensor>& wh_pairs() const { return wh_pairs_; }

  /// torchvision's _grid_default_boxes: [sum H * W * A_k, 4] (cx, cy, w, h) normalised to the image.
  torch::Tensor grid_default_boxes(const std::vector<std::array<int64_t, 2>>& grid_sizes,
                                   std::array<int64_t, 2> image_size, torch::ScalarType dtype) const;

  DefaultBoxGeneratorOptions options;

 private:
  std::vector<double> scales_;
  std::vector<torch::Tensor> wh_pairs_;
};
TORCH_MODULE(DefaultBoxGenerator);

}  // namespace vigil::nn
