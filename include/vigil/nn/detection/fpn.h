#pragma once
/// torchvision 0.14's FeaturePyramidNetwork + LastLevelMaxPool (ops/feature_pyramid_network.py) and
/// BackboneWithFPN (models/detection/backbone_utils.py) over the ResNet and MobileNetV3 bodies, with
/// torchvision's state_dict names: body.conv1.weight, body.layer1.0.conv1.weight, ... (ResNet),
/// body.0.0.weight, ... (MobileNetV3), fpn.inner_blocks.0.0.weight, fpn.layer_blocks.0.0.bias, ...

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>
#include <torch/ordered_dict.h>
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "vigil/nn/backbones/mobilenet_v2.h"
#include "vigil/nn/backbones/mobilenet_v3.h"
#include "vigil/nn/backbones/resnet.h"
#include "vigil/nn/frozen_batch_norm.h"

namespace vigil::nn {

/// Feature maps by name in pyramid order ("0", "1", ..., "pool"): what ops::MultiScaleRoIAlign takes.
using FeatureMap = torch::OrderedDict<std::string, torch::Tensor>;

/// The extra level an FPN appends after its outputs (torchvision's extra_blocks).
enum class ExtraFPNBlock {
  kNone,
  kLastLevelMaxPool,  ///< "pool" = max_pool2d(kernel 1, stride 2) of the last output (LastLevelMaxPool)
};

/// Appends torchvision's LastLevelMaxPool level, named "pool", to `results`.
void last_level_max_pool(FeatureMap& results);

/// FeaturePyramidNetwork's constructor arguments (torchvision's, without a norm layer).
struct FeaturePyramidNetworkOptions {
  FeaturePyramidNetworkOptions(std::vector<int64_t> in_channels_list, int64_t out_channels)
      : in_channels_list_(std::move(in_channels_list)), out_channels_(out_channels) {}
  /// Channels of each input level, highest resolution first.
  TORCH_ARG(std::vector<int64_t>, in_channels_list);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(ExtraFPNBlock, extra_block) = ExtraFPNBlock::kLastLevelMaxPool;

 public:
  /// Throws InvalidArgument on no levels or a non-positive channel count.
  void validate() const;
};

/// Top-down FPN: 1x1 lateral convs (inner_blocks.N.0), nearest upsampling of the coarser level to the
/// lateral's size, 3x3 output convs (layer_blocks.N.0); kaiming_uniform(a=1) weights and zero biases.
class FeaturePyramidNetworkImpl : public torch::nn::Module {
 public:
  explicit FeaturePyramidNetworkImpl(FeaturePyramidNetworkOptions options);
  /// `x`: one map per in_channels_list entry, highest resolution first; the output keeps the names (plus
  /// "pool" with kLastLevelMaxPool), each with out_channels channels. Throws InvalidArgument when the level
  /// count or channels do not match.
  FeatureMap forward(const FeatureMap& x);

  /// int8 (nn/quantize.h): record the ranges of the laterals, the top-down sums and the outputs in forward
  /// passes, then build int8 convolutions; after that forward() takes quint8 maps (a quantised ResNet body's
  /// stages) and returns quint8 levels. Returns the number of convolutions quantised.
  void begin_int8_calibration();
  int finish_int8_calibration();
  bool is_int8() const;

  FeaturePyramidNetworkOptions options;
  torch::nn::ModuleList inner_blocks{nullptr};
  torch::nn::ModuleList layer_blocks{nullptr};

 private:
  struct Int8;
  FeatureMap forward_int8(const std::vector<std::string>& names, const std::vector<torch::Tensor>& maps);
  std::shared_ptr<Int8> int8_;
};
TORCH_MODULE(FeaturePyramidNetwork);

/// A backbone body plus an FPN (torchvision's BackboneWithFPN): children `body` and `fpn`, so a detector
/// registering it as `backbone` gets torchvision's keys. The body is either a ResNet without its head (keys
/// conv1, bn1, layer1..layer4) or MobileNetV3's `features` Sequential (keys 0..16).
class BackboneWithFPNImpl : public torch::nn::Module {
 public:
  /// ResNet body; `returned_layers` are 1-based ResNet stages (layer1..layer4), named "0", "1", ... in order.
  /// Stages after the last returned one stay in the body (torchvision drops them; with layer4 returned, as
  /// the factories do, the keys are the same).
  BackboneWithFPNImpl(ResNet body, std::vector<int> returned_layers, int64_t out_channels = 256);
  /// MobileNetV3 body (only its `features` are kept); `returned_layers` index stages().stage_indices().
  /// Unlike torchvision's IntermediateLayerGetter, blocks after the last returned one are not dropped (with
  /// the default returned layers the last block is returned, so the keys are the same).
  BackboneWithFPNImpl(MobileNetV3 body, std::vector<int> returned_layers, int64_t out_channels = 256);

  /// [N, 3, H, W] normalised images -> FPN maps "0", "1", ..., "pool".
  FeatureMap forward(const torch::Tensor& images);
  /// Channels of every output map (256 for torchvision's detectors).
  int64_t out_channels() const { return out_channels_; }
  /// Names of the FPN levels fed from the body ("0".."3" for ResNet, "0","1" for MobileNetV3), without
  /// "pool": the featmap_names of the box RoI pooler.
  std::vector<std::string> level_names() const;
  /// Upper bound of freeze()'s argument: 5 for ResNet, the number of stages (6) for MobileNetV3.
  int max_trainable_layers() const;
  /// torchvision's trainable_backbone_layers rule: only the last `trainable_layers` body stages keep
  /// requires_grad (see ResNetImpl::freeze_for_fpn and freeze_feature_stages); the FPN always trains. Resets
  /// the body to trainable first, so calls do not accumulate. Throws InvalidArgument outside [0, max].
  void freeze(int trainable_layers);

  bool is_resnet() const { return !resnet_.is_empty(); }
  ResNet& resnet_body() { return resnet_; }
  torch::nn::Sequential& mobilenet_body() { return features_; }
  FeaturePyramidNetwork& fpn() { return fpn_; }

 private:
  ResNet resnet_{nullptr};
  torch::nn::Sequential features_{nullptr};
  FeatureStages stages_;
  std::vector<int> returned_layers_;
  std::vector<int> feature_indices_;  ///< MobileNet: features.N blocks whose outputs are returned
  int64_t out_channels_ = 256;
  FeaturePyramidNetwork fpn_{nullptr};
};
TORCH_MODULE(BackboneWithFPN);

/// torchvision's resnet_fpn_backbone / _resnet_fpn_extractor: resnet{depth} (18 or 50) with `norm`, layers
/// 1..4 returned as "0".."3" + "pool", out_channels 256, frozen to `trainable_layers` (0..5).
BackboneWithFPN resnet_fpn_backbone(int depth, const NormLayerOptions& norm, int trainable_layers);

/// What fasterrcnn_mobilenet_v3_large_fpn builds: mobilenet_v3_large (not dilated, full tail) with `norm`,
/// _mobilenet_extractor(fpn=True): stages [num_stages - 2, num_stages - 1] as "0", "1" + "pool",
/// out_channels 256, frozen to `trainable_layers` (0..6).
BackboneWithFPN mobilenet_v3_fpn_backbone(const NormLayerOptions& norm, int trainable_layers);

}  // namespace vigil::nn
