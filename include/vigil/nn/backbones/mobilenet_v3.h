#pragma once
/// MobileNetV3 large and small (torchvision.models.mobilenetv3) with torchvision 0.14's state_dict names:
/// features.N.block.M..., SqueezeExcitation fc1/fc2, classifier.0 and classifier.3.

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "vigil/nn/backbones/mobilenet_v2.h"
#include "vigil/nn/classification/classifier.h"
#include "vigil/nn/frozen_batch_norm.h"

namespace vigil::nn {

/// torchvision.ops.misc.SqueezeExcitation with MobileNetV3's hardsigmoid gate: x *
/// hsig(fc2(relu(fc1(avg(x))))).
class SqueezeExcitationImpl : public torch::nn::Module {
 public:
  SqueezeExcitationImpl(int64_t input_channels, int64_t squeeze_channels);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(SqueezeExcitation);

/// torchvision's InvertedResidualConfig, channels already scaled by width_mult.
struct MobileNetV3BlockConfig {
  int64_t input_channels;
  int64_t kernel;
  int64_t expanded_channels;
  int64_t out_channels;
  bool use_se;
  bool use_hs;  ///< Hardswish, else ReLU
  int64_t stride;
  int64_t dilation;
};

/// MobileNetV3's inverted residual: `block` = [1x1 expand CNA] + depthwise CNA + [SE] + 1x1 project CN.
class MobileNetV3BlockImpl : public torch::nn::Module {
 public:
  MobileNetV3BlockImpl(const MobileNetV3BlockConfig& config, const NormLayerOptions& norm);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  bool use_res_connect_ = false;
  torch::nn::Sequential block_{nullptr};
};
TORCH_MODULE(MobileNetV3Block);

/// mobilenet_v3_large / mobilenet_v3_small's arguments (torchvision's _mobilenet_v3_conf + MobileNetV3).
struct MobileNetV3Options {
  /// "large" or "small" (also accepts "mobilenet_v3_large" / "mobilenet_v3_small").
  /* implicit */ MobileNetV3Options(std::string arch = "large") : arch_(std::move(arch)) {}
  TORCH_ARG(std::string, arch);
  TORCH_ARG(int64_t, num_classes) = 1000;
  TORCH_ARG(double, width_mult) = 1.0;
  TORCH_ARG(bool, reduced_tail) = false;  ///< halves the channels of the last stage (detection)
  TORCH_ARG(bool, dilated) = false;       ///< dilation 2 in the last stage instead of stride 2
  TORCH_ARG(double, dropout) = 0.2;
  TORCH_ARG(bool, include_top) = true;  ///< false: no classifier (detection backbones)
  /// torchvision's default for MobileNetV3: BatchNorm2d(eps=0.001, momentum=0.01).
  TORCH_ARG(NormLayerOptions, norm) = NormLayerOptions::batch_norm(0.001, 0.01);

 public:
  void validate() const;
  bool is_large() const;
};

/// The per-block configuration torchvision's _mobilenet_v3_conf builds, and the classifier's hidden width.
std::vector<MobileNetV3BlockConfig> mobilenet_v3_config(const MobileNetV3Options& options,
                                                        int64_t* last_channel);

/// torchvision's MobileNetV3: features.0 (stem, Hardswish), features.1..K (blocks), features.K+1 (1x1 to 6x
/// the last block's channels), classifier.0 Linear + Hardswish + Dropout + classifier.3 Linear.
class MobileNetV3Impl : public Classifier {
 public:
  explicit MobileNetV3Impl(const MobileNetV3Options& options = {});
  torch::Tensor forward(const torch::Tensor& images) override;
  std::pair<torch::Tensor, torch::Tensor> forward_with_embedding(const torch::Tensor& images) override;

  torch::nn::Sequential& features() { return features_; }
  /// `_is_cn` flags and channels per features.N; stages().stage_indices() is _mobilenet_extractor's list.
  const FeatureStages& stages() const { return stages_; }

  void replace_head(int64_t num_classes, uint64_t seed = 0) override;
  void freeze_backbone(int trainable_stages = 0) override;
  int num_backbone_stages() const override;
  int64_t num_classes() const override;

 private:
  MobileNetV3Options options_;
  int64_t last_channel_ = 0;
  torch::nn::Sequential features_{nullptr};
  FeatureStages stages_;
  std::shared_ptr<torch::nn::Module> classifier_;
  torch::nn::Linear fc_hidden_{nullptr}, fc_{nullptr};
};
TORCH_MODULE(MobileNetV3);

}  // namespace vigil::nn
