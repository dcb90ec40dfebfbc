#include "vigil/nn/detection/rpn.h"

#include <torch/torch.h>

#include <algorithm>
#include <utility>

#include "vigil/core/error.h"
#include "vigil/nn/backbones/mobilenet_v2.h"
#include "vigil/nn/ops/nms.h"
#include "vigil/nn/precision.h"
#include "vigil/nn/quantize.h"

namespace vigil::nn {

namespace {

using torch::indexing::None;
using torch::indexing::Slice;

// Objectness/deltas of one level [N, A * C, H, W] -> [N, H * W * A, C], anchors of a location contiguous
// (torchvision's permute_and_flatten).
torch::Tensor permute_and_flatten(const torch::Tensor& layer, int64_t n, int64_t c, int64_t h, int64_t w) {
  return layer.view({n, -1, c, h, w}).permute({0, 3, 4, 1, 2}).reshape({n, -1, c});
}

// torchvision's concat_box_prediction_layers: {objectness [N * A_total, 1], deltas [N * A_total, 4]}.
std::pair<torch::Tensor, torch::Tensor> concat_box_prediction_layers(
    const std::vector<torch::Tensor>& box_cls, const std::vector<torch::Tensor>& box_reg) {
  std::vector<torch::Tensor> cls_flat;
  std::vector<torch::Tensor> reg_flat;
  for (size_t i = 0; i < box_cls.size(); ++i) {
    const auto n = box_cls[i].size(0);
    const auto h = box_cls[i].size(2);
    const auto w = box_cls[i].size(3);
    const auto a = box_reg[i].size(1) / 4;
    const auto c = box_cls[i].size(1) / a;
    cls_flat.push_back(permute_and_flatten(box_cls[i], n, c, h, w));
    reg_flat.push_back(permute_and_flatten(box_reg[i], n, 4, h, w));
  }
  return {torch::cat(cls_flat, 1).flatten(0, -2), torch::cat(reg_flat, 1).reshape({-1, 4})};
}

const RegionProposalNetworkOptions& validated(const RegionProposalNetworkOptions& options) {
  options.validate();
  return options;
}

}  // namespace

// ------------------------------------------------------------------------------------------------ RPNHead

RPNHeadImpl::RPNHeadImpl(int64_t in_channels, int64_t num_anchors, int conv_depth) {
  VIGIL_CHECK(in_channels > 0, "expected RPN head in_channels > 0, got {}", in_channels);
  VIGIL_CHECK(num_anchors > 0, "expected RPN head num_anchors > 0, got {}", num_anchors);
  VIGIL_CHECK(conv_depth >= 1, "expected RPN head conv_depth >= 1, got {}", conv_depth);
  conv = register_module("conv", torch::nn::Sequential());
  for (int i = 0; i < conv_depth; ++i) {
    conv->push_back(ConvNormActivation(ConvNormActivationOptions(in_channels, in_channels, 3)
                                           .norm(std::nullopt)
                                           .activation(Activation::kReLU)));
  }
  cls_logits =
      register_module("cls_logits", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, num_anchors, 1)));
  bbox_pred = register_module("bbox_pred",
                              torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, num_anchors * 4, 1)));
  torch::NoGradGuard no_grad;
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* c = module->as<torch::nn::Conv2dImpl>()) {
      c->weight.normal_(0.0, 0.01);
      if (c->bias.defined()) c->bias.zero_();
    }
  }
}

/// The ranges of each conv's output (after its ReLU) and of the two heads', then their int8 convolutions.
struct RPNHeadImpl::Int8 {
  std::vector<RangeObserver> r_conv;
  RangeObserver r_cls, r_bbox;
  std::vector<QuantizedConv2d> conv;
  QuantizedConv2d cls, bbox;
  bool ready = false;
};

