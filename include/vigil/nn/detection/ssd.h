#pragma once
/// torchvision 0.14's SSD (models/detection/ssd.py) as an nn::Detector: a fixed-size transform, a feature
/// extractor, one scoring head for classes and one for box deltas over every feature map, DefaultBoxGenerator
/// anchors, SSDMatcher labels, hard-negative-mined losses and per-class top-k + batched NMS post-processing.
/// Children are named backbone, anchor_generator, head and transform, so state_dict keys equal torchvision's.

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "vigil/nn/detection/default_box_generator.h"
#include "vigil/nn/detection/detector.h"
#include "vigil/nn/detection/transform.h"
#include "vigil/nn/ops/boxes.h"

namespace vigil::nn {

/// torchvision's SSDMatcher: Matcher(threshold, threshold) without low-quality matches, after which every
/// ground truth also claims the default box it overlaps most (so no ground truth goes unmatched).
class SSDMatcher {
 public:
  explicit SSDMatcher(double threshold);
  /// int64 [N] ground-truth index per default box, or -1. `match_quality_matrix` is [M gt, N boxes], both
  /// non-empty (throws InvalidArgument otherwise).
  torch::Tensor operator()(const torch::Tensor& match_quality_matrix) const;
  double threshold() const { return matcher_.high_threshold(); }

 private:
  ops::Matcher matcher_;
};

/// What an SSD head returns, concatenated over the feature maps in order.
struct SSDHeadOutput {
  torch::Tensor bbox_regression;  ///< [N, A_total, 4]
  torch::Tensor cls_logits;       ///< [N, A_total, num_classes]
};

/// torchvision's SSDScoringHead: one block per feature map, each output [N, A * K, H, W] reshaped to
/// [N, H * W * A, K] and concatenated (K = num_columns). Blocks are registered as module_list.<i>.
class SSDScoringHeadImpl : public torch::nn::Module {
 public:
  /// Throws InvalidArgument on no blocks or num_columns < 1.
  SSDScoringHeadImpl(std::vector<torch::nn::Sequential> blocks, int64_t num_columns);
  /// One map per block, in order. Throws InvalidArgument when the counts differ.
  torch::Tensor forward(const std::vector<torch::Tensor>& features);
  int64_t num_columns() const { return num_columns_; }

  torch::nn::ModuleList module_list{nullptr};

 private:
  std::vector<torch::nn::Sequential> blocks_;
  int64_t num_columns_;
};
TORCH_MODULE(SSDScoringHead);

/// The feature extractor an SSD runs (torchvision's `backbone` argument): normalised images [N, 3, H, W] ->
/// feature maps, highest resolution first.
class SSDBackboneBase : public torch::nn::Module {
 public:
  virtual std::vector<torch::Tensor> forward(const torch::Tensor& images) = 0;
  /// Channels of each returned map (torchvision's retrieve_out_channels, known here without a dry run).
  virtual std::vector<int64_t> out_channels() const = 0;
  /// torchvision's trainable_backbone_layers: only the last `trainable_layers` stages of the pretrained body
  /// keep requires_grad (extra layers always train); resets to all-trainable first. Throws InvalidArgument
  /// outside [0, max_trainable_layers()].
  virtual void freeze(int trainable_layers) = 0;
  virtual int max_trainable_layers() const = 0;
};

/// The head an SSD runs on the feature maps (torchvision's `head` argument): box deltas and class logits.
class SSDHeadBase : public torch::nn::Module {
 public:
  virtual SSDHeadOutput forward(const std::vector<torch::Tensor>& features) = 0;
  /// Classes including the background.
  virtual int64_t num_classes() const = 0;
  /// A fresh classification head with `num_classes` outputs (background included), initialised as the head
  /// initialises itself; the regression head is kept.
  virtual void replace_classification_head(int64_t num_classes) = 0;
};

/// torchvision SSD's keyword arguments (names and defaults of SSD itself; ssdlite320_mobilenet_v3_large
/// passes other values, see ssdlite_defaults()).
struct SSDOptions {
  using Size2 = std::array<int64_t, 2>;
  /// Classes including the background.
  TORCH_ARG(int64_t, num_classes) = 91;
  /// {width, height} every image is resized to (torchvision's `size`).
  TORCH_ARG(Size2, size) = Size2{300, 300};
  TORCH_ARG(std::vector<double>, image_mean) = std::vector<double>{0.485, 0.456, 0.406};
  TORCH_ARG(std::vector<double>, image_std) = std::vector<double>{0.229, 0.224, 0.225};
  /// Post-processing: per-class score threshold (strict >), per-class candidates kept before NMS, the NMS IoU
  /// and the detections kept per image.
  TORCH_ARG(double, score_thresh) = 0.01;
  TORCH_ARG(double, nms_thresh) = 0.45;
  TORCH_ARG(int64_t, detections_per_img) = 200;
  TORCH_ARG(int64_t, topk_candidates) = 400;
  /// Training: default boxes with IoU >= iou_thresh to a ground truth are positives.
  TORCH_ARG(double, iou_thresh) = 0.5;
  /// Training: hard-negative mining keeps (1 - f) / f negatives per positive (3 at the default 0.25).
  TORCH_ARG(double, positive_fraction) = 0.25;

