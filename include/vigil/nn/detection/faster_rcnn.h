#pragma once
/// Faster R-CNN (torchvision 0.14's FasterRCNN on GeneralizedRCNN) and the zoo's three builders,
/// fasterrcnn_resnet50_fpn, fasterrcnn_mobilenet_v3_large_fpn and fasterrcnn_mobilenet_v3_large_320_fpn, with
/// torchvision's state_dict names (backbone.body..., backbone.fpn..., rpn.head..., roi_heads.box_head...).

#include <torch/arg.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vigil/nn/detection/detector.h"
#include "vigil/nn/detection/fpn.h"
#include "vigil/nn/detection/roi_heads.h"
#include "vigil/nn/detection/rpn.h"
#include "vigil/nn/detection/transform.h"
#include "vigil/nn/zoo.h"

namespace vigil::nn {

/// torchvision's FasterRCNN keyword arguments (names and defaults alike), with the default anchor generator
/// and RoI pooler spelled out as values.
struct FasterRCNNOptions {
  using SizeLists = std::vector<std::vector<double>>;
  /// Classes including the background.
  TORCH_ARG(int64_t, num_classes) = 91;

  // Transform.
  /// Short-side targets (training picks one at random per image, evaluation uses the last).
  TORCH_ARG(std::vector<int64_t>, min_size) = std::vector<int64_t>{800};
  TORCH_ARG(int64_t, max_size) = 1333;
  TORCH_ARG(std::vector<double>, image_mean) = std::vector<double>{0.485, 0.456, 0.406};
  TORCH_ARG(std::vector<double>, image_std) = std::vector<double>{0.229, 0.224, 0.225};
  /// GeneralizedRCNNTransform keyword arguments FasterRCNN passes through.
  TORCH_ARG(int64_t, size_divisible) = 32;
  TORCH_ARG(std::optional<GeneralizedRCNNTransformOptions::Size2>, fixed_size) = std::nullopt;

  // RPN: anchors (one list per feature map, torchvision's _default_anchorgen) and the proposal knobs.
  TORCH_ARG(SizeLists, rpn_anchor_sizes) = SizeLists{{32}, {64}, {128}, {256}, {512}};
  TORCH_ARG(SizeLists, rpn_aspect_ratios) = SizeLists(5, std::vector<double>{0.5, 1.0, 2.0});
  TORCH_ARG(int64_t, rpn_pre_nms_top_n_train) = 2000;
  TORCH_ARG(int64_t, rpn_pre_nms_top_n_test) = 1000;
  TORCH_ARG(int64_t, rpn_post_nms_top_n_train) = 2000;
  TORCH_ARG(int64_t, rpn_post_nms_top_n_test) = 1000;
  TORCH_ARG(double, rpn_nms_thresh) = 0.7;
  TORCH_ARG(double, rpn_fg_iou_thresh) = 0.7;
  TORCH_ARG(double, rpn_bg_iou_thresh) = 0.3;
  TORCH_ARG(int64_t, rpn_batch_size_per_image) = 256;
  TORCH_ARG(double, rpn_positive_fraction) = 0.5;
  TORCH_ARG(double, rpn_score_thresh) = 0.0;

  // Box branch: MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2), TwoMLPHead(C * 7 * 7, 1024), then RoIHeads.
  TORCH_ARG(std::vector<std::string>, box_featmap_names) = std::vector<std::string>{"0", "1", "2", "3"};
  TORCH_ARG(int64_t, box_roi_output_size) = 7;
  TORCH_ARG(int64_t, box_roi_sampling_ratio) = 2;
  TORCH_ARG(int64_t, representation_size) = 1024;
  TORCH_ARG(double, box_score_thresh) = 0.05;
  TORCH_ARG(double, box_nms_thresh) = 0.5;
  TORCH_ARG(int64_t, box_detections_per_img) = 100;
  TORCH_ARG(double, box_fg_iou_thresh) = 0.5;
  TORCH_ARG(double, box_bg_iou_thresh) = 0.5;
  TORCH_ARG(int64_t, box_batch_size_per_image) = 512;
  TORCH_ARG(double, box_positive_fraction) = 0.25;
  TORCH_ARG(RoIHeadsOptions::Weights4, bbox_reg_weights) = RoIHeadsOptions::Weights4{10.0, 10.0, 5.0, 5.0};

