#include "vigil/nn/detection/roi_heads.h"

#include <torch/torch.h>

#include "vigil/core/error.h"
#include "vigil/nn/ops/nms.h"
#include "vigil/nn/precision.h"

namespace vigil::nn {

using torch::indexing::None;
using torch::indexing::Slice;

// ------------------------------------------------------------------------------------------ TwoMLPHead

TwoMLPHeadImpl::TwoMLPHeadImpl(int64_t in_channels, int64_t representation_size) {
  VIGIL_CHECK(in_channels >= 1 && representation_size >= 1,
              "expected positive TwoMLPHead sizes, got in_channels {} and representation_size {}",
              in_channels, representation_size);
  fc6 = register_module("fc6", torch::nn::Linear(in_channels, representation_size));
  fc7 = register_module("fc7", torch::nn::Linear(representation_size, representation_size));
}

torch::Tensor TwoMLPHeadImpl::forward(const torch::Tensor& x) {
  auto out = torch::relu(fc6->forward(x.flatten(1)));
  return torch::relu(fc7->forward(out));
}

// ----------------------------------------------------------------------------------- FastRCNNPredictor

FastRCNNPredictorImpl::FastRCNNPredictorImpl(int64_t in_channels, int64_t num_classes) {
  VIGIL_CHECK(in_channels >= 1, "expected in_channels >= 1, got {}", in_channels);
  VIGIL_CHECK(num_classes >= 2, "expected num_classes >= 2 (background included), got {}", num_classes);
  cls_score = register_module("cls_score", torch::nn::Linear(in_channels, num_classes));
  bbox_pred = register_module("bbox_pred", torch::nn::Linear(in_channels, num_classes * 4));
}

std::pair<torch::Tensor, torch::Tensor> FastRCNNPredictorImpl::forward(const torch::Tensor& x) {
  if (x.dim() == 4) {
    VIGIL_CHECK(x.size(2) == 1 && x.size(3) == 1, "expected features of shape [K, C, 1, 1], got {}",
                c10::str(x.sizes()));
  }
  const auto flat = x.flatten(1);
  return {to_float32(cls_score->forward(flat)), to_float32(bbox_pred->forward(flat))};
}

// ------------------------------------------------------------------------------------------ targets

void check_detection_targets(const std::vector<DetectionTarget>& targets, size_t num_images,
                             int64_t num_classes) {
  VIGIL_CHECK(targets.size() == num_images, "expected one target per image ({}), got {}", num_images,
              targets.size());
  for (size_t i = 0; i < targets.size(); ++i) {
    const auto& t = targets[i];
    VIGIL_CHECK(t.boxes.defined() && t.boxes.dim() == 2 && t.boxes.size(1) == 4,
                "expected target {} boxes of shape [N, 4], got {}", i,
                t.boxes.defined() ? c10::str(t.boxes.sizes()) : "none");
    VIGIL_CHECK(t.boxes.is_floating_point(), "expected target {} boxes of a floating type, got {}", i,
                c10::toString(t.boxes.scalar_type()));
    VIGIL_CHECK(t.labels.defined() && t.labels.scalar_type() == torch::kInt64,
                "expected target {} labels of type int64, got {}", i,
                t.labels.defined() ? c10::toString(t.labels.scalar_type()) : "none");
    VIGIL_CHECK(t.labels.dim() == 1 && t.labels.size(0) == t.boxes.size(0),
                "expected target {} labels of shape [{}], got {}", i, t.boxes.size(0),
                c10::str(t.labels.sizes()));
    if (t.labels.numel() > 0) {
      // Out-of-range labels would otherwise fail deep inside cross_entropy.
      const int64_t lo = t.labels.min().item<int64_t>();
      const int64_t hi = t.labels.max().item<int64_t>();
      VIGIL_CHECK(lo >= 0 && hi < num_classes, "expected target {} labels in [0, {}), got [{}, {}]", i,
                  num_classes, lo, hi);
    }
  }
}

// ------------------------------------------------------------------------------------------------ loss

std::pair<torch::Tensor, torch::Tensor> fastrcnn_loss(const torch::Tensor& class_logits,
                                                      const torch::Tensor& box_regression,
                                                      const std::vector<torch::Tensor>& labels,
                                                      const std::vector<torch::Tensor>& regression_targets) {
  const auto all_labels = torch::cat(labels, 0);
  const auto all_targets = torch::cat(regression_targets, 0);
  VIGIL_CHECK(class_logits.dim() == 2 && class_logits.size(0) == all_labels.size(0),
              "expected class logits of shape [{}, C], got {}", all_labels.size(0),
              c10::str(class_logits.sizes()));
  const auto classification_loss = torch::nn::functional::cross_entropy(class_logits, all_labels);

  const auto pos = torch::where(all_labels > 0)[0];
  const auto labels_pos = all_labels.index({pos});
  const int64_t n = class_logits.size(0);
  const auto regression = box_regression.reshape({n, box_regression.size(-1) / 4, 4});
  // torch::smooth_l1_loss itself: LibTorch 1.13's functional wrapper ignores SmoothL1LossFuncOptions::beta.
  auto box_loss = torch::smooth_l1_loss(regression.index({pos, labels_pos}), all_targets.index({pos}),
                                        at::Reduction::Sum, /*beta=*/1.0 / 9);
  box_loss = box_loss / all_labels.numel();
  return {classification_loss, box_loss};
}

// ------------------------------------------------------------------------------------------- RoIHeads

void RoIHeadsOptions::validate() const {
  VIGIL_CHECK(fg_iou_thresh_ >= 0.0 && fg_iou_thresh_ <= 1.0, "expected fg_iou_thresh in [0, 1], got {}",
              fg_iou_thresh_);
  VIGIL_CHECK(bg_iou_thresh_ >= 0.0 && bg_iou_thresh_ <= fg_iou_thresh_,
              "expected bg_iou_thresh in [0, fg_iou_thresh = {}], got {}", fg_iou_thresh_, bg_iou_thresh_);
  VIGIL_CHECK(batch_size_per_image_ >= 1, "expected batch_size_per_image >= 1, got {}",
              batch_size_per_image_);
  VIGIL_CHECK(positive_fraction_ >= 0.0 && positive_fraction_ <= 1.0,
              "expected positive_fraction in [0, 1], got {}", positive_fraction_);
  for (double w : bbox_reg_weights_) VIGIL_CHECK(w > 0.0, "expected positive bbox_reg_weights, got {}", w);
  VIGIL_CHECK(score_thresh_ >= 0.0 && score_thresh_ <= 1.0, "expected score_thresh in [0, 1], got {}",
              score_thresh_);
  VIGIL_CHECK(nms_thresh_ >= 0.0 && nms_thresh_ <= 1.0, "expected nms_thresh in [0, 1], got {}", nms_thresh_);
  VIGIL_CHECK(detections_per_img_ >= 1, "expected detections_per_img >= 1, got {}", detections_per_img_);
}

namespace {

const RoIHeadsOptions& validated(const RoIHeadsOptions& options) {
  options.validate();
  return options;
}

}  // namespace

RoIHeadsImpl::RoIHeadsImpl(ops::MultiScaleRoIAlign box_roi_pool_, TwoMLPHead box_head_,
                           FastRCNNPredictor box_predictor_, const RoIHeadsOptions& options_)
    : options(validated(options_)),
      box_coder_(options_.bbox_reg_weights()),
      proposal_matcher_(options_.fg_iou_thresh(), options_.bg_iou_thresh(),
                        /*allow_low_quality_matches=*/false),
      fg_bg_sampler_(options_.batch_size_per_image(), options_.positive_fraction()) {
  VIGIL_CHECK(!box_roi_pool_.is_empty() && !box_head_.is_empty() && !box_predictor_.is_empty(),
              "expected a box_roi_pool, box_head and box_predictor, got an empty module");
  box_roi_pool = register_module("box_roi_pool", std::move(box_roi_pool_));
  box_head = register_module("box_head", std::move(box_head_));
  box_predictor = register_module("box_predictor", std::move(box_predictor_));
}

void RoIHeadsImpl::replace_predictor(int64_t num_classes) {
  box_predictor =
      replace_module("box_predictor", FastRCNNPredictor(box_predictor->in_channels(), num_classes));
}

RoITrainingSamples RoIHeadsImpl::select_training_samples(const std::vector<torch::Tensor>& proposals,
                                                         const std::vector<DetectionTarget>& targets) const {
  check_detection_targets(targets, proposals.size(), num_classes());
  const auto dtype = proposals.at(0).scalar_type();
  RoITrainingSamples out;
  std::vector<torch::Tensor> gt_boxes;
  for (size_t i = 0; i < proposals.size(); ++i) {
    gt_boxes.push_back(targets[i].boxes.to(dtype));
    out.proposals.push_back(torch::cat({proposals[i], gt_boxes.back()}));
  }

  // assign_targets_to_proposals
  std::vector<torch::Tensor> labels;
  for (size_t i = 0; i < proposals.size(); ++i) {
    const auto& props = out.proposals[i];
    const auto long_opts = torch::TensorOptions().dtype(torch::kInt64).device(props.device());
    if (gt_boxes[i].numel() == 0) {
      // An image without objects: every proposal is background.
      out.matched_idxs.push_back(torch::zeros({props.size(0)}, long_opts));
      labels.push_back(torch::zeros({props.size(0)}, long_opts));
      continue;
    }
    const auto matched = proposal_matcher_(ops::box_iou(gt_boxes[i], props));
    const auto clamped = matched.clamp_min(0);
    auto image_labels = targets[i].labels.index({clamped}).to(torch::kInt64);
    image_labels.index_put_({matched == ops::Matcher::kBelowLowThreshold}, 0);
    image_labels.index_put_({matched == ops::Matcher::kBetweenThresholds}, -1);
    out.matched_idxs.push_back(clamped);
    labels.push_back(image_labels);
  }

  // subsample, then gather the matched ground truth of what was kept
  const auto [pos_masks, neg_masks] = fg_bg_sampler_(labels);
  std::vector<torch::Tensor> matched_gt_boxes;
  for (size_t i = 0; i < proposals.size(); ++i) {
    const auto sampled = torch::where(pos_masks[i].logical_or(neg_masks[i]))[0];
    out.proposals[i] = out.proposals[i].index({sampled});
    labels[i] = labels[i].index({sampled});
    out.matched_idxs[i] = out.matched_idxs[i].index({sampled});
    auto gt = gt_boxes[i];
    if (gt.numel() == 0) gt = torch::zeros({1, 4}, out.proposals[i].options());
    matched_gt_boxes.push_back(gt.index({out.matched_idxs[i]}));
  }
  out.labels = std::move(labels);
  out.regression_targets = box_coder_.encode(matched_gt_boxes, out.proposals);
  return out;
}

std::vector<Detections> RoIHeadsImpl::postprocess_detections(
    const torch::Tensor& class_logits, const torch::Tensor& box_regression,
    const std::vector<torch::Tensor>& proposals,
    const std::vector<std::array<int64_t, 2>>& image_sizes) const {
  const int64_t num_classes = class_logits.size(-1);
  std::vector<int64_t> boxes_per_image;
  for (const auto& p : proposals) boxes_per_image.push_back(p.size(0));
  const auto total = class_logits.size(0);

  std::vector<torch::Tensor> boxes_list, scores_list;
  if (total > 0) {
    boxes_list = box_coder_.decode(box_regression, proposals).split_with_sizes(boxes_per_image, 0);
    scores_list = torch::softmax(class_logits, -1).split_with_sizes(boxes_per_image, 0);
  }
  std::vector<Detections> result;
  for (size_t i = 0; i < proposals.size(); ++i) {
    Detections det;
    if (boxes_per_image[i] == 0) {
      det.boxes = torch::zeros({0, 4}, class_logits.options());
      det.scores = torch::zeros({0}, class_logits.options());
      det.labels = torch::zeros({0}, class_logits.options().dtype(torch::kInt64));
      result.push_back(std::move(det));
      continue;
    }
    auto boxes = ops::clip_boxes_to_image(boxes_list[i], image_sizes[i]);
    auto scores = scores_list[i];
    auto labels = torch::arange(num_classes, class_logits.options().dtype(torch::kInt64))
                      .view({1, -1})
                      .expand_as(scores);
    // Every (proposal, non-background class) pair becomes its own candidate.
    boxes = boxes.index({Slice(), Slice(1, None)}).reshape({-1, 4});
    scores = scores.index({Slice(), Slice(1, None)}).reshape(-1);
    labels = labels.index({Slice(), Slice(1, None)}).reshape(-1);

    auto inds = torch::where(scores > options.score_thresh())[0];
    boxes = boxes.index({inds});
    scores = scores.index({inds});
    labels = labels.index({inds});
    auto keep = ops::remove_small_boxes(boxes, 1e-2);
    boxes = boxes.index({keep});
    scores = scores.index({keep});
    labels = labels.index({keep});
    keep = ops::batched_nms(boxes, scores, labels, options.nms_thresh());
    keep = keep.index({Slice(None, options.detections_per_img())});
    det.boxes = boxes.index({keep});
    det.scores = scores.index({keep});
    det.labels = labels.index({keep});
    result.push_back(std::move(det));
  }
  return result;
}

std::pair<torch::Tensor, torch::Tensor> RoIHeadsImpl::run_box_branch(
    const FeatureMap& features, const std::vector<torch::Tensor>& proposals,
    const std::vector<std::array<int64_t, 2>>& image_sizes) {
  auto box_features = box_roi_pool->forward(features, proposals, image_sizes);
  box_features = box_head->forward(box_features);
  return box_predictor->forward(box_features);
}

std::pair<std::vector<Detections>, LossMap> RoIHeadsImpl::forward(
    const FeatureMap& features, const std::vector<torch::Tensor>& proposals,
    const std::vector<std::array<int64_t, 2>>& image_sizes, const std::vector<DetectionTarget>* targets) {
  VIGIL_CHECK(!proposals.empty(), "expected proposals for at least one image, got none");
  VIGIL_CHECK(image_sizes.size() == proposals.size(),
              "expected one image size per proposal list ({}), got {}", proposals.size(), image_sizes.size());
  for (size_t i = 0; i < proposals.size(); ++i) {
    VIGIL_CHECK(proposals[i].dim() == 2 && proposals[i].size(1) == 4,
                "expected proposals of shape [P, 4] for image {}, got {}", i, c10::str(proposals[i].sizes()));
  }
  VIGIL_CHECK(targets || !is_training(), "expected targets in training mode, got none");

  std::pair<std::vector<Detections>, LossMap> out;
  if (targets) {
    const auto samples = select_training_samples(proposals, *targets);
    const auto [class_logits, box_regression] = run_box_branch(features, samples.proposals, image_sizes);
    const auto [loss_classifier, loss_box_reg] =
        fastrcnn_loss(class_logits, box_regression, samples.labels, samples.regression_targets);
    out.second["loss_classifier"] = loss_classifier;
    out.second["loss_box_reg"] = loss_box_reg;
  }
  if (!is_training()) {
    const auto [class_logits, box_regression] = run_box_branch(features, proposals, image_sizes);
    out.first = postprocess_detections(class_logits, box_regression, proposals, image_sizes);
  }
  return out;
}

}  // namespace vigil::nn