 public:
  /// Throws InvalidArgument when a value is out of range.
  void validate() const;
  /// GeneralizedRCNNTransform(min(size), max(size), mean, std, size_divisible=1, fixed_size=size), as SSD
  /// builds it.
  GeneralizedRCNNTransformOptions transform_options() const;
  /// (1 - positive_fraction) / positive_fraction.
  double neg_to_pos_ratio() const;
};

/// SSD: transform (fixed size) -> backbone -> head -> anchors -> losses or detections mapped back to each
/// input's size.
class SSDImpl : public Detector {
 public:
  /// Throws InvalidArgument on bad options, an empty backbone or head, or when the backbone's map count
  /// differs from the anchor generator's.
  SSDImpl(std::shared_ptr<SSDBackboneBase> backbone, DefaultBoxGenerator anchor_generator,
          std::shared_ptr<SSDHeadBase> head, const SSDOptions& options);

  /// See Detector::forward. Losses are torchvision's "bbox_regression" and "classification". Throws
  /// InvalidArgument on an empty image list, an image that is not [3, H, W] floating point, training without
  /// targets, a target count that differs from the image count, malformed targets, or a box with x2 <= x1 or
  /// y2 <= y1 after resizing.
  DetectorOutput forward(const std::vector<torch::Tensor>& images,
                         const std::vector<DetectionTarget>* targets = nullptr) override;
  /// Replaces the classification head (SSDHeadBase::replace_classification_head).
  void replace_predictor(int64_t num_classes) override;
  int64_t num_classes() const override;
  /// score_thresh, nms_thresh and detections_per_img; topk_candidates stays.
  void set_postprocess(const PostprocessOptions& options) override;
  PostprocessOptions postprocess() const override;
  void freeze_backbone(int trainable_layers) override;

  /// Per image, the ground-truth index of every default box or -1 (all -1 for an image without boxes).
  std::vector<torch::Tensor> match(const std::vector<torch::Tensor>& anchors,
                                   const std::vector<DetectionTarget>& targets) const;
  /// torchvision's compute_loss: smooth-L1 (beta 1) over positives' deltas and cross entropy over positives
  /// plus the hardest neg_to_pos_ratio negatives per positive, both summed and divided by the positives.
  LossMap compute_loss(const std::vector<DetectionTarget>& targets, const SSDHeadOutput& head_outputs,
                       const std::vector<torch::Tensor>& anchors,
                       const std::vector<torch::Tensor>& matched_idxs) const;
  /// torchvision's postprocess_detections: softmax, decode, clip, per class the scores > score_thresh and
  /// their top topk_candidates, batched NMS, the first detections_per_img. Boxes in resized-image pixels.
  std::vector<Detections> postprocess_detections(
      const SSDHeadOutput& head_outputs, const std::vector<torch::Tensor>& anchors,
      const std::vector<std::array<int64_t, 2>>& image_sizes) const;

  /// The options the model was built with (num_classes and the post-processing fields follow later
  /// replace_predictor / set_postprocess calls).
  const SSDOptions& options() const { return options_; }

  std::shared_ptr<SSDBackboneBase> backbone;
  DefaultBoxGenerator anchor_generator{nullptr};
  std::shared_ptr<SSDHeadBase> head;
  GeneralizedRCNNTransform transform{nullptr};

 private:
  SSDOptions options_;
  ops::BoxCoder box_coder_{{10.0, 10.0, 5.0, 5.0}};
  SSDMatcher proposal_matcher_;
};
TORCH_MODULE(SSD);

}  // namespace vigil::nn
