#pragma once
/// Non-maximum suppression with the exact semantics of torchvision 0.14's CPU kernel.

#include <torch/types.h>

namespace vigil::nn::ops {

/// Indices (int64, by decreasing score) of the boxes kept after greedy NMS: a box is dropped when its IoU
/// with a kept, higher-scoring box is > iou_threshold (a pair exactly at the threshold survives).
/// boxes [N, 4] (x1, y1, x2, y2) and scores [N] must share a floating dtype. Empty input -> empty int64.
torch::Tensor nms(const torch::Tensor& boxes, const torch::Tensor& scores, double iou_threshold);

/// NMS applied independently per category `idxs` [N]; boxes of different categories never suppress each
/// other. Chooses between the coordinate-offset trick and a per-class loop by size, as torchvision does.
torch::Tensor batched_nms(const torch::Tensor& boxes, const torch::Tensor& scores, const torch::Tensor& idxs,
                          double iou_threshold);

}  // namespace vigil::nn::ops
