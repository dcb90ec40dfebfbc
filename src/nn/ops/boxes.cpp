#include "vigil/nn/ops/boxes.h"

#include <torch/torch.h>

#include "vigil/core/error.h"

namespace vigil::nn::ops {

namespace {

using torch::indexing::None;
using torch::indexing::Slice;

// torchvision's _upcast: protects products from overflow in half precision and small integer types.
torch::Tensor upcast(const torch::Tensor& t) {
  if (t.is_floating_point()) {
    const auto dt = t.scalar_type();
    return (dt == torch::kFloat32 || dt == torch::kFloat64) ? t : t.to(torch::kFloat32);
  }
  const auto dt = t.scalar_type();
  return (dt == torch::kInt32 || dt == torch::kInt64) ? t : t.to(torch::kInt32);
}

void check_boxes(const torch::Tensor& boxes, const char* name) {
  VIGIL_CHECK(boxes.dim() == 2 && boxes.size(1) == 4, "expected {} of shape [N, 4], got {}", name,
              c10::str(boxes.sizes()));
}

torch::Tensor column(const torch::Tensor& t, int64_t i) {
  return t.index({Slice(), i});
}

}  // namespace

torch::Tensor box_area(const torch::Tensor& boxes) {
  check_boxes(boxes, "boxes");
  const auto b = upcast(boxes);
  return (column(b, 2) - column(b, 0)) * (column(b, 3) - column(b, 1));
}

torch::Tensor box_iou(const torch::Tensor& boxes1, const torch::Tensor& boxes2) {
  const auto area1 = box_area(boxes1);
  const auto area2 = box_area(boxes2);
  check_boxes(boxes2, "boxes2");
  const auto lt =
      torch::max(boxes1.index({Slice(), None, Slice(None, 2)}), boxes2.index({Slice(), Slice(None, 2)}));
  const auto rb = torch::min(boxes1.index({Slice(), None, Slice(2)}), boxes2.index({Slice(), Slice(2)}));
  const auto wh = upcast(rb - lt).clamp_min(0);
  const auto inter = wh.index({Slice(), Slice(), 0}) * wh.index({Slice(), Slice(), 1});
  const auto uni = area1.index({Slice(), None}) + area2 - inter;
  return inter / uni;
}

torch::Tensor clip_boxes_to_image(const torch::Tensor& boxes, std::array<int64_t, 2> size) {
  VIGIL_CHECK(boxes.dim() >= 1 && boxes.size(-1) == 4, "expected boxes of shape [..., 4], got {}",
              c10::str(boxes.sizes()));
  const int64_t dim = boxes.dim();
  const auto [height, width] = size;
  const auto boxes_x = boxes.index({torch::indexing::Ellipsis, Slice(0, None, 2)}).clamp(0, width);
  const auto boxes_y = boxes.index({torch::indexing::Ellipsis, Slice(1, None, 2)}).clamp(0, height);
  return torch::stack({boxes_x, boxes_y}, dim).reshape(boxes.sizes());
}

torch::Tensor remove_small_boxes(const torch::Tensor& boxes, double min_size) {
  check_boxes(boxes, "boxes");
  const auto ws = column(boxes, 2) - column(boxes, 0);
  const auto hs = column(boxes, 3) - column(boxes, 1);
  const auto keep = ws.ge(min_size).logical_and(hs.ge(min_size));
  return torch::where(keep)[0];
}

// ----------------------------------------------------------------------------------------------------
// BoxCoder

BoxCoder::BoxCoder(std::array<double, 4> weights, double bbox_xform_clip)
    : weights_(weights), bbox_xform_clip_(bbox_xform_clip) {}

std::vector<torch::Tensor> BoxCoder::encode(const std::vector<torch::Tensor>& reference_boxes,
                                            const std::vector<torch::Tensor>& proposals) const {
  VIGIL_CHECK(!reference_boxes.empty() && reference_boxes.size() == proposals.size(),
              "expected one reference and one proposal tensor per image, got {} and {}",
              reference_boxes.size(), proposals.size());
  std::vector<int64_t> boxes_per_image;
  for (const auto& b : reference_boxes) boxes_per_image.push_back(b.size(0));
  const auto targets = encode_single(torch::cat(reference_boxes, 0), torch::cat(proposals, 0));
  return targets.split_with_sizes(boxes_per_image, 0);
}

torch::Tensor BoxCoder::encode_single(const torch::Tensor& reference_boxes,
                                      const torch::Tensor& proposals) const {
  check_boxes(reference_boxes, "reference_boxes");
  check_boxes(proposals, "proposals");
  // The weights become a tensor of the reference dtype, then 0-dim factors, as in encode_boxes().
  const auto weights = torch::tensor(std::vector<double>(weights_.begin(), weights_.end()),
                                     reference_boxes.options().dtype(torch::kFloat64))
                           .to(reference_boxes.scalar_type());
  const auto col = [](const torch::Tensor& t, int64_t i) { return t.index({Slice(), i}).unsqueeze(1); };
  const auto ex_widths = col(proposals, 2) - col(proposals, 0);
  const auto ex_heights = col(proposals, 3) - col(proposals, 1);
  const auto ex_ctr_x = col(proposals, 0) + 0.5 * ex_widths;
  const auto ex_ctr_y = col(proposals, 1) + 0.5 * ex_heights;

  const auto gt_widths = col(reference_boxes, 2) - col(reference_boxes, 0);
  const auto gt_heights = col(reference_boxes, 3) - col(reference_boxes, 1);
  const auto gt_ctr_x = col(reference_boxes, 0) + 0.5 * gt_widths;
  const auto gt_ctr_y = col(reference_boxes, 1) + 0.5 * gt_heights;

  const auto targets_dx = weights[0] * (gt_ctr_x - ex_ctr_x) / ex_widths;
  const auto targets_dy = weights[1] * (gt_ctr_y - ex_ctr_y) / ex_heights;
  const auto targets_dw = weights[2] * torch::log(gt_widths / ex_widths);
  const auto targets_dh = weights[3] * torch::log(gt_heights / ex_heights);
  return torch::cat({targets_dx, targets_dy, targets_dw, targets_dh}, 1);
}

torch::Tensor BoxCoder::decode(const torch::Tensor& rel_codes,
                               const std::vector<torch::Tensor>& boxes) const {
  VIGIL_CHECK(!boxes.empty(), "expected at least one box tensor, got none");
  int64_t box_sum = 0;
  for (const auto& b : boxes) box_sum += b.size(0);
  const auto concat_boxes = torch::cat(boxes, 0);
  auto codes = box_sum > 0 ? rel_codes.reshape({box_sum, -1}) : rel_codes;
  auto pred_boxes = decode_single(codes, concat_boxes);
  if (box_sum > 0) pred_boxes = pred_boxes.reshape({box_sum, -1, 4});
  return pred_boxes;
}

torch::Tensor BoxCoder::decode_single(const torch::Tensor& rel_codes, const torch::Tensor& boxes_in) const {
  VIGIL_CHECK(rel_codes.dim() == 2 && rel_codes.size(1) % 4 == 0,
              "expected rel_codes of shape [N, 4*K], got {}", c10::str(rel_codes.sizes()));
  const auto boxes = boxes_in.to(rel_codes.scalar_type());
  const auto widths = column(boxes, 2) - column(boxes, 0);
  const auto heights = column(boxes, 3) - column(boxes, 1);
  const auto ctr_x = column(boxes, 0) + 0.5 * widths;
  const auto ctr_y = column(boxes, 1) + 0.5 * heights;

  const auto every4 = [&](int64_t start) { return rel_codes.index({Slice(), Slice(start, None, 4)}); };
  const auto dx = every4(0) / weights_[0];
  const auto dy = every4(1) / weights_[1];
  // Prevents sending too large values into exp().
  const auto dw = torch::clamp_max(every4(2) / weights_[2], bbox_xform_clip_);
  const auto dh = torch::clamp_max(every4(3) / weights_[3], bbox_xform_clip_);

  const auto pred_ctr_x = dx * widths.index({Slice(), None}) + ctr_x.index({Slice(), None});
  const auto pred_ctr_y = dy * heights.index({Slice(), None}) + ctr_y.index({Slice(), None});
  const auto pred_w = torch::exp(dw) * widths.index({Slice(), None});
  const auto pred_h = torch::exp(dh) * heights.index({Slice(), None});

  const auto half = torch::tensor(0.5, pred_ctr_x.options());
  const auto c_to_c_h = half * pred_h;
  const auto c_to_c_w = half * pred_w;
  return torch::stack(
             {pred_ctr_x - c_to_c_w, pred_ctr_y - c_to_c_h, pred_ctr_x + c_to_c_w, pred_ctr_y + c_to_c_h}, 2)
      .flatten(1);
}

// -----------------------------------------------------------------------------------------------------
// Matcher

Matcher::Matcher(double high_threshold, double low_threshold, bool allow_low_quality_matches)
    : high_threshold_(high_threshold),
      low_threshold_(low_threshold),
      allow_low_quality_matches_(allow_low_quality_matches) {
  VIGIL_CHECK(low_threshold <= high_threshold, "expected low_threshold <= high_threshold, got {} > {}",
              low_threshold, high_threshold);
}

torch::Tensor Matcher::operator()(const torch::Tensor& match_quality_matrix) const {
  VIGIL_CHECK(match_quality_matrix.dim() == 2, "expected a [M, N] match quality matrix, got {}",
              c10::str(match_quality_matrix.sizes()));
  VIGIL_CHECK(match_quality_matrix.size(0) > 0,
              "expected ground-truth boxes for every image during training, got none for one image");
  VIGIL_CHECK(match_quality_matrix.size(1) > 0,
              "expected proposal boxes for every image during training, got none for one image");
  auto [matched_vals, matches] = match_quality_matrix.max(0);
  torch::Tensor all_matches;
  if (allow_low_quality_matches_) all_matches = matches.clone();

  const auto below_low_threshold = matched_vals < low_threshold_;
  const auto between_thresholds =
      (matched_vals >= low_threshold_).logical_and(matched_vals < high_threshold_);
  matches.index_put_({below_low_threshold}, kBelowLowThreshold);
  matches.index_put_({between_thresholds}, kBetweenThresholds);

  if (allow_low_quality_matches_) {
    // Every prediction that is some ground truth's best match (ties included) gets that match back.
    const auto highest_quality_foreach_gt = std::get<0>(match_quality_matrix.max(1));
    const auto pairs =
        torch::where(match_quality_matrix == highest_quality_foreach_gt.index({Slice(), None}));
    const auto& pred_inds_to_update = pairs[1];
    matches.index_put_({pred_inds_to_update}, all_matches.index({pred_inds_to_update}));
  }
  return matches;
}

// ------------------------------------------------------------------------------
// BalancedPositiveNegativeSampler

BalancedPositiveNegativeSampler::BalancedPositiveNegativeSampler(int64_t batch_size_per_image,
                                                                 double positive_fraction)
    : batch_size_per_image_(batch_size_per_image), positive_fraction_(positive_fraction) {
  VIGIL_CHECK(batch_size_per_image >= 0, "expected batch_size_per_image >= 0, got {}", batch_size_per_image);
  VIGIL_CHECK(positive_fraction >= 0.0 && positive_fraction <= 1.0,
              "expected positive_fraction in [0, 1], got {}", positive_fraction);
}

std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>> BalancedPositiveNegativeSampler::operator()(
    const std::vector<torch::Tensor>& matched_idxs) const {
  std::vector<torch::Tensor> pos_idx;
  std::vector<torch::Tensor> neg_idx;
  for (const auto& matched : matched_idxs) {
    const auto positive = torch::where(matched >= 1)[0];
    const auto negative = torch::where(matched == 0)[0];

    // Truncation as Python's int(); both counts are capped by what is available.
    const int64_t num_pos =
        std::min(positive.numel(), static_cast<int64_t>(batch_size_per_image_ * positive_fraction_));
    const int64_t num_neg = std::min(negative.numel(), batch_size_per_image_ - num_pos);

    const auto opts = torch::TensorOptions().dtype(torch::kLong).device(positive.device());
    const auto perm1 = torch::randperm(positive.numel(), opts).index({Slice(None, num_pos)});
    const auto perm2 = torch::randperm(negative.numel(), opts).index({Slice(None, num_neg)});

    auto pos_mask = torch::zeros_like(matched, torch::kUInt8);
    auto neg_mask = torch::zeros_like(matched, torch::kUInt8);
    pos_mask.index_put_({positive.index({perm1})}, 1);
    neg_mask.index_put_({negative.index({perm2})}, 1);
    pos_idx.push_back(pos_mask);
    neg_idx.push_back(neg_mask);
  }
  return {pos_idx, neg_idx};
}

}  // namespace vigil::nn::ops
