#pragma once
/// torchvision 0.14's region proposal network (models/detection/rpn.py): RPNHead and
/// RegionProposalNetwork, with torchvision's state_dict names (head.conv.0.0.weight, head.cls_logits.weight,
/// head.bbox_pred.weight, ...).

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "vigil/nn/detection/anchor_generator.h"
#include "vigil/nn/detection/detector.h"
#include "vigil/nn/detection/fpn.h"
#include "vigil/nn/detection/transform.h"
#include "vigil/nn/ops/boxes.h"

namespace vigil::nn {

/// Shared 3x3 conv(s) + ReLU, then per-anchor objectness logits (cls_logits) and box deltas (bbox_pred);
/// every conv N(0, 0.01) with zero bias, as torchvision initialises it.
class RPNHeadImpl : public torch::nn::Module {
 public:
  /// Throws InvalidArgument on non-positive channels, anchors or depth.
  RPNHeadImpl(int64_t in_channels, int64_t num_anchors, int conv_depth = 1);
  /// Per level: {objectness [N, A, H, W], deltas [N, 4 * A, H, W]}.
  /// Quantised features (an int8 FPN's) run the int8 head once it is calibrated, else are dequantised.
  std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>> forward(
      const std::vector<torch::Tensor>& features);

  /// int8 (nn/quantize.h): record the ranges of the conv and head outputs in forward passes, then build
  /// their int8 convolutions. Returns the number quantised.
  void begin_int8_calibration();
  int finish_int8_calibration();

  torch::nn::Sequential conv{nullptr};
  torch::nn::Conv2d cls_logits{nullptr}, bbox_pred{nullptr};

 private:
  struct Int8;
  std::shared_ptr<Int8> int8_;
};
TORCH_MODULE(RPNHead);

/// RegionProposalNetwork's knobs; defaults are torchvision FasterRCNN's rpn_* arguments.
struct RegionProposalNetworkOptions {
  /// Top-scoring anchors kept per level before NMS, in training and in evaluation.
  TORCH_ARG(int64_t, pre_nms_top_n_train) = 2000;
  TORCH_ARG(int64_t, pre_nms_top_n_test) = 1000;
  /// Proposals kept per image after NMS.
  TORCH_ARG(int64_t, post_nms_top_n_train) = 2000;
  TORCH_ARG(int64_t, post_nms_top_n_test) = 1000;
  TORCH_ARG(double, nms_thresh) = 0.7;
  /// Anchors with IoU >= fg_iou_thresh to a ground truth are positive, < bg_iou_thresh negative.
  TORCH_ARG(double, fg_iou_thresh) = 0.7;
  TORCH_ARG(double, bg_iou_thresh) = 0.3;
  /// Anchors sampled per image for the loss and the largest share of them that may be positive.
  TORCH_ARG(int64_t, batch_size_per_image) = 256;
  TORCH_ARG(double, positive_fraction) = 0.5;
  /// Proposals whose objectness probability is below this are dropped before NMS.
  TORCH_ARG(double, score_thresh) = 0.0;

 public:
  /// Throws InvalidArgument when a value is out of range.
  void validate() const;
};

/// What the RPN returns. `scores` is an addition to torchvision's (boxes, losses) pair: the sigmoid
/// objectness of each proposal, which FasterRCNN ignores but tests and tools use.
struct RPNOutput {
  std::vector<torch::Tensor> proposals;  ///< [K_i, 4] per image, in resized-image pixels, by score
  std::vector<torch::Tensor> scores;     ///< [K_i] per image
  LossMap losses;                        ///< loss_objectness, loss_rpn_box_reg when targets were given
};

/// Anchors + head -> decoded, clipped, NMS-filtered proposals per image, and the RPN losses.
class RegionProposalNetworkImpl : public torch::nn::Module {
 public:
  /// Registers `anchor_generator` (no parameters) and `head`. Throws InvalidArgument on bad options.
  RegionProposalNetworkImpl(AnchorGenerator anchor_generator, RPNHead head,
                            RegionProposalNetworkOptions options = {});

  /// Uses every map of `features` in order. Losses are computed whenever `targets` is given (one per image,
  /// boxes in resized-image pixels), in training or evaluation mode; top-n limits follow is_training().
  /// Training mode requires targets, as in torchvision. Throws InvalidArgument when they are missing in
  /// training or their count differs from the image count.
  RPNOutput forward(const ImageList& images, const FeatureMap& features,
                    const std::vector<DetectionTarget>* targets = nullptr);

  /// Per image: labels (1 positive, 0 negative, -1 ignored; float32) and the matched ground-truth box of
  /// every anchor (torchvision's assign_targets_to_anchors).
  std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>> assign_targets_to_anchors(
      const std::vector<torch::Tensor>& anchors, const std::vector<DetectionTarget>& targets) const;

  /// Per-level top-n, clipping, small-box and score filtering, per-level NMS and post-NMS top-n:
  /// {boxes, scores} per image. `proposals` [N, A_total, 4], `objectness` [N * A_total, 1] or [N, A_total].
  std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>> filter_proposals(
      const torch::Tensor& proposals, const torch::Tensor& objectness,
      const std::vector<std::array<int64_t, 2>>& image_sizes,
      const std::vector<int64_t>& num_anchors_per_level);

  /// {objectness loss (BCE over sampled anchors), box loss (smooth L1, beta 1/9, summed / sampled count)}.
  std::pair<torch::Tensor, torch::Tensor> compute_loss(const torch::Tensor& objectness,
                                                       const torch::Tensor& pred_bbox_deltas,
                                                       const std::vector<torch::Tensor>& labels,
                                                       const std::vector<torch::Tensor>& regression_targets);

  int64_t pre_nms_top_n() const;
  int64_t post_nms_top_n() const;

  RegionProposalNetworkOptions options;
  AnchorGenerator anchor_generator{nullptr};
  RPNHead head{nullptr};

 private:
  ops::BoxCoder box_coder_{{1.0, 1.0, 1.0, 1.0}};
  ops::Matcher proposal_matcher_;
  ops::BalancedPositiveNegativeSampler fg_bg_sampler_;
};
TORCH_MODULE(RegionProposalNetwork);

}  // namespace vigil::nn
