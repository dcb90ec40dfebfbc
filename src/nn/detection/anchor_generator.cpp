#include "vigil/nn/detection/anchor_generator.h"

#include <torch/torch.h>

#include <utility>

#include "vigil/core/error.h"

namespace vigil::nn {

AnchorGeneratorImpl::AnchorGeneratorImpl(std::vector<std::vector<double>> sizes,
                                         std::vector<std::vector<double>> aspect_ratios)
    : sizes_(std::move(sizes)), aspect_ratios_(std::move(aspect_ratios)) {
  VIGIL_CHECK(!sizes_.empty(), "expected anchor sizes for at least one feature map, got none");
  VIGIL_CHECK(sizes_.size() == aspect_ratios_.size(),
              "expected one aspect-ratio list per size list ({}), got {}", sizes_.size(),
              aspect_ratios_.size());
  for (size_t i = 0; i < sizes_.size(); ++i) {
    VIGIL_CHECK(!sizes_[i].empty() && !aspect_ratios_[i].empty(),
                "expected non-empty anchor sizes and aspect ratios for feature map {}, got {} and {}", i,
                sizes_[i].size(), aspect_ratios_[i].size());
    for (const double s : sizes_[i]) VIGIL_CHECK(s > 0, "expected anchor sizes > 0, got {}", s);
    for (const double r : aspect_ratios_[i]) VIGIL_CHECK(r > 0, "expected aspect ratios > 0, got {}", r);
    cell_anchors_.push_back(generate_anchors(sizes_[i], aspect_ratios_[i]));
  }
}

torch::Tensor AnchorGeneratorImpl::generate_anchors(const std::vector<double>& scales,
                                                    const std::vector<double>& aspect_ratios) {
  // float32 throughout, like torch.as_tensor(..., dtype=float32) in torchvision, so round() sees the same
  // half-way values.
  const auto scales_t = torch::tensor(scales, torch::kFloat64).to(torch::kFloat32);
  const auto ratios_t = torch::tensor(aspect_ratios, torch::kFloat64).to(torch::kFloat32);
  const auto h_ratios = torch::sqrt(ratios_t);
  const auto w_ratios = 1 / h_ratios;
  const auto ws = (w_ratios.unsqueeze(1) * scales_t.unsqueeze(0)).view(-1);
  const auto hs = (h_ratios.unsqueeze(1) * scales_t.unsqueeze(0)).view(-1);
  const auto base_anchors = torch::stack({-ws, -hs, ws, hs}, 1) / 2;
  return base_anchors.round();
}

std::vector<int64_t> AnchorGeneratorImpl::num_anchors_per_location() const {
  std::vector<int64_t> out;
  for (size_t i = 0; i < sizes_.size(); ++i) {
    out.push_back(static_cast<int64_t>(sizes_[i].size() * aspect_ratios_[i].size()));
  }
  return out;
}

std::vector<torch::Tensor> AnchorGeneratorImpl::forward(const ImageList& images,
                                                        const std::vector<torch::Tensor>& feature_maps) {
  VIGIL_CHECK(feature_maps.size() == cell_anchors_.size(),
              "expected {} feature maps (one per anchor size list), got {}", cell_anchors_.size(),
              feature_maps.size());
  VIGIL_CHECK(
      images.tensors.defined() && images.tensors.dim() == 4,
      "expected an image batch of shape [N, C, H, W], got {}",
      images.tensors.defined() ? c10::str(images.tensors.sizes()) : std::string("an undefined tensor"));
  const int64_t image_h = images.tensors.size(-2);
  const int64_t image_w = images.tensors.size(-1);
  // Anchors in float32 whatever the maps hold: bfloat16 maps (--precision bf16) would round coordinates
  // of 1,000 pixels to multiples of 8, and quantised ones (int8) are no arithmetic type at all.
  const auto& first = feature_maps.front();
  const auto opts = torch::TensorOptions()
                        .dtype(first.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32)
                        .device(first.device());
  std::vector<torch::Tensor> per_level;
  for (size_t i = 0; i < feature_maps.size(); ++i) {
    const auto& fmap = feature_maps[i];
    VIGIL_CHECK(fmap.dim() >= 2 && fmap.size(-2) > 0 && fmap.size(-1) > 0,
                "expected feature map {} with a non-empty [.., H, W] grid, got {}", i,
                c10::str(fmap.sizes()));
    const int64_t grid_h = fmap.size(-2);
    const int64_t grid_w = fmap.size(-1);
    // Integer strides (image // grid) and integer shifts as in torchvision; the sum with the rounded base
    // anchors is then exact in float32.
    const int64_t stride_h = image_h / grid_h;
    const int64_t stride_w = image_w / grid_w;
    const auto int_opts = torch::TensorOptions().dtype(torch::kInt32).device(opts.device());
    const auto shifts_x = torch::arange(0, grid_w, int_opts) * stride_w;
    const auto shifts_y = torch::arange(0, grid_h, int_opts) * stride_h;
    const auto grid = torch::meshgrid({shifts_y, shifts_x}, "ij");
    const auto shift_y = grid[0].reshape(-1);
    const auto shift_x = grid[1].reshape(-1);
    const auto shifts = torch::stack({shift_x, shift_y, shift_x, shift_y}, 1);
    const auto base = cell_anchors_[i].to(opts);
    per_level.push_back((shifts.view({-1, 1, 4}) + base.view({1, -1, 4})).reshape({-1, 4}));
  }
  // One tensor per image, as torchvision returns, so a caller editing one image's anchors leaves the others.
  std::vector<torch::Tensor> anchors;
  for (size_t i = 0; i < images.image_sizes.size(); ++i) anchors.push_back(torch::cat(per_level));
  return anchors;
}

}  // namespace vigil::nn