std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>> RPNHeadImpl::forward(
    const std::vector<torch::Tensor>& features) {
  std::vector<torch::Tensor> logits;
  std::vector<torch::Tensor> bbox_reg;
  Int8* observe = int8_ && !int8_->ready ? int8_.get() : nullptr;
  for (const auto& feature : features) {
    if (feature.is_quantized() && int8_ && int8_->ready) {
      auto t = feature;
      for (const auto& c : int8_->conv) t = c.forward(t);
      logits.push_back(int8_->cls.forward(t).dequantize());
      bbox_reg.push_back(int8_->bbox.forward(t).dequantize());
      continue;
    }
    auto t = feature.is_quantized() ? feature.dequantize() : feature;
    for (size_t i = 0; i < conv->size(); ++i) {
      t = conv[i]->as<ConvNormActivation>()->forward(t);
      if (observe) observe->r_conv[i].observe(t);
    }
    logits.push_back(to_float32(cls_logits->forward(t)));  // decoding and NMS run in float32
    bbox_reg.push_back(to_float32(bbox_pred->forward(t)));
    if (observe) {
      observe->r_cls.observe(logits.back());
      observe->r_bbox.observe(bbox_reg.back());
    }
  }
  return {logits, bbox_reg};
}

void RPNHeadImpl::begin_int8_calibration() {
  VIGIL_CHECK(!is_training(), "expected an eval-mode RPN head to calibrate for int8, got train mode");
  int8_ = std::make_shared<Int8>();
  int8_->r_conv.resize(conv->size());
}

int RPNHeadImpl::finish_int8_calibration() {
  VIGIL_ASSERT(int8_ && !int8_->ready, "finish_int8_calibration without begin_int8_calibration");
  Int8& q = *int8_;
  for (size_t i = 0; i < conv->size(); ++i) {
    const auto block = conv[i]->as<ConvNormActivation>();
    VIGIL_CHECK(block->is_bare_conv(Activation::kReLU),
                "expected RPN head convolutions without norm, followed by ReLU, to quantise, got conv {}", i);
    q.conv.emplace_back(block->conv(), q.r_conv[i].qparams(), /*relu=*/true);
  }
  q.cls = QuantizedConv2d(*cls_logits, q.r_cls.qparams(), false);
  q.bbox = QuantizedConv2d(*bbox_pred, q.r_bbox.qparams(), false);
  q.ready = true;
  return static_cast<int>(conv->size()) + 2;
}

// ----------------------------------------------------------------------------- RegionProposalNetwork

void RegionProposalNetworkOptions::validate() const {
  VIGIL_CHECK(pre_nms_top_n_train_ > 0 && pre_nms_top_n_test_ > 0,
              "expected pre_nms_top_n (train, test) > 0, got {} and {}", pre_nms_top_n_train_,
              pre_nms_top_n_test_);
  VIGIL_CHECK(post_nms_top_n_train_ > 0 && post_nms_top_n_test_ > 0,
              "expected post_nms_top_n (train, test) > 0, got {} and {}", post_nms_top_n_train_,
              post_nms_top_n_test_);
  VIGIL_CHECK(nms_thresh_ > 0.0 && nms_thresh_ <= 1.0, "expected nms_thresh in (0, 1], got {}", nms_thresh_);
  VIGIL_CHECK(bg_iou_thresh_ >= 0.0 && bg_iou_thresh_ <= fg_iou_thresh_ && fg_iou_thresh_ <= 1.0,
              "expected 0 <= bg_iou_thresh <= fg_iou_thresh <= 1, got {} and {}", bg_iou_thresh_,
              fg_iou_thresh_);
  VIGIL_CHECK(batch_size_per_image_ > 0, "expected batch_size_per_image > 0, got {}", batch_size_per_image_);
  VIGIL_CHECK(positive_fraction_ >= 0.0 && positive_fraction_ <= 1.0,
              "expected positive_fraction in [0, 1], got {}", positive_fraction_);
  VIGIL_CHECK(score_thresh_ >= 0.0 && score_thresh_ <= 1.0, "expected score_thresh in [0, 1], got {}",
              score_thresh_);
}

RegionProposalNetworkImpl::RegionProposalNetworkImpl(AnchorGenerator anchor_generator_, RPNHead head_,
                                                     RegionProposalNetworkOptions options_)
    : options(validated(options_)),
      proposal_matcher_(options.fg_iou_thresh(), options.bg_iou_thresh(), /*allow_low_quality_matches=*/true),
      fg_bg_sampler_(options.batch_size_per_image(), options.positive_fraction()) {
  VIGIL_CHECK(!anchor_generator_.is_empty() && !head_.is_empty(),
              "expected an anchor generator and an RPN head, got an empty module holder");
  anchor_generator = register_module("anchor_generator", std::move(anchor_generator_));
  head = register_module("head", std::move(head_));
}

