#include "vigil/nn/detection/transform.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "vigil/core/error.h"

namespace vigil::nn {

namespace {

std::array<int64_t, 2> spatial_size(const torch::Tensor& image) {
  return {image.size(-2), image.size(-1)};
}

void check_image(const torch::Tensor& image, size_t index) {
  VIGIL_CHECK(image.defined(), "expected image {} to be a [3, H, W] float tensor, got an undefined tensor",
              index);
  VIGIL_CHECK(image.dim() == 3 && image.size(0) == 3 && image.size(1) > 0 && image.size(2) > 0,
              "expected image {} of shape [3, H, W] with H, W > 0, got {}", index, c10::str(image.sizes()));
  VIGIL_CHECK(image.is_floating_point(), "expected image {} of a floating type (values in [0, 1]), got {}",
              index, c10::toString(image.scalar_type()));
}

void check_target(const DetectionTarget& target, size_t index) {
  VIGIL_CHECK(target.boxes.defined() && target.boxes.dim() == 2 && target.boxes.size(1) == 4,
              "expected target {} boxes of shape [N, 4], got {}", index,
              target.boxes.defined() ? c10::str(target.boxes.sizes()) : std::string("an undefined tensor"));
  VIGIL_CHECK(target.boxes.is_floating_point(), "expected target {} boxes of a floating type, got {}", index,
              c10::toString(target.boxes.scalar_type()));
}

}  // namespace

void GeneralizedRCNNTransformOptions::validate() const {
  VIGIL_CHECK(!min_size_.empty(), "expected at least one min_size, got none");
  for (const auto s : min_size_) VIGIL_CHECK(s > 0, "expected min_size values > 0, got {}", s);
  VIGIL_CHECK(max_size_ > 0, "expected max_size > 0, got {}", max_size_);
  VIGIL_CHECK(image_mean_.size() == 3, "expected 3 image_mean values, got {}", image_mean_.size());
  VIGIL_CHECK(image_std_.size() == 3, "expected 3 image_std values, got {}", image_std_.size());
  for (const auto s : image_std_) VIGIL_CHECK(s != 0.0, "expected non-zero image_std values, got {}", s);
  VIGIL_CHECK(size_divisible_ > 0, "expected size_divisible > 0, got {}", size_divisible_);
  if (fixed_size_) {
    VIGIL_CHECK((*fixed_size_)[0] > 0 && (*fixed_size_)[1] > 0, "expected a positive fixed_size, got {}x{}",
                (*fixed_size_)[0], (*fixed_size_)[1]);
  }
}

GeneralizedRCNNTransformImpl::GeneralizedRCNNTransformImpl(GeneralizedRCNNTransformOptions options_)
    : options(std::move(options_)) {
  options.validate();
}

ImageList GeneralizedRCNNTransformImpl::forward(const std::vector<torch::Tensor>& images,
                                                std::vector<DetectionTarget>* targets) {
  VIGIL_CHECK(!images.empty(), "expected at least one image, got an empty list");
  for (size_t i = 0; i < images.size(); ++i) check_image(images[i], i);
  if (targets != nullptr) {
    VIGIL_CHECK(targets->size() == images.size(), "expected one target per image ({}), got {}", images.size(),
                targets->size());
    for (size_t i = 0; i < targets->size(); ++i) check_target((*targets)[i], i);
  }
  ImageList out;
  std::vector<torch::Tensor> resized;
  resized.reserve(images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    auto image = resize(normalize(images[i]), targets != nullptr ? &(*targets)[i] : nullptr);
    out.image_sizes.push_back(spatial_size(image));
    resized.push_back(std::move(image));
  }
  out.tensors = batch_images(resized);
  return out;
}

torch::Tensor GeneralizedRCNNTransformImpl::normalize(const torch::Tensor& image) const {
  VIGIL_CHECK(image.is_floating_point(), "expected an image of a floating type (values in [0, 1]), got {}",
              c10::toString(image.scalar_type()));
  const auto opts = torch::TensorOptions().dtype(image.scalar_type()).device(image.device());
  const auto mean = torch::tensor(options.image_mean(), torch::kFloat64).to(opts);
  const auto std = torch::tensor(options.image_std(), torch::kFloat64).to(opts);
  return (image - mean.view({-1, 1, 1})) / std.view({-1, 1, 1});
}

torch::Tensor GeneralizedRCNNTransformImpl::resize(const torch::Tensor& image, DetectionTarget* target) {
  const auto original = spatial_size(image);
  const auto& min_sizes = options.min_size();
  int64_t size = min_sizes.back();
  if (is_training()) {
    // torchvision's torch_choice draws a float32 uniform from the default generator even for one choice;
    // drawing the same way keeps a seeded run in step with Python.
    const auto pick = torch::empty({1}).uniform_(0.0, static_cast<double>(min_sizes.size())).item<float>();
    size = min_sizes[std::min(static_cast<size_t>(pick), min_sizes.size() - 1)];
  }
  std::array<int64_t, 2> out_size{};
  if (options.fixed_size()) {
    out_size = {(*options.fixed_size())[1], (*options.fixed_size())[0]};
  } else {
    // torchvision computes `python_float / float32_tensor`, which Tensor.__rtruediv__ evaluates as
    // reciprocal(tensor) * python_float in float32; the same rounding decides the floor() below (e.g. 200 px
    // to 320 gives 319, not 320). interpolate then floors in double (recompute_scale_factor=True) and
    // resamples from the integer output size alone.
    const float inv_shorter = 1.0f / static_cast<float>(std::min(original[0], original[1]));
    const float inv_longer = 1.0f / static_cast<float>(std::max(original[0], original[1]));
    const float scale =
        std::min(inv_shorter * static_cast<float>(size), inv_longer * static_cast<float>(options.max_size()));
    for (int d = 0; d < 2; ++d) {
      out_size[d] =
          static_cast<int64_t>(std::floor(static_cast<double>(original[d]) * static_cast<double>(scale)));
    }
  }
  auto resized = torch::upsample_bilinear2d(image.unsqueeze(0), {out_size[0], out_size[1]},
                                            /*align_corners=*/false, c10::nullopt, c10::nullopt)[0];
  if (target != nullptr) target->boxes = resize_boxes(target->boxes, original, out_size);
  return resized;
}

torch::Tensor GeneralizedRCNNTransformImpl::batch_images(const std::vector<torch::Tensor>& images) const {
  VIGIL_CHECK(!images.empty(), "expected at least one image to batch, got none");
  std::vector<int64_t> max_size = images.front().sizes().vec();
  for (const auto& image : images) {
    VIGIL_CHECK(image.dim() == static_cast<int64_t>(max_size.size()),
                "expected images of {} dims to batch, got {}", max_size.size(), image.dim());
    for (size_t d = 0; d < max_size.size(); ++d) max_size[d] = std::max(max_size[d], image.size(d));
  }
  const auto stride = static_cast<double>(options.size_divisible());
  for (size_t d = 1; d < 3; ++d) {
    max_size[d] = static_cast<int64_t>(std::ceil(static_cast<double>(max_size[d]) / stride) * stride);
  }
  std::vector<int64_t> batch_shape = {static_cast<int64_t>(images.size())};
  batch_shape.insert(batch_shape.end(), max_size.begin(), max_size.end());
  auto batched = torch::zeros(batch_shape, images.front().options());
  using torch::indexing::Slice;
  for (size_t i = 0; i < images.size(); ++i) {
    const auto& img = images[i];
    batched[static_cast<int64_t>(i)]
        .index({Slice(0, img.size(0)), Slice(0, img.size(1)), Slice(0, img.size(2))})
        .copy_(img);
  }
  return batched;
}

std::vector<Detections> GeneralizedRCNNTransformImpl::postprocess(
    std::vector<Detections> detections, const std::vector<std::array<int64_t, 2>>& image_sizes,
    const std::vector<std::array<int64_t, 2>>& original_sizes) {
  if (is_training()) return detections;
  VIGIL_CHECK(image_sizes.size() == detections.size() && original_sizes.size() == detections.size(),
              "expected one image size and one original size per detection list ({}), got {} and {}",
              detections.size(), image_sizes.size(), original_sizes.size());
  for (size_t i = 0; i < detections.size(); ++i) {
    detections[i].boxes = resize_boxes(detections[i].boxes, image_sizes[i], original_sizes[i]);
  }
  return detections;
}

torch::Tensor resize_boxes(const torch::Tensor& boxes, std::array<int64_t, 2> original_size,
                           std::array<int64_t, 2> new_size) {
  VIGIL_CHECK(boxes.dim() == 2 && boxes.size(1) == 4, "expected boxes of shape [N, 4], got {}",
              c10::str(boxes.sizes()));
  VIGIL_CHECK(original_size[0] > 0 && original_size[1] > 0, "expected a positive original size, got {}x{}",
              original_size[0], original_size[1]);
  // Ratios are float32 0-dim tensors in torchvision, so float64 boxes still see float32-rounded ratios.
  const auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(boxes.device());
  const auto ratio_h = torch::scalar_tensor(static_cast<double>(new_size[0]), opts) /
                       torch::scalar_tensor(static_cast<double>(original_size[0]), opts);
  const auto ratio_w = torch::scalar_tensor(static_cast<double>(new_size[1]), opts) /
                       torch::scalar_tensor(static_cast<double>(original_size[1]), opts);
  const auto coords = boxes.unbind(1);
  return torch::stack({coords[0] * ratio_w, coords[1] * ratio_h, coords[2] * ratio_w, coords[3] * ratio_h},
                      1);
}

}  // namespace vigil::nn
