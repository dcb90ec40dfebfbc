#include "vigil/nn/ops/nms.h"

#include <torch/torch.h>

#include <algorithm>

#include "vigil/core/error.h"

namespace vigil::nn::ops {

namespace {

// Greedy NMS as torchvision's CPU kernel: same order, same float arithmetic in the box dtype, same strict `>`
// against the double threshold. Equal scores keep their input order: torchvision 0.14's results on tied
// scores match a stable descending sort (measured by tests/parity gen_ops.py's "ties" case), not ATen's
// default unstable one.
template <typename T>
torch::Tensor nms_impl(const torch::Tensor& dets, const torch::Tensor& scores, double iou_threshold) {
  const auto x1_t = dets.select(1, 0).contiguous();
  const auto y1_t = dets.select(1, 1).contiguous();
  const auto x2_t = dets.select(1, 2).contiguous();
  const auto y2_t = dets.select(1, 3).contiguous();
  const auto areas_t = (x2_t - x1_t) * (y2_t - y1_t);
  const auto order_t = std::get<1>(scores.sort(/*stable=*/true, 0, /*descending=*/true));

  const int64_t ndets = dets.size(0);
  std::vector<uint8_t> suppressed(ndets, 0);
  auto keep_t = torch::empty({ndets}, torch::kLong);
  auto* keep = keep_t.data_ptr<int64_t>();
  const auto* order = order_t.data_ptr<int64_t>();
  const auto* x1 = x1_t.data_ptr<T>();
  const auto* y1 = y1_t.data_ptr<T>();
  const auto* x2 = x2_t.data_ptr<T>();
  const auto* y2 = y2_t.data_ptr<T>();
  const auto* areas = areas_t.data_ptr<T>();

  int64_t num_to_keep = 0;
  for (int64_t oi = 0; oi < ndets; ++oi) {
    const int64_t i = order[oi];
    if (suppressed[i]) continue;
    keep[num_to_keep++] = i;
    for (int64_t oj = oi + 1; oj < ndets; ++oj) {
      const int64_t j = order[oj];
      if (suppressed[j]) continue;
      const T w = std::max(static_cast<T>(0), std::min(x2[i], x2[j]) - std::max(x1[i], x1[j]));
      const T h = std::max(static_cast<T>(0), std::min(y2[i], y2[j]) - std::max(y1[i], y1[j]));
      const T inter = w * h;
      const T ovr = inter / (areas[i] + areas[j] - inter);
      if (ovr > iou_threshold) suppressed[j] = 1;
    }
  }
  return keep_t.narrow(0, 0, num_to_keep);
}

torch::Tensor batched_nms_coordinate_trick(const torch::Tensor& boxes, const torch::Tensor& scores,
                                           const torch::Tensor& idxs, double iou_threshold) {
  if (boxes.numel() == 0) return torch::empty({0}, torch::kLong);
  // An offset per class, larger than any coordinate, so boxes of different classes never overlap.
  const auto max_coordinate = boxes.max();
  const auto offsets = idxs.to(boxes.options()) * (max_coordinate + torch::tensor(1).to(boxes.options()));
  const auto boxes_for_nms = boxes + offsets.index({torch::indexing::Slice(), torch::indexing::None});
  return nms(boxes_for_nms, scores, iou_threshold);
}

torch::Tensor batched_nms_vanilla(const torch::Tensor& boxes, const torch::Tensor& scores,
                                  const torch::Tensor& idxs, double iou_threshold) {
  auto keep_mask = torch::zeros_like(scores, torch::kBool);
  const auto classes = std::get<0>(torch::_unique(idxs, /*sorted=*/true));
  for (int64_t c = 0; c < classes.size(0); ++c) {
    const auto curr_indices = torch::where(idxs == classes[c])[0];
    const auto curr_keep = nms(boxes.index({curr_indices}), scores.index({curr_indices}), iou_threshold);
    keep_mask.index_put_({curr_indices.index({curr_keep})}, true);
  }
  const auto keep_indices = torch::where(keep_mask)[0];
  return keep_indices.index({std::get<1>(scores.index({keep_indices}).sort(-1, /*descending=*/true))});
}

}  // namespace

torch::Tensor nms(const torch::Tensor& boxes, const torch::Tensor& scores, double iou_threshold) {
  VIGIL_CHECK(boxes.dim() == 2 && boxes.size(1) == 4, "expected boxes of shape [N, 4], got {}",
              c10::str(boxes.sizes()));
  VIGIL_CHECK(scores.dim() == 1 && scores.size(0) == boxes.size(0), "expected scores of shape [{}], got {}",
              boxes.size(0), c10::str(scores.sizes()));
  VIGIL_CHECK(boxes.scalar_type() == scores.scalar_type(),
              "expected boxes and scores of one dtype, got {} and {}", c10::toString(boxes.scalar_type()),
              c10::toString(scores.scalar_type()));
  VIGIL_CHECK(boxes.device().is_cpu() && scores.device().is_cpu(), "expected CPU tensors, got {}",
              c10::str(boxes.device()));
  if (boxes.numel() == 0) return torch::empty({0}, torch::kLong);
  const auto no_grad = torch::NoGradGuard();
  torch::Tensor keep;
  AT_DISPATCH_FLOATING_TYPES(boxes.scalar_type(), "vigil_nms",
                             [&] { keep = nms_impl<scalar_t>(boxes, scores, iou_threshold); });
  return keep;
}

torch::Tensor batched_nms(const torch::Tensor& boxes, const torch::Tensor& scores, const torch::Tensor& idxs,
                          double iou_threshold) {
  VIGIL_CHECK(idxs.dim() == 1 && idxs.size(0) == boxes.size(0), "expected idxs of shape [{}], got {}",
              boxes.size(0), c10::str(idxs.sizes()));
  // torchvision's CPU threshold (benchmarks in pytorch/vision#1311): past 4000 numbers the per-class loop
  // wins.
  if (boxes.numel() > 4000) return batched_nms_vanilla(boxes, scores, idxs, iou_threshold);
  return batched_nms_coordinate_trick(boxes, scores, idxs, iou_threshold);
}

}  // namespace vigil::nn::ops