int64_t RegionProposalNetworkImpl::pre_nms_top_n() const {
  return is_training() ? options.pre_nms_top_n_train() : options.pre_nms_top_n_test();
}

int64_t RegionProposalNetworkImpl::post_nms_top_n() const {
  return is_training() ? options.post_nms_top_n_train() : options.post_nms_top_n_test();
}

RPNOutput RegionProposalNetworkImpl::forward(const ImageList& images, const FeatureMap& features,
                                             const std::vector<DetectionTarget>* targets) {
  VIGIL_CHECK(!features.is_empty(), "expected at least one feature map, got none");
  const auto num_images = static_cast<int64_t>(images.image_sizes.size());
  VIGIL_CHECK(num_images > 0 && images.tensors.defined() && images.tensors.size(0) == num_images,
              "expected an image batch with one size per image, got {} sizes for a batch of {}", num_images,
              images.tensors.defined() ? c10::str(images.tensors.sizes()) : std::string("nothing"));
  if (targets != nullptr) {
    VIGIL_CHECK(static_cast<int64_t>(targets->size()) == num_images,
                "expected one target per image ({}), got {}", num_images, targets->size());
  }
  VIGIL_CHECK(!is_training() || targets != nullptr, "expected targets in training mode, got none");

  const auto maps = features.values();
  auto [objectness_levels, deltas_levels] = head->forward(maps);
  const auto anchors = anchor_generator->forward(images, maps);
  std::vector<int64_t> num_anchors_per_level;
  for (const auto& o : objectness_levels) num_anchors_per_level.push_back(o.size(1) * o.size(2) * o.size(3));
  auto [objectness, pred_bbox_deltas] = concat_box_prediction_layers(objectness_levels, deltas_levels);
  // Faster R-CNN does not backpropagate through the proposals.
  const auto proposals = box_coder_.decode(pred_bbox_deltas.detach(), anchors).view({num_images, -1, 4});

  RPNOutput out;
  std::tie(out.proposals, out.scores) =
      filter_proposals(proposals, objectness, images.image_sizes, num_anchors_per_level);
  if (targets != nullptr) {
    auto [labels, matched_gt_boxes] = assign_targets_to_anchors(anchors, *targets);
    const auto regression_targets = box_coder_.encode(matched_gt_boxes, anchors);
    auto [loss_objectness, loss_box] = compute_loss(objectness, pred_bbox_deltas, labels, regression_targets);
    out.losses["loss_objectness"] = loss_objectness;
    out.losses["loss_rpn_box_reg"] = loss_box;
  }
  return out;
}

std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>>
RegionProposalNetworkImpl::assign_targets_to_anchors(const std::vector<torch::Tensor>& anchors,
                                                     const std::vector<DetectionTarget>& targets) const {
  VIGIL_CHECK(anchors.size() == targets.size(), "expected one target per image ({}), got {}", anchors.size(),
              targets.size());
  std::vector<torch::Tensor> labels;
  std::vector<torch::Tensor> matched_gt_boxes;
  for (size_t i = 0; i < anchors.size(); ++i) {
    const auto& anchors_i = anchors[i];
    const auto& gt_boxes = targets[i].boxes;
    VIGIL_CHECK(gt_boxes.defined() && gt_boxes.dim() == 2 && gt_boxes.size(1) == 4,
                "expected target {} boxes of shape [N, 4], got {}", i,
                gt_boxes.defined() ? c10::str(gt_boxes.sizes()) : std::string("an undefined tensor"));
    const auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(anchors_i.device());
    if (gt_boxes.numel() == 0) {
      // A background image: every anchor is a negative.
      matched_gt_boxes.push_back(torch::zeros(anchors_i.sizes(), opts));
      labels.push_back(torch::zeros({anchors_i.size(0)}, opts));
      continue;
    }
    const auto matched_idxs = proposal_matcher_(ops::box_iou(gt_boxes, anchors_i));
    // Clamped because -1 / -2 would index out of bounds; those anchors' labels say they are not positives.
    matched_gt_boxes.push_back(gt_boxes.index({matched_idxs.clamp_min(0)}));
    auto labels_i = (matched_idxs >= 0).to(torch::kFloat32);
    labels_i.index_put_({matched_idxs == ops::Matcher::kBelowLowThreshold}, 0.0);
    labels_i.index_put_({matched_idxs == ops::Matcher::kBetweenThresholds}, -1.0);
    labels.push_back(labels_i);
  }
  return {labels, matched_gt_boxes};
}

