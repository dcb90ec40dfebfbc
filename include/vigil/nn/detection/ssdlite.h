#pragma once
/// torchvision 0.14's SSDlite (models/detection/ssdlite.py): the MobileNetV3 feature extractor with its extra
/// layers, the depthwise-separable SSDLiteHead, and the zoo's ssdlite320_mobilenet_v3_large, with
/// torchvision's state_dict names (backbone.features.0.N..., backbone.extra.N..., head.classification_head
/// .module_list.N..., head.regression_head.module_list.N...).

#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vigil/nn/backbones/mobilenet_v3.h"
#include "vigil/nn/detection/ssd.h"
#include "vigil/nn/frozen_batch_norm.h"
#include "vigil/nn/zoo.h"

namespace vigil::nn {

/// torchvision's SSDLiteFeatureExtractorMobileNet: MobileNetV3's features split at the C4 block's expansion
/// (features.0 ends with it, features.1 starts with its depthwise conv: section 6.3 of the MobileNetV3
/// paper), then four extra blocks (1x1 to half width, 3x3 depthwise stride 2, 1x1 out; ReLU6) halving the
/// resolution each. Returns six maps: strides 16, 32, 64, 128, 256, 512 of the input.
class SSDLiteFeatureExtractorMobileNetImpl : public SSDBackboneBase {
 public:
  /// Takes `backbone`'s features (its classifier, if any, is dropped); `norm` builds the extra blocks' norms.
  /// The extra blocks get torchvision's N(0, 0.03) init. Depths are max(min_depth, int(d * width_mult)) of
  /// 512, 256, 256, 128.
  SSDLiteFeatureExtractorMobileNetImpl(MobileNetV3 backbone, const NormLayerOptions& norm,
                                       double width_mult = 1.0, int64_t min_depth = 16);

  /// In training, throws InvalidArgument for a batch of one image whose last map is 1x1 (320x320 input):
  /// batch norm needs more than one value per channel.
  std::vector<torch::Tensor> forward(const torch::Tensor& images) override;
  std::vector<int64_t> out_channels() const override { return out_channels_; }
  /// torchvision's _mobilenet_extractor freezing on the original feature blocks: with S = stage_indices
  /// ([0, 2, 4, 7, 13, 16] for large), blocks before S[6 - trainable_layers] (all when 0) are frozen; the
  /// extra blocks always train.
  void freeze(int trainable_layers) override;
  int max_trainable_layers() const override { return static_cast<int>(stage_indices_.size()); }

  /// features.0 and features.1, plain modules naming the blocks as torchvision's two Sequentials do.
  std::shared_ptr<torch::nn::Module> features;
  torch::nn::ModuleList extra{nullptr};

 private:
  std::vector<torch::nn::AnyModule> head_modules_;  ///< what features.0 runs, in order
  std::vector<torch::nn::AnyModule> tail_modules_;  ///< what features.1 runs, in order
  std::vector<torch::nn::Sequential> extra_blocks_;
  /// Per original MobileNetV3 feature block, the modules now holding its parameters (the C4 block has two).
  std::vector<std::vector<std::shared_ptr<torch::nn::Module>>> blocks_;
  std::vector<int> stage_indices_;
  std::vector<int64_t> out_channels_;
};
TORCH_MODULE(SSDLiteFeatureExtractorMobileNet);

/// torchvision's SSDLiteHead: per feature map a prediction block (3x3 depthwise conv + norm + ReLU6, then a
/// 1x1 conv with bias) for the class logits (classification_head) and one for the box deltas
/// (regression_head); every conv N(0, 0.03) with zero bias.
class SSDLiteHeadImpl : public SSDHeadBase {
 public:
  /// Throws InvalidArgument when the channel and anchor lists differ in length or hold non-positive values,
  /// or num_classes < 2.
  SSDLiteHeadImpl(std::vector<int64_t> in_channels, std::vector<int64_t> num_anchors, int64_t num_classes,
                  const NormLayerOptions& norm);

  SSDHeadOutput forward(const std::vector<torch::Tensor>& features) override;
  int64_t num_classes() const override { return num_classes_; }
  void replace_classification_head(int64_t num_classes) override;

  SSDScoringHead classification_head{nullptr};
  SSDScoringHead regression_head{nullptr};

 private:
  std::vector<int64_t> in_channels_;
  std::vector<int64_t> num_anchors_;
  NormLayerOptions norm_;
  int64_t num_classes_;
};
TORCH_MODULE(SSDLiteHead);

/// torchvision's _normal_init: every Conv2d weight under `module` drawn from N(0, 0.03) (global generator),
/// biases zero.
void ssdlite_normal_init(torch::nn::Module& module);

/// Names of the SSDlite builders, as registered in the zoo.
std::vector<std::string> ssdlite_names();

/// The SSD keyword arguments ssdlite320_mobilenet_v3_large passes: size 320x320, mean and std 0.5 (inputs to
/// [-1, 1]), score_thresh 0.001, nms_thresh 0.55, detections_per_img 300, topk_candidates 300 (iou_thresh 0.5
/// and positive_fraction 0.25 are SSD's own). Throws InvalidArgument for an unknown name.
SSDOptions ssdlite_defaults(const std::string& name);

/// Builds `name` as torchvision 0.14's ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None):
///  - MobileNetV3-Large with the reduced tail (the architecture of torchvision's COCO weights and of a model
///    trained from scratch), BatchNorm2d(eps=0.001, momentum=0.03) everywhere (torchvision never freezes
///    SSDlite's norms), N(0, 0.03) conv init; reduced_tail = false builds the full tail of torchvision's
///    ImageNet-backbone variant instead (weights_backbone given), to load such weights;
///  - args.pretrained_backbone is torchvision's is_trained: it only decides whether
///    args.trainable_backbone_layers (0..6, < 0: 6) is honoured; without it every stage trains, as in
///    torchvision. It does not change the architecture, so COCO weights load either way;
///  - args.num_classes > 0 replaces options' num_classes (ModelArgs' 0 keeps it, 91 by default);
///  - `options` are SSD's keyword arguments, ssdlite_defaults(name) when not given.
/// Throws InvalidArgument for an unknown name, out-of-range trainable layers or bad options.
SSD make_ssdlite(const std::string& name, const ModelArgs& args = {},
                 std::optional<SSDOptions> options = std::nullopt, bool reduced_tail = true);

/// torchvision.models.detection.ssdlite320_mobilenet_v3_large (weights=None, weights_backbone=None).
SSD ssdlite320_mobilenet_v3_large(const ModelArgs& args = {});

}  // namespace vigil::nn
