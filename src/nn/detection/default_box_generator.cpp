#include "vigil/nn/detection/default_box_generator.h"

#include <torch/torch.h>

#include <cmath>
#include <utility>

#include "vigil/core/error.h"

namespace vigil::nn {

void DefaultBoxGeneratorOptions::validate() const {
  VIGIL_CHECK(!aspect_ratios_.empty(), "expected aspect ratios for at least one feature map, got none");
  for (const auto& ratios : aspect_ratios_) {
    for (const double r : ratios) VIGIL_CHECK(r > 0, "expected aspect ratios > 0, got {}", r);
  }
  if (scales_) {
    VIGIL_CHECK(scales_->size() >= aspect_ratios_.size() + 1,
                "expected at least {} scales (one per feature map plus one), got {}",
                aspect_ratios_.size() + 1, scales_->size());
    for (const double s : *scales_) VIGIL_CHECK(s > 0, "expected scales > 0, got {}", s);
  } else {
    VIGIL_CHECK(min_ratio_ > 0 && max_ratio_ >= min_ratio_,
                "expected 0 < min_ratio <= max_ratio, got {} and {}", min_ratio_, max_ratio_);
  }
  if (steps_) {
    VIGIL_CHECK(steps_->size() == aspect_ratios_.size(), "expected one step per feature map ({}), got {}",
                aspect_ratios_.size(), steps_->size());
    for (const auto s : *steps_) VIGIL_CHECK(s > 0, "expected steps > 0, got {}", s);
  }
}

DefaultBoxGeneratorImpl::DefaultBoxGeneratorImpl(DefaultBoxGeneratorOptions options_)
    : options(std::move(options_)) {
  options.validate();
  const auto num_outputs = static_cast<int64_t>(options.aspect_ratios().size());
  if (options.scales()) {
    scales_ = *options.scales();
  } else if (num_outputs > 1) {
    // Python's evaluation order (double precision): min + (range * k) / (n - 1.0).
    const double range_ratio = options.max_ratio() - options.min_ratio();
    for (int64_t k = 0; k < num_outputs; ++k) {
      scales_.push_back(options.min_ratio() +
                        range_ratio * static_cast<double>(k) / (static_cast<double>(num_outputs) - 1.0));
    }
    scales_.push_back(1.0);
  } else {
    scales_ = {options.min_ratio(), options.max_ratio()};
  }
  // torchvision's _generate_wh_pairs: the pairs in double, then one float32 tensor per map.
  for (int64_t k = 0; k < num_outputs; ++k) {
    const double s_k = scales_[k];
    const double s_prime_k = std::sqrt(scales_[k] * scales_[k + 1]);
    std::vector<double> pairs = {s_k, s_k, s_prime_k, s_prime_k};
    for (const double ar : options.aspect_ratios()[k]) {
      const double sq_ar = std::sqrt(ar);
      const double w = scales_[k] * sq_ar;
      const double h = scales_[k] / sq_ar;
      pairs.insert(pairs.end(), {w, h, h, w});
    }
    wh_pairs_.push_back(torch::tensor(pairs, torch::kFloat64).to(torch::kFloat32).view({-1, 2}));
  }
}

std::vector<int64_t> DefaultBoxGeneratorImpl::num_anchors_per_location() const {
  std::vector<int64_t> out;
  for (const auto& ratios : options.aspect_ratios())
    out.push_back(2 + 2 * static_cast<int64_t>(ratios.size()));
  return out;
}

torch::Tensor DefaultBoxGeneratorImpl::grid_default_boxes(
    const std::vector<std::array<int64_t, 2>>& grid_sizes, std::array<int64_t, 2> image_size,
    torch::ScalarType dtype) const {
  std::vector<torch::Tensor> default_boxes;
  for (size_t k = 0; k < grid_sizes.size(); ++k) {
    const auto [f_h, f_w] = grid_sizes[k];
    // The same scalar types as torchvision: a float divisor with steps, the map's int size without.
    torch::Tensor shifts_x;
    torch::Tensor shifts_y;
    if (options.steps()) {
      const double x_f_k = static_cast<double>(image_size[1]) / static_cast<double>((*options.steps())[k]);
      const double y_f_k = static_cast<double>(image_size[0]) / static_cast<double>((*options.steps())[k]);
      shifts_x = ((torch::arange(0, f_w) + 0.5) / x_f_k).to(dtype);
      shifts_y = ((torch::arange(0, f_h) + 0.5) / y_f_k).to(dtype);
    } else {
      shifts_x = ((torch::arange(0, f_w) + 0.5) / f_w).to(dtype);
      shifts_y = ((torch::arange(0, f_h) + 0.5) / f_h).to(dtype);
    }
    const auto grid = torch::meshgrid({shifts_y, shifts_x}, "ij");
    const auto shift_y = grid[0].reshape(-1);
    const auto shift_x = grid[1].reshape(-1);
    const auto num_pairs = wh_pairs_[k].size(0);
    std::vector<torch::Tensor> columns;
    for (int64_t a = 0; a < num_pairs; ++a) {
      columns.push_back(shift_x);
      columns.push_back(shift_y);
    }
    const auto shifts = torch::stack(columns, -1).reshape({-1, 2});
    const auto wh = options.clip() ? wh_pairs_[k].clamp(0, 1) : wh_pairs_[k];
    const auto tiled = wh.repeat({f_h * f_w, 1});
    default_boxes.push_back(torch::cat({shifts, tiled}, 1));
  }
  return torch::cat(default_boxes, 0);
}

std::vector<torch::Tensor> DefaultBoxGeneratorImpl::forward(const ImageList& images,
                                                            const std::vector<torch::Tensor>& feature_maps) {
  VIGIL_CHECK(feature_maps.size() == wh_pairs_.size(),
              "expected {} feature maps (one per aspect-ratio list), got {}", wh_pairs_.size(),
              feature_maps.size());
  VIGIL_CHECK(
      images.tensors.defined() && images.tensors.dim() == 4,
      "expected an image batch of shape [N, C, H, W], got {}",
      images.tensors.defined() ? c10::str(images.tensors.sizes()) : std::string("an undefined tensor"));
  std::vector<std::array<int64_t, 2>> grid_sizes;
  for (const auto& map : feature_maps) grid_sizes.push_back({map.size(-2), map.size(-1)});
  const std::array<int64_t, 2> image_size = {images.tensors.size(-2), images.tensors.size(-1)};
  const auto dtype = feature_maps.front().scalar_type();
  const auto device = feature_maps.front().device();
  const auto boxes = grid_default_boxes(grid_sizes, image_size, dtype).to(device);

  using torch::indexing::None;
  using torch::indexing::Slice;
  // An int64 (W, H) like torchvision's torch.tensor([w, h]); the products promote to the boxes' dtype.
  const auto x_y_size =
      torch::tensor({image_size[1], image_size[0]}, torch::TensorOptions(torch::kInt64).device(device));
  const auto centres = boxes.index({Slice(), Slice(None, 2)});
  const auto sizes = boxes.index({Slice(), Slice(2, None)});
  const auto corners =
      torch::cat({(centres - 0.5 * sizes) * x_y_size, (centres + 0.5 * sizes) * x_y_size}, -1);
  return std::vector<torch::Tensor>(images.image_sizes.size(), corners);
}

}  // namespace vigil::nn