std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>> RegionProposalNetworkImpl::filter_proposals(
    const torch::Tensor& proposals, const torch::Tensor& objectness_in,
    const std::vector<std::array<int64_t, 2>>& image_sizes,
    const std::vector<int64_t>& num_anchors_per_level) {
  const int64_t num_images = proposals.size(0);
  const auto device = proposals.device();
  const auto objectness_all = objectness_in.detach().reshape({num_images, -1});
  std::vector<torch::Tensor> level_ids;
  for (size_t idx = 0; idx < num_anchors_per_level.size(); ++idx) {
    level_ids.push_back(torch::full({num_anchors_per_level[idx]}, static_cast<int64_t>(idx),
                                    torch::TensorOptions().dtype(torch::kInt64).device(device)));
  }
  const auto levels_all = torch::cat(level_ids, 0).reshape({1, -1}).expand_as(objectness_all);

  // Top-n per level before NMS, so one busy level cannot crowd out the others.
  std::vector<torch::Tensor> top_idx;
  int64_t offset = 0;
  const auto splits = objectness_all.split_with_sizes(num_anchors_per_level, 1);
  for (const auto& ob : splits) {
    const int64_t k = std::min(pre_nms_top_n(), ob.size(1));
    top_idx.push_back(std::get<1>(ob.topk(k, 1)) + offset);
    offset += ob.size(1);
  }
  const auto top_n_idx = torch::cat(top_idx, 1);
  const auto batch_idx = torch::arange(num_images, torch::TensorOptions().dtype(torch::kInt64).device(device))
                             .index({Slice(), None});
  const auto objectness = objectness_all.index({batch_idx, top_n_idx});
  const auto levels = levels_all.index({batch_idx, top_n_idx});
  const auto selected = proposals.index({batch_idx, top_n_idx});
  const auto objectness_prob = torch::sigmoid(objectness);

  std::vector<torch::Tensor> final_boxes;
  std::vector<torch::Tensor> final_scores;
  for (int64_t i = 0; i < num_images; ++i) {
    auto boxes = ops::clip_boxes_to_image(selected[i], image_sizes[i]);
    auto scores = objectness_prob[i];
    auto lvl = levels[i];
    auto keep = ops::remove_small_boxes(boxes, /*min_size=*/1e-3);
    boxes = boxes.index({keep});
    scores = scores.index({keep});
    lvl = lvl.index({keep});
    // >= keeps torchvision's backwards-compatible behaviour at score_thresh 0.
    keep = torch::where(scores >= options.score_thresh())[0];
    boxes = boxes.index({keep});
    scores = scores.index({keep});
    lvl = lvl.index({keep});
    keep = ops::batched_nms(boxes, scores, lvl, options.nms_thresh()).index({Slice(None, post_nms_top_n())});
    final_boxes.push_back(boxes.index({keep}));
    final_scores.push_back(scores.index({keep}));
  }
  return {final_boxes, final_scores};
}

std::pair<torch::Tensor, torch::Tensor> RegionProposalNetworkImpl::compute_loss(
    const torch::Tensor& objectness, const torch::Tensor& pred_bbox_deltas,
    const std::vector<torch::Tensor>& labels, const std::vector<torch::Tensor>& regression_targets) {
  auto [pos_masks, neg_masks] = fg_bg_sampler_(labels);
  const auto sampled_pos_inds = torch::where(torch::cat(pos_masks, 0))[0];
  const auto sampled_neg_inds = torch::where(torch::cat(neg_masks, 0))[0];
  const auto sampled_inds = torch::cat({sampled_pos_inds, sampled_neg_inds}, 0);

  const auto all_labels = torch::cat(labels, 0);
  const auto all_targets = torch::cat(regression_targets, 0);
  const auto box_loss = torch::smooth_l1_loss(pred_bbox_deltas.index({sampled_pos_inds}),
                                              all_targets.index({sampled_pos_inds}), at::Reduction::Sum,
                                              /*beta=*/1.0 / 9) /
                        static_cast<double>(sampled_inds.numel());
  const auto objectness_loss = torch::binary_cross_entropy_with_logits(
      objectness.flatten().index({sampled_inds}), all_labels.index({sampled_inds}));
  return {objectness_loss, box_loss};
}

}  // namespace vigil::nn
