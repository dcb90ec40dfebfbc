#pragma once
/// RoIAlign (Mask R-CNN) forward and backward on CPU, matching torchvision 0.14's roi_align kernel.

#include <torch/types.h>

#include <array>
#include <cstdint>
#include <vector>

namespace vigil::nn::ops {

/// Average of bilinear samples per output bin. input [N, C, H, W]; rois [K, 5] rows (batch_index, x1, y1,
/// x2, y2) in input-image coordinates, same dtype as input (float32 or float64). `output_size` is {h, w};
/// `spatial_scale` maps roi coordinates onto the feature map; sampling_ratio <= 0 picks an adaptive grid;
/// `aligned` shifts by -0.5 pixel (Detectron2). Differentiable with respect to input. Returns [K, C, h, w].
torch::Tensor roi_align(const torch::Tensor& input, const torch::Tensor& rois,
                        std::array<int64_t, 2> output_size, double spatial_scale = 1.0,
                        int64_t sampling_ratio = -1, bool aligned = false);

/// roi_align() with one [L_i, 4] box tensor per image of the batch.
torch::Tensor roi_align(const torch::Tensor& input, const std::vector<torch::Tensor>& boxes,
                        std::array<int64_t, 2> output_size, double spatial_scale = 1.0,
                        int64_t sampling_ratio = -1, bool aligned = false);

/// Concatenates per-image [L_i, 4] boxes into [sum L_i, 5] rois with the image index in column 0.
torch::Tensor convert_boxes_to_roi_format(const std::vector<torch::Tensor>& boxes);

}  // namespace vigil::nn::ops
