#include "vigil/nn/ops/poolers.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "vigil/core/error.h"
#include "vigil/nn/ops/boxes.h"
#include "vigil/nn/ops/roi_align.h"
#include "vigil/nn/precision.h"

namespace vigil::nn::ops {

// -------------------------------------------------------------------------------------------------
// LevelMapper

LevelMapper::LevelMapper(int64_t k_min, int64_t k_max, int64_t canonical_scale, int64_t canonical_level,
                         double eps)
    : k_min_(k_min), k_max_(k_max), s0_(canonical_scale), lvl0_(canonical_level), eps_(eps) {}

torch::Tensor LevelMapper::operator()(const std::vector<torch::Tensor>& boxlists) const {
  std::vector<torch::Tensor> areas;
  areas.reserve(boxlists.size());
  for (const auto& b : boxlists) areas.push_back(box_area(b));
  const auto s = torch::sqrt(torch::cat(areas));
  // Eq. 1 of the FPN paper, with torchvision's order of operations and its eps in the box dtype.
  const auto target_lvls =
      torch::floor(torch::log2(s / s0_) + lvl0_ +
                   torch::tensor(eps_, torch::TensorOptions().dtype(torch::kFloat64)).to(s.scalar_type()));
  const auto clamped = torch::clamp(target_lvls, k_min_, k_max_);
  return clamped.to(torch::kInt64) - k_min_;
}

// ------------------------------------------------------------------------------------------- scale inference

double infer_scale(const torch::Tensor& feature, std::array<int64_t, 2> original_size) {
  VIGIL_CHECK(feature.dim() >= 2, "expected a feature map of at least 2 dims, got {}",
              c10::str(feature.sizes()));
  VIGIL_CHECK(original_size[0] > 0, "expected a positive image height, got {}", original_size[0]);
  // The ratio goes through a float32 tensor as in torchvision (torch.tensor(float) is float32); only the
  // height ratio is used.
  const double approx_scale = static_cast<double>(feature.size(-2)) / static_cast<double>(original_size[0]);
  const double rounded = torch::tensor(approx_scale, torch::kFloat32).log2().round().item<double>();
  return std::pow(2.0, rounded);
}

// ------------------------------------------------------------------------------------------
// MultiScaleRoIAlign

void MultiScaleRoIAlignOptions::validate() const {
  VIGIL_CHECK(!featmap_names_.empty(), "expected at least one feature map name, got none");
  VIGIL_CHECK(output_size_[0] > 0 && output_size_[1] > 0, "expected a positive output size, got {}x{}",
              output_size_[0], output_size_[1]);
  VIGIL_CHECK(canonical_scale_ > 0, "expected canonical_scale > 0, got {}", canonical_scale_);
}

MultiScaleRoIAlignImpl::MultiScaleRoIAlignImpl(MultiScaleRoIAlignOptions options_)
    : options(std::move(options_)) {
  options.validate();
}

void MultiScaleRoIAlignImpl::setup_scales(const std::vector<torch::Tensor>& features,
                                          const std::vector<std::array<int64_t, 2>>& image_shapes) {
  VIGIL_CHECK(!image_shapes.empty(), "expected at least one image shape, got none");
  std::array<int64_t, 2> original_input_shape = {0, 0};
  for (const auto& shape : image_shapes) {
    original_input_shape[0] = std::max(shape[0], original_input_shape[0]);
    original_input_shape[1] = std::max(shape[1], original_input_shape[1]);
  }
  std::vector<double> scales;
  for (const auto& feature : features) scales.push_back(infer_scale(feature, original_input_shape));
  // The network halves the resolution at every level, so the first and last scales give the level range.
  const auto level_of = [](double scale) {
    return -torch::log2(torch::tensor(scale, torch::kFloat64).to(torch::kFloat32)).item<double>();
  };
  scales_ = std::move(scales);
  map_levels_.emplace(static_cast<int64_t>(level_of(scales_.front())),
                      static_cast<int64_t>(level_of(scales_.back())), options.canonical_scale(),
                      options.canonical_level());
}

torch::Tensor MultiScaleRoIAlignImpl::forward(const torch::OrderedDict<std::string, torch::Tensor>& features,
                                              const std::vector<torch::Tensor>& boxes,
                                              const std::vector<std::array<int64_t, 2>>& image_shapes) {
  const auto& names = options.featmap_names();
  std::vector<torch::Tensor> x;
  for (const auto& item : features) {
    // RoI Align interpolates in the features' type: bfloat16 features (nn/precision.h) are pooled in float32.
    if (std::find(names.begin(), names.end(), item.key()) != names.end())
      x.push_back(to_float32(item.value()));
  }
  VIGIL_CHECK(!x.empty(), "expected features named like featmap_names ({}), got none of them",
              fmt::join(names, ", "));
  if (scales_.empty() || !map_levels_) setup_scales(x, image_shapes);

  const auto rois = convert_boxes_to_roi_format(boxes);
  const auto& out = options.output_size();
  const auto ratio = options.sampling_ratio();
  if (x.size() == 1) return roi_align(x[0], rois, out, scales_[0], ratio, /*aligned=*/false);

  const auto levels = (*map_levels_)(boxes);
  auto result = torch::zeros({rois.size(0), x[0].size(1), out[0], out[1]}, x[0].options());
  for (size_t level = 0; level < x.size(); ++level) {
    const auto idx_in_level = torch::where(levels == static_cast<int64_t>(level))[0];
    const auto rois_per_level = rois.index({idx_in_level});
    const auto pooled = roi_align(x[level], rois_per_level, out, scales_[level], ratio, /*aligned=*/false);
    result.index_put_({idx_in_level}, pooled.to(result.scalar_type()));
  }
  return result;
}

}  // namespace vigil::nn::ops
