#include "vigil/nn/detection/ssd.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "vigil/core/error.h"
#include "vigil/nn/detection/roi_heads.h"
#include "vigil/nn/ops/nms.h"
#include "vigil/nn/precision.h"

namespace vigil::nn {

namespace {

using torch::indexing::None;
using torch::indexing::Slice;

// torchvision's degenerate-box check, run on the resized boxes; the message quotes the caller's box.
void check_box_extents(const std::vector<DetectionTarget>& resized,
                       const std::vector<DetectionTarget>& given) {
  for (size_t i = 0; i < resized.size(); ++i) {
    const auto& boxes = resized[i].boxes;
    if (boxes.numel() == 0) continue;
    const auto degenerate =
        (boxes.index({Slice(), Slice(2, 4)}) <= boxes.index({Slice(), Slice(0, 2)})).any(1);
    if (!degenerate.any().item<bool>()) continue;
    const int64_t b = torch::where(degenerate)[0][0].item<int64_t>();
    const auto box = given[i].boxes[b].to(torch::kDouble).contiguous();
    const auto* v = box.data_ptr<double>();
    throw InvalidArgument(
        fmt::format("expected boxes with positive width and height (x1 < x2, y1 < y2), got [{}, {}, {}, {}] "
                    "(box {} of target {})",
                    v[0], v[1], v[2], v[3], b, i));
  }
}

// ops::batched_nms for candidates grouped by class in runs of `per_class` boxes (classes ascending). Above
// torchvision's 4000-number threshold its per-class loop runs NMS on each class's indices; the runs are those
// indices, so NMS on each run and the same final sort give its result without scanning the labels per class.
// Below it, ops::batched_nms's coordinate trick is used as is (its offsets change IoU rounding).
torch::Tensor batched_nms_by_class(const torch::Tensor& boxes, const torch::Tensor& scores,
                                   const torch::Tensor& labels, const std::vector<int64_t>& per_class,
                                   double iou_threshold) {
  if (boxes.numel() <= 4000) return ops::batched_nms(boxes, scores, labels, iou_threshold);
  auto keep_mask = torch::zeros_like(scores, torch::kBool);
  int64_t offset = 0;
  for (const int64_t count : per_class) {
    if (count > 0) {
      const auto keep =
          ops::nms(boxes.narrow(0, offset, count), scores.narrow(0, offset, count), iou_threshold);
      keep_mask.index_put_({keep + offset}, true);
    }
    offset += count;
  }
  const auto keep_indices = torch::where(keep_mask)[0];
  return keep_indices.index({std::get<1>(scores.index({keep_indices}).sort(-1, /*descending=*/true))});
}

const SSDOptions& validated(const SSDOptions& options) {
  options.validate();
  return options;
}

}  // namespace

// ------------------------------------------------------------------------------------------------ SSDMatcher

SSDMatcher::SSDMatcher(double threshold)
    : matcher_(threshold, threshold, /*allow_low_quality_matches=*/false) {}

torch::Tensor SSDMatcher::operator()(const torch::Tensor& match_quality_matrix) const {
  auto matches = matcher_(match_quality_matrix);
  // Each ground truth takes its best default box, even below the threshold (the later ground truth wins a box
  // two of them prefer, as with torchvision's index assignment).
  const auto highest_quality_pred_foreach_gt = std::get<1>(match_quality_matrix.max(1));
  matches.index_put_({highest_quality_pred_foreach_gt},
                     torch::arange(highest_quality_pred_foreach_gt.size(0),
                                   torch::TensorOptions(torch::kInt64).device(matches.device())));
  return matches;
}

// -------------------------------------------------------------------------------------------- SSDScoringHead

SSDScoringHeadImpl::SSDScoringHeadImpl(std::vector<torch::nn::Sequential> blocks, int64_t num_columns)
    : blocks_(std::move(blocks)), num_columns_(num_columns) {
  VIGIL_CHECK(!blocks_.empty(), "expected one scoring block per feature map, got none");
  VIGIL_CHECK(num_columns_ >= 1, "expected num_columns >= 1, got {}", num_columns_);
  module_list = register_module("module_list", torch::nn::ModuleList());
  for (const auto& block : blocks_) module_list->push_back(block);
}

torch::Tensor SSDScoringHeadImpl::forward(const std::vector<torch::Tensor>& features) {
  VIGIL_CHECK(features.size() == blocks_.size(), "expected {} feature maps (one per scoring block), got {}",
              blocks_.size(), features.size());
  std::vector<torch::Tensor> all_results;
  all_results.reserve(features.size());
  for (size_t i = 0; i < features.size(); ++i) {
    const auto results = blocks_[i]->forward(features[i]);
    const int64_t n = results.size(0);
    const int64_t h = results.size(2);
    const int64_t w = results.size(3);
    // (N, A * K, H, W) -> (N, H * W * A, K).
    all_results.push_back(
        results.view({n, -1, num_columns_, h, w}).permute({0, 3, 4, 1, 2}).reshape({n, -1, num_columns_}));
  }
  return torch::cat(all_results, 1);
}

// ------------------------------------------------------------------------------------------------ SSDOptions

void SSDOptions::validate() const {
  VIGIL_CHECK(num_classes_ >= 2, "expected num_classes >= 2 (background included), got {}", num_classes_);
  VIGIL_CHECK(size_[0] > 0 && size_[1] > 0, "expected a positive size, got {}x{}", size_[0], size_[1]);
  VIGIL_CHECK(score_thresh_ >= 0.0 && score_thresh_ <= 1.0, "expected score_thresh in [0, 1], got {}",
              score_thresh_);
  VIGIL_CHECK(nms_thresh_ >= 0.0 && nms_thresh_ <= 1.0, "expected nms_thresh in [0, 1], got {}", nms_thresh_);
  VIGIL_CHECK(detections_per_img_ >= 1, "expected detections_per_img >= 1, got {}", detections_per_img_);
  VIGIL_CHECK(topk_candidates_ >= 1, "expected topk_candidates >= 1, got {}", topk_candidates_);
  VIGIL_CHECK(iou_thresh_ >= 0.0 && iou_thresh_ <= 1.0, "expected iou_thresh in [0, 1], got {}", iou_thresh_);
  VIGIL_CHECK(positive_fraction_ > 0.0 && positive_fraction_ <= 1.0,
              "expected positive_fraction in (0, 1], got {}", positive_fraction_);
  transform_options().validate();
}

GeneralizedRCNNTransformOptions SSDOptions::transform_options() const {
  return GeneralizedRCNNTransformOptions()
      .min_size({std::min(size_[0], size_[1])})
      .max_size(std::max(size_[0], size_[1]))
      .image_mean(image_mean_)
      .image_std(image_std_)
      .size_divisible(1)
      .fixed_size(size_);
}

double SSDOptions::neg_to_pos_ratio() const {
  return (1.0 - positive_fraction_) / positive_fraction_;
}

// ------------------------------------------------------------------------------------------------------- SSD

SSDImpl::SSDImpl(std::shared_ptr<SSDBackboneBase> backbone_, DefaultBoxGenerator anchor_generator_,
                 std::shared_ptr<SSDHeadBase> head_, const SSDOptions& options)
    : options_(validated(options)), proposal_matcher_(options.iou_thresh()) {
  VIGIL_CHECK(backbone_ && head_ && !anchor_generator_.is_empty(),
              "expected a backbone, an anchor generator and a head, got an empty one");
  const auto maps = backbone_->out_channels().size();
  const auto anchor_maps = anchor_generator_->num_anchors_per_location().size();
  VIGIL_CHECK(maps == anchor_maps,
              "expected one aspect-ratio list per backbone feature map ({}), got {} lists", maps,
              anchor_maps);
  VIGIL_CHECK(head_->num_classes() == options_.num_classes(),
              "expected a head with num_classes = {} outputs, got {}", options_.num_classes(),
              head_->num_classes());
  // torchvision's registration order: backbone, anchor_generator, head, transform.
  backbone = register_module("backbone", std::move(backbone_));
  anchor_generator = register_module("anchor_generator", std::move(anchor_generator_));
  head = register_module("head", std::move(head_));
  transform = register_module("transform", GeneralizedRCNNTransform(options_.transform_options()));
}

DetectorOutput SSDImpl::forward(const std::vector<torch::Tensor>& images,
                                const std::vector<DetectionTarget>* targets) {
  VIGIL_CHECK(!images.empty(), "expected at least one image, got an empty list");
  VIGIL_CHECK(targets || !is_training(), "expected targets in training mode, got none");
  std::vector<DetectionTarget> resized;
  if (targets) {
    check_detection_targets(*targets, images.size(), num_classes());
    resized = *targets;
  }
  std::vector<std::array<int64_t, 2>> original_sizes;
  for (const auto& image : images) original_sizes.push_back({image.size(-2), image.size(-1)});

  const ImageList batch = transform->forward(images, targets ? &resized : nullptr);
  if (targets) check_box_extents(resized, *targets);

  const auto features = backbone->forward(batch.tensors);
  SSDHeadOutput head_outputs = head->forward(features);
  head_outputs.bbox_regression = to_float32(head_outputs.bbox_regression);  // decoding and NMS in float32
  head_outputs.cls_logits = to_float32(head_outputs.cls_logits);
  const auto anchors = anchor_generator->forward(batch, features);

  DetectorOutput out;
  if (targets) out.losses = compute_loss(resized, head_outputs, anchors, match(anchors, resized));
  if (!is_training()) {
    out.detections = transform->postprocess(postprocess_detections(head_outputs, anchors, batch.image_sizes),
                                            batch.image_sizes, original_sizes);
    out.embeddings = pooled_embedding(features);
  }
  return out;
}

std::vector<torch::Tensor> SSDImpl::match(const std::vector<torch::Tensor>& anchors,
                                          const std::vector<DetectionTarget>& targets) const {
  VIGIL_CHECK(anchors.size() == targets.size(), "expected one target per image ({}), got {}", anchors.size(),
              targets.size());
  std::vector<torch::Tensor> matched_idxs;
  for (size_t i = 0; i < anchors.size(); ++i) {
    if (targets[i].boxes.numel() == 0) {
      matched_idxs.push_back(torch::full({anchors[i].size(0)}, -1,
                                         torch::TensorOptions(torch::kInt64).device(anchors[i].device())));
      continue;
    }
    matched_idxs.push_back(proposal_matcher_(ops::box_iou(targets[i].boxes, anchors[i])));
  }
  return matched_idxs;
}

LossMap SSDImpl::compute_loss(const std::vector<DetectionTarget>& targets, const SSDHeadOutput& head_outputs,
                              const std::vector<torch::Tensor>& anchors,
                              const std::vector<torch::Tensor>& matched_idxs) const {
  const auto& bbox_regression = head_outputs.bbox_regression;
  const auto& cls_logits = head_outputs.cls_logits;
  VIGIL_CHECK(targets.size() == anchors.size() && targets.size() == matched_idxs.size() &&
                  static_cast<int64_t>(targets.size()) == cls_logits.size(0),
              "expected one target, anchor set and match per image ({}), got {}, {} and {}",
              cls_logits.size(0), targets.size(), anchors.size(), matched_idxs.size());

  int64_t num_foreground = 0;
  std::vector<torch::Tensor> bbox_loss;
  std::vector<torch::Tensor> cls_targets;
  for (size_t i = 0; i < targets.size(); ++i) {
    const auto foreground_idxs = torch::where(matched_idxs[i] >= 0)[0];
    const auto foreground_matched_idxs = matched_idxs[i].index({foreground_idxs});
    num_foreground += foreground_matched_idxs.numel();

    const auto matched_gt_boxes = targets[i].boxes.index({foreground_matched_idxs});
    const auto regression = bbox_regression[static_cast<int64_t>(i)].index({foreground_idxs, Slice()});
    const auto anchors_i = anchors[i].index({foreground_idxs, Slice()});
    const auto target_regression = box_coder_.encode_single(matched_gt_boxes, anchors_i);
    bbox_loss.push_back(
        torch::smooth_l1_loss(regression, target_regression, at::Reduction::Sum, /*beta=*/1.0));

    auto gt_classes_target = torch::zeros({cls_logits.size(1)}, targets[i].labels.options());
    gt_classes_target.index_put_({foreground_idxs}, targets[i].labels.index({foreground_matched_idxs}));
    cls_targets.push_back(gt_classes_target);
  }
  const auto all_cls_targets = torch::stack(cls_targets);

  const int64_t num_classes = cls_logits.size(-1);
  namespace F = torch::nn::functional;
  const auto cls_loss = F::cross_entropy(cls_logits.view({-1, num_classes}), all_cls_targets.view(-1),
                                         F::CrossEntropyFuncOptions().reduction(torch::kNone))
                            .view(all_cls_targets.sizes());

  // Hard negative mining: per image, the neg_to_pos_ratio * positives negatives with the largest loss.
  const auto foreground = all_cls_targets > 0;
  const auto num_negative = foreground.sum(1, /*keepdim=*/true) * options_.neg_to_pos_ratio();
  auto negative_loss = cls_loss.detach().clone();
  // -inf sorts the positives last.
  negative_loss.index_put_({foreground}, -std::numeric_limits<float>::infinity());
  const auto idx = std::get<1>(negative_loss.sort(1, /*descending=*/true));
  const auto background = std::get<1>(idx.sort(1)) < num_negative;

  const int64_t n = std::max<int64_t>(1, num_foreground);
  LossMap losses;
  losses["bbox_regression"] = torch::stack(bbox_loss).sum() / n;
  losses["classification"] = (cls_loss.index({foreground}).sum() + cls_loss.index({background}).sum()) / n;
  return losses;
}

std::vector<Detections> SSDImpl::postprocess_detections(
    const SSDHeadOutput& head_outputs, const std::vector<torch::Tensor>& anchors,
    const std::vector<std::array<int64_t, 2>>& image_sizes) const {
  const auto pred_scores = torch::softmax(head_outputs.cls_logits, -1);
  const int64_t num_classes = pred_scores.size(-1);
  std::vector<Detections> detections;
  for (size_t i = 0; i < image_sizes.size(); ++i) {
    const auto n = static_cast<int64_t>(i);
    auto boxes = box_coder_.decode_single(head_outputs.bbox_regression[n], anchors[i]);
    boxes = ops::clip_boxes_to_image(boxes, image_sizes[i]);
    // One contiguous row per class. torchvision's score[score > t].topk(k) and box[keep][idxs] are gathers,
    // so selecting by index (and gathering the boxes once) gives the same tensors with fewer copies.
    const auto class_scores = pred_scores[n].t().contiguous();

    std::vector<torch::Tensor> candidate_idxs;
    std::vector<torch::Tensor> candidate_scores;
    std::vector<int64_t> per_class;
    for (int64_t label = 1; label < num_classes; ++label) {
      const auto row = class_scores[label];
      const auto kept = torch::nonzero(row > options_.score_thresh()).squeeze(1);
      const auto score = row.index_select(0, kept);
      const int64_t num_topk = std::min(options_.topk_candidates(), score.size(0));
      auto [top_scores, idxs] = score.topk(num_topk);
      candidate_idxs.push_back(kept.index_select(0, idxs));
      candidate_scores.push_back(std::move(top_scores));
      per_class.push_back(num_topk);
    }
    Detections d;
    d.boxes = boxes.index_select(0, torch::cat(candidate_idxs, 0));
    d.scores = torch::cat(candidate_scores, 0);
    d.labels = torch::repeat_interleave(
        torch::arange(1, num_classes, torch::TensorOptions(torch::kInt64).device(d.scores.device())),
        torch::tensor(per_class, torch::TensorOptions(torch::kInt64).device(d.scores.device())));
    const auto keep = batched_nms_by_class(d.boxes, d.scores, d.labels, per_class, options_.nms_thresh())
                          .index({Slice(None, options_.detections_per_img())});
    d.boxes = d.boxes.index({keep});
    d.scores = d.scores.index({keep});
    d.labels = d.labels.index({keep});
    detections.push_back(std::move(d));
  }
  return detections;
}

void SSDImpl::replace_predictor(int64_t num_classes) {
  VIGIL_CHECK(num_classes >= 2, "expected num_classes >= 2 (background included), got {}", num_classes);
  head->replace_classification_head(num_classes);
  options_.num_classes(num_classes);
}

int64_t SSDImpl::num_classes() const {
  return head->num_classes();
}

void SSDImpl::set_postprocess(const PostprocessOptions& options) {
  auto updated = options_;
  updated.score_thresh(options.score_threshold)
      .nms_thresh(options.nms_iou)
      .detections_per_img(options.max_detections);
  updated.validate();
  options_ = updated;
}

PostprocessOptions SSDImpl::postprocess() const {
  PostprocessOptions out;
  out.score_threshold = options_.score_thresh();
  out.nms_iou = options_.nms_thresh();
  out.max_detections = options_.detections_per_img();
  return out;
}

void SSDImpl::freeze_backbone(int trainable_layers) {
  backbone->freeze(trainable_layers);
}

}  // namespace vigil::nn
