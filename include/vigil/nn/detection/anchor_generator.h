#pragma once
/// torchvision 0.14's AnchorGenerator (models/detection/anchor_utils.py): per feature map, base anchors of
/// every (size, aspect ratio) pair, rounded like torchvision, tiled over the map with the image/map stride.

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "vigil/nn/detection/transform.h"

namespace vigil::nn {

/// Anchors for a set of feature maps. No parameters or buffers (torchvision keeps cell anchors as a plain
/// attribute, outside the state_dict).
class AnchorGeneratorImpl : public torch::nn::Module {
 public:
  /// One list of sizes and one of aspect ratios (height / width) per feature map, e.g. FasterRCNN's
  /// {{32}, {64}, {128}, {256}, {512}} x {{0.5, 1, 2}} * 5. Throws InvalidArgument when the counts differ,
  /// a list is empty, or a value is not positive.
  AnchorGeneratorImpl(std::vector<std::vector<double>> sizes, std::vector<std::vector<double>> aspect_ratios);

  /// One [sum over maps of H * W * A, 4] float tensor (x1, y1, x2, y2) per image of `images`, in the feature
  /// maps' dtype and device; maps in the order given, anchors of a location contiguous. Throws
  /// InvalidArgument when the map count differs from the number of size lists.
  std::vector<torch::Tensor> forward(const ImageList& images, const std::vector<torch::Tensor>& feature_maps);

  /// sizes[i].size() * aspect_ratios[i].size() per feature map.
  std::vector<int64_t> num_anchors_per_location() const;
  /// Zero-centred, rounded base anchors [A_i, 4] per feature map (float32, CPU).
  const std::vector<torch::Tensor>& cell_anchors() const { return cell_anchors_; }

  /// torchvision's generate_anchors: rows ordered aspect-ratio-major, computed in float32, then rounded.
  static torch::Tensor generate_anchors(const std::vector<double>& scales,
                                        const std::vector<double>& aspect_ratios);

 private:
  std::vector<std::vector<double>> sizes_;
  std::vector<std::vector<double>> aspect_ratios_;
  std::vector<torch::Tensor> cell_anchors_;
};
TORCH_MODULE(AnchorGenerator);

}  // namespace vigil::nn