 public:
  /// Throws InvalidArgument when a value is out of range or the anchor lists do not pair up.
  void validate() const;
  /// The pieces' own options, as FasterRCNN's constructor passes them on.
  GeneralizedRCNNTransformOptions transform_options() const;
  RegionProposalNetworkOptions rpn_options() const;
  RoIHeadsOptions roi_heads_options() const;
};

/// Faster R-CNN: transform -> backbone (FPN) -> rpn -> roi_heads -> boxes mapped back to each input's size.
/// Children are named transform, backbone, rpn and roi_heads, so state_dict keys equal torchvision's.
class FasterRCNNImpl : public Detector {
 public:
  /// Builds the RPN and box branch around `backbone` (torchvision's FasterRCNN(backbone, ...)). Throws
  /// InvalidArgument on bad options or when the anchor lists do not match the backbone's feature maps.
  FasterRCNNImpl(BackboneWithFPN backbone, const FasterRCNNOptions& options);

  /// See Detector::forward. Throws InvalidArgument on an empty image list, an image that is not [3, H, W]
  /// floating point, training without targets, a target count that differs from the image count, malformed
  /// targets, or a box with x2 <= x1 or y2 <= y1 after resizing (torchvision's degenerate-box check).
  DetectorOutput forward(const std::vector<torch::Tensor>& images,
                         const std::vector<DetectionTarget>* targets = nullptr) override;
  void replace_predictor(int64_t num_classes) override;
  int64_t num_classes() const override;
  void set_postprocess(const PostprocessOptions& options) override;
  PostprocessOptions postprocess() const override;
  /// BackboneWithFPN::freeze: 0..5 for ResNet, 0..6 for MobileNetV3.
  void freeze_backbone(int trainable_layers) override;

  /// The options the model was built with (num_classes and the post-processing fields follow later
  /// replace_predictor / set_postprocess calls).
  const FasterRCNNOptions& options() const { return options_; }

  GeneralizedRCNNTransform transform{nullptr};
  BackboneWithFPN backbone{nullptr};
  RegionProposalNetwork rpn{nullptr};
  RoIHeads roi_heads{nullptr};

 private:
  FasterRCNNOptions options_;
};
TORCH_MODULE(FasterRCNN);

/// Names of the Faster R-CNN builders below, as registered in the zoo.
std::vector<std::string> faster_rcnn_names();
/// True when `name` is one of faster_rcnn_names() (the models DetectorArgs applies to).
bool is_faster_rcnn(const std::string& name);

/// The FasterRCNN keyword arguments builder `name` passes by default (torchvision's `defaults` dicts):
/// min/max size, anchors, RPN top-n and score threshold. Throws InvalidArgument for an unknown name.
FasterRCNNOptions faster_rcnn_defaults(const std::string& name);

/// Replaces `options`' values by the ones `args` sets (DetectorArgs, nn/zoo.h). Throws InvalidArgument on an
/// out-of-range value or an anchor list that does not fit the options' feature maps.
void apply_detector_args(FasterRCNNOptions& options, const DetectorArgs& args);

/// Builds `name` as torchvision 0.14's builder of that name does with weights=None:
///  - args.pretrained_backbone is torchvision's is_trained: FrozenBatchNorm2d in the backbone and
///    args.trainable_backbone_layers (< 0: 3) stages trainable; otherwise BatchNorm2d and every stage
///    trainable (torchvision ignores trainable_backbone_layers then);
///  - args.num_classes > 0 replaces options' num_classes (ModelArgs' 0 keeps it, 91 by default);
///  - `options` are FasterRCNN's keyword arguments, faster_rcnn_defaults(name) when not given;
///  - args.detector's values replace theirs (apply_detector_args).
/// Throws InvalidArgument for an unknown name, out-of-range trainable layers or bad options.
FasterRCNN make_faster_rcnn(const std::string& name, const ModelArgs& args = {},
                            std::optional<FasterRCNNOptions> options = std::nullopt);

/// torchvision.models.detection.fasterrcnn_resnet50_fpn: ResNet-50 + FPN, 800 / 1333.
FasterRCNN fasterrcnn_resnet50_fpn(const ModelArgs& args = {});
/// fasterrcnn_mobilenet_v3_large_fpn: MobileNetV3-Large + FPN, 800 / 1333, rpn_score_thresh 0.05.
FasterRCNN fasterrcnn_mobilenet_v3_large_fpn(const ModelArgs& args = {});
/// fasterrcnn_mobilenet_v3_large_320_fpn: as above at 320 / 640 with 150 RPN proposals at test time.
FasterRCNN fasterrcnn_mobilenet_v3_large_320_fpn(const ModelArgs& args = {});

}  // namespace vigil::nn
