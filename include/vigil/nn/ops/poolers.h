#pragma once
/// Multi-scale RoIAlign over FPN levels, matching torchvision 0.14's torchvision.ops.MultiScaleRoIAlign.

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/ordered_dict.h>
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace vigil::nn::ops {

/// Maps each box to an FPN level with eq. 1 of the FPN paper: floor(level0 + log2(sqrt(area) / scale0) +
/// eps), clamped to [k_min, k_max]; returns level - k_min (int64).
class LevelMapper {
 public:
  LevelMapper(int64_t k_min, int64_t k_max, int64_t canonical_scale = 224, int64_t canonical_level = 4,
              double eps = 1e-6);
  /// Level index per box of the concatenated per-image box lists.
  torch::Tensor operator()(const std::vector<torch::Tensor>& boxlists) const;
  int64_t k_min() const { return k_min_; }
  int64_t k_max() const { return k_max_; }

 private:
  int64_t k_min_;
  int64_t k_max_;
  int64_t s0_;
  int64_t lvl0_;
  double eps_;
};

/// The power-of-two scale of a feature map [.., h, w] relative to an image of `original_size` {h, w},
/// as torchvision's _infer_scale (which uses the height only).
double infer_scale(const torch::Tensor& feature, std::array<int64_t, 2> original_size);

/// Options of MultiScaleRoIAlign; names and defaults follow torchvision.
struct MultiScaleRoIAlignOptions {
  using Size2 = std::array<int64_t, 2>;
  MultiScaleRoIAlignOptions(std::vector<std::string> featmap_names, Size2 output_size, int64_t sampling_ratio)
      : featmap_names_(std::move(featmap_names)),
        output_size_(output_size),
        sampling_ratio_(sampling_ratio) {}
  /// Throws InvalidArgument on empty names or non-positive sizes.
  void validate() const;
  /// Feature maps to pool from; other entries of the input dict are ignored.
  TORCH_ARG(std::vector<std::string>, featmap_names);
  /// {height, width} of each pooled region.
  TORCH_ARG(Size2, output_size);
  /// Sampling points per bin side; <= 0 means adaptive.
  TORCH_ARG(int64_t, sampling_ratio);
  TORCH_ARG(int64_t, canonical_scale) = 224;
  TORCH_ARG(int64_t, canonical_level) = 4;
};

/// Pools each box from the FPN level that matches its size. Like torchvision, the scales and level mapper
/// are inferred on the first forward() and reused afterwards.
class MultiScaleRoIAlignImpl : public torch::nn::Module {
 public:
  explicit MultiScaleRoIAlignImpl(MultiScaleRoIAlignOptions options);

  /// features: name -> [N, C, H_l, W_l] in insertion (pyramid) order; boxes: one [L_i, 4] per image in image
  /// coordinates; image_shapes: {h, w} per image before padding. Returns [sum L_i, C, oh, ow].
  torch::Tensor forward(const torch::OrderedDict<std::string, torch::Tensor>& features,
                        const std::vector<torch::Tensor>& boxes,
                        const std::vector<std::array<int64_t, 2>>& image_shapes);

  /// Scales inferred by the first forward() (empty before).
  const std::vector<double>& scales() const { return scales_; }

  MultiScaleRoIAlignOptions options;

 private:
  void setup_scales(const std::vector<torch::Tensor>& features,
                    const std::vector<std::array<int64_t, 2>>& image_shapes);

  std::vector<double> scales_;
  std::optional<LevelMapper> map_levels_;
};
TORCH_MODULE(MultiScaleRoIAlign);

}  // namespace vigil::nn::ops
