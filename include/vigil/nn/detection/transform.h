#pragma once
/// torchvision 0.14's GeneralizedRCNNTransform (models/detection/transform.py): normalise, resize so the
/// short side reaches min_size (long side capped at max_size), pad into one batch, and map detections back.

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "vigil/nn/detection/detector.h"

namespace vigil::nn {

/// A padded batch of images and each image's size after resizing, before padding (torchvision's ImageList).
struct ImageList {
  torch::Tensor tensors;                            ///< [N, 3, H_pad, W_pad]
  std::vector<std::array<int64_t, 2>> image_sizes;  ///< {h, w} per image
};

/// GeneralizedRCNNTransform's constructor arguments; names and defaults follow torchvision.
struct GeneralizedRCNNTransformOptions {
  using Size2 = std::array<int64_t, 2>;
  /// Short-side targets: training draws one at random per image (torchvision's torch_choice, from the default
  /// generator), evaluation uses the last.
  TORCH_ARG(std::vector<int64_t>, min_size) = std::vector<int64_t>{800};
  /// Cap on the long side after resizing.
  TORCH_ARG(int64_t, max_size) = 1333;
  TORCH_ARG(std::vector<double>, image_mean) = std::vector<double>{0.485, 0.456, 0.406};
  TORCH_ARG(std::vector<double>, image_std) = std::vector<double>{0.229, 0.224, 0.225};
  /// The padded batch's height and width are multiples of this.
  TORCH_ARG(int64_t, size_divisible) = 32;
  /// When set, every image is resized to exactly this {width, height} (torchvision's fixed_size order).
  TORCH_ARG(std::optional<Size2>, fixed_size) = std::nullopt;

 public:
  /// Throws InvalidArgument when a value is out of range (empty min_size, non-positive sizes, mean/std not
  /// of 3 values, a zero std).
  void validate() const;
};

/// Normalises, resizes and batches images (and rescales target boxes alike), as torchvision does.
class GeneralizedRCNNTransformImpl : public torch::nn::Module {
 public:
  explicit GeneralizedRCNNTransformImpl(GeneralizedRCNNTransformOptions options = {});

  /// `images`: [3, H, W] floating RGB in 0..1. `targets` may be nullptr; when given (one per image) each
  /// entry is replaced by a copy whose boxes are rescaled to the resized image (the caller's tensors are not
  /// modified in place). Throws InvalidArgument on an empty list, an image that is not a [3, H, W] float
  /// tensor, a target count that differs from the image count, or boxes that are not [N, 4].
  ImageList forward(const std::vector<torch::Tensor>& images,
                    std::vector<DetectionTarget>* targets = nullptr);

  /// Maps boxes from the resized image sizes (`image_sizes`, from forward()) back to `original_sizes`. In
  /// training mode the detections are returned unchanged, like torchvision.
  std::vector<Detections> postprocess(std::vector<Detections> detections,
                                      const std::vector<std::array<int64_t, 2>>& image_sizes,
                                      const std::vector<std::array<int64_t, 2>>& original_sizes);

  /// (image - mean) / std per channel, in the image's dtype.
  torch::Tensor normalize(const torch::Tensor& image) const;
  /// Resizes one normalised [3, H, W] image with torchvision's exact interpolate call; `target` (may be
  /// nullptr) gets its boxes rescaled.
  torch::Tensor resize(const torch::Tensor& image, DetectionTarget* target);
  /// Zero-pads images into one [N, 3, H, W] tensor, H and W rounded up to size_divisible.
  torch::Tensor batch_images(const std::vector<torch::Tensor>& images) const;

  GeneralizedRCNNTransformOptions options;
};
TORCH_MODULE(GeneralizedRCNNTransform);

/// Scales [N, 4] boxes from `original_size` to `new_size` ({h, w}) with torchvision's float32 ratios.
torch::Tensor resize_boxes(const torch::Tensor& boxes, std::array<int64_t, 2> original_size,
                           std::array<int64_t, 2> new_size);

}  // namespace vigil::nn
