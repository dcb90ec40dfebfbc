#pragma once
/// The box branch of Faster R-CNN (torchvision 0.14's roi_heads.py and faster_rcnn.py): TwoMLPHead,
/// FastRCNNPredictor and RoIHeads, with torchvision's state_dict names (roi_heads.box_head.fc6.weight,
/// roi_heads.box_predictor.cls_score.weight, ...).

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/ordered_dict.h>
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "vigil/nn/detection/detector.h"
#include "vigil/nn/ops/boxes.h"
#include "vigil/nn/ops/poolers.h"

namespace vigil::nn {

/// Feature maps by name in pyramid order ("0", "1", ..., "pool"); the same alias as the FPN's.
using FeatureMap = torch::OrderedDict<std::string, torch::Tensor>;

/// Two fully connected layers with ReLU on flattened RoI features (torchvision's TwoMLPHead): fc6, fc7.
class TwoMLPHeadImpl : public torch::nn::Module {
 public:
  /// `in_channels` is C * pool_h * pool_w of the pooled features.
  TwoMLPHeadImpl(int64_t in_channels, int64_t representation_size);
  /// [K, C, h, w] (or [K, in_channels]) -> [K, representation_size].
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear fc6{nullptr}, fc7{nullptr};
};
TORCH_MODULE(TwoMLPHead);

/// Class logits and per-class box deltas (torchvision's FastRCNNPredictor): cls_score, bbox_pred.
class FastRCNNPredictorImpl : public torch::nn::Module {
 public:
  /// `num_classes` includes the background.
  FastRCNNPredictorImpl(int64_t in_channels, int64_t num_classes);
  /// [K, in_channels] (or [K, in_channels, 1, 1]) -> {logits [K, num_classes], deltas [K, 4 * num_classes]}.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x);
  int64_t num_classes() const { return cls_score->options.out_features(); }
  int64_t in_channels() const { return cls_score->options.in_features(); }

  torch::nn::Linear cls_score{nullptr}, bbox_pred{nullptr};
};
TORCH_MODULE(FastRCNNPredictor);

/// RoIHeads' knobs; names and defaults are torchvision's FasterRCNN box_* arguments.
struct RoIHeadsOptions {
  using Weights4 = std::array<double, 4>;
  /// Proposals with IoU >= fg_iou_thresh to a ground truth are foreground, < bg_iou_thresh background.
  TORCH_ARG(double, fg_iou_thresh) = 0.5;
  TORCH_ARG(double, bg_iou_thresh) = 0.5;
  /// Proposals sampled per image for the loss, and the largest share of them that may be foreground.
  TORCH_ARG(int64_t, batch_size_per_image) = 512;
  TORCH_ARG(double, positive_fraction) = 0.25;
  /// (wx, wy, ww, wh) of the box coder.
  TORCH_ARG(Weights4, bbox_reg_weights) = Weights4{10.0, 10.0, 5.0, 5.0};
  /// Inference: minimum class score, per-class NMS IoU, detections kept per image.
  TORCH_ARG(double, score_thresh) = 0.05;
  TORCH_ARG(double, nms_thresh) = 0.5;
  TORCH_ARG(int64_t, detections_per_img) = 100;

 public:
  /// Throws InvalidArgument when a value is out of range.
  void validate() const;
};

/// What select_training_samples() returns, per image: the sampled proposals (ground truth included), the
/// index of the ground truth each one matched, its class (0 background) and its regression target.
struct RoITrainingSamples {
  std::vector<torch::Tensor> proposals;
  std::vector<torch::Tensor> matched_idxs;
  std::vector<torch::Tensor> labels;
  std::vector<torch::Tensor> regression_targets;
};

/// Checks ground truth at an API boundary: one target per image, boxes [N, 4] floating point, labels [N]
/// int64 in [0, num_classes). Throws InvalidArgument naming the first bad target.
void check_detection_targets(const std::vector<DetectionTarget>& targets, size_t num_images,
                             int64_t num_classes);

/// torchvision's fastrcnn_loss: cross entropy over the sampled proposals ("loss_classifier") and smooth-L1
/// (beta 1/9) of the true class's deltas on the foreground ones, summed and divided by the number of
/// samples ("loss_box_reg").
std::pair<torch::Tensor, torch::Tensor> fastrcnn_loss(const torch::Tensor& class_logits,
                                                      const torch::Tensor& box_regression,
                                                      const std::vector<torch::Tensor>& labels,
                                                      const std::vector<torch::Tensor>& regression_targets);

/// torchvision's RoIHeads (box branch only): pools each proposal, runs the box head and predictor, then
/// either samples proposals against the ground truth for the loss or post-processes detections.
class RoIHeadsImpl : public torch::nn::Module {
 public:
  RoIHeadsImpl(ops::MultiScaleRoIAlign box_roi_pool, TwoMLPHead box_head, FastRCNNPredictor box_predictor,
               const RoIHeadsOptions& options = {});

  /// features from the backbone; proposals: one [P_i, 4] per image; image_sizes: {h, w} of each resized
  /// image (before padding); targets in the same resized coordinates. Losses ("loss_classifier",
  /// "loss_box_reg") are computed whenever targets are given, in eval mode too (validation loss, on a
  /// separate sample of proposals); detections whenever the module is not training. Training without
  /// targets, mismatched list sizes or malformed targets throw InvalidArgument.
  std::pair<std::vector<Detections>, LossMap> forward(const FeatureMap& features,
                                                      const std::vector<torch::Tensor>& proposals,
                                                      const std::vector<std::array<int64_t, 2>>& image_sizes,
                                                      const std::vector<DetectionTarget>* targets = nullptr);

  /// Adds the ground truth to the proposals, matches and samples them (torchvision's
  /// select_training_samples). Draws from the global generator.
  RoITrainingSamples select_training_samples(const std::vector<torch::Tensor>& proposals,
                                             const std::vector<DetectionTarget>& targets) const;

  /// Softmax, decode, clip, drop the background, score threshold, drop boxes under 0.01 px, per-class NMS,
  /// best detections_per_img (torchvision's postprocess_detections).
  std::vector<Detections> postprocess_detections(
      const torch::Tensor& class_logits, const torch::Tensor& box_regression,
      const std::vector<torch::Tensor>& proposals,
      const std::vector<std::array<int64_t, 2>>& image_sizes) const;

  /// Swaps box_predictor for a fresh FastRCNNPredictor with `num_classes` outputs (background included),
  /// initialised like torchvision's (PyTorch's default Linear init, global generator).
  void replace_predictor(int64_t num_classes);
  /// Classes including the background.
  int64_t num_classes() const { return box_predictor->num_classes(); }

  ops::MultiScaleRoIAlign box_roi_pool{nullptr};
  TwoMLPHead box_head{nullptr};
  FastRCNNPredictor box_predictor{nullptr};
  /// Changing the inference fields (score_thresh, nms_thresh, detections_per_img) takes effect at once;
  /// re-validate after editing.
  RoIHeadsOptions options;

 private:
  std::pair<torch::Tensor, torch::Tensor> run_box_branch(
      const FeatureMap& features, const std::vector<torch::Tensor>& proposals,
      const std::vector<std::array<int64_t, 2>>& image_sizes);

  ops::BoxCoder box_coder_;
  ops::Matcher proposal_matcher_;
  ops::BalancedPositiveNegativeSampler fg_bg_sampler_;
};
TORCH_MODULE(RoIHeads);

}  // namespace vigil::nn
