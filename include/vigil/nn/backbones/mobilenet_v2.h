#pragma once
/// MobileNetV2 (torchvision.models.mobilenetv2) with torchvision 0.14's state_dict names (features.0 ...
/// features.18, classifier.1), plus the pieces both MobileNets share: Conv2dNormActivation, _make_divisible
/// and the stage bookkeeping detection uses (torchvision's _mobilenet_extractor).

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "vigil/nn/classification/classifier.h"
#include "vigil/nn/frozen_batch_norm.h"

namespace vigil::nn {

/// torchvision's _make_divisible: rounds `v` to the nearest multiple of `divisor`, never below `min_value`
/// (default divisor) nor below 90% of `v`.
int64_t make_divisible(double v, int64_t divisor, std::optional<int64_t> min_value = std::nullopt);

enum class Activation { kNone, kReLU, kReLU6, kHardswish, kHardsigmoid };

/// Applies `act` in place (torchvision builds its activations with inplace=True).
torch::Tensor apply_activation_(torch::Tensor x, Activation act);

/// torchvision.ops.misc.Conv2dNormActivation's arguments.
struct ConvNormActivationOptions {
  ConvNormActivationOptions(int64_t in_channels, int64_t out_channels, int64_t kernel_size = 3)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(int64_t, kernel_size);
  TORCH_ARG(int64_t, stride) = 1;
  TORCH_ARG(int64_t, groups) = 1;
  TORCH_ARG(int64_t, dilation) = 1;
  /// nullopt: no norm layer (the conv then gets a bias, torchvision's `bias=None` rule).
  TORCH_ARG(std::optional<NormLayerOptions>, norm) = NormLayerOptions{};
  TORCH_ARG(Activation, activation) = Activation::kReLU;
};

/// Conv2d ("0") -> norm ("1") -> activation, padding (k - 1) / 2 * dilation: torchvision's names.
class ConvNormActivationImpl : public torch::nn::Module {
 public:
  explicit ConvNormActivationImpl(const ConvNormActivationOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  int64_t out_channels() const { return options_.out_channels(); }
  /// Folds the norm into the conv for inference (see fold_batch_norms in nn/fuse.h).
  int fold_norm() { return norm_.fold_into(*conv_); }
  /// The convolution, and whether forward() is that convolution alone (no norm, or one folded, and no
  /// activation) or followed only by a ReLU: what int8 quantisation needs to replace it (nn/quantize.h).
  const torch::nn::Conv2dImpl& conv() const { return *conv_; }
  bool is_bare_conv(Activation activation) const {
    return norm_.is_identity() && options_.activation() == activation;
  }

 private:
  ConvNormActivationOptions options_;
  torch::nn::Conv2d conv_{nullptr};
  Norm2d norm_;
};
TORCH_MODULE(ConvNormActivation);

/// torchvision's MobileNet weight init: kaiming_normal_(fan_out) convs with zero bias, ones/zeros norms,
/// N(0, 0.01) Linear weights with zero bias.
void init_mobilenet_weights(torch::nn::Module& root);

/// A MobileNet feature list (`features.N`) and which entries are strided (`_is_cn`).
struct FeatureStages {
  std::vector<bool> is_cn;            ///< per feature block
  std::vector<int64_t> out_channels;  ///< per feature block

  /// torchvision's stage_indices: [0] + [i for i, b in enumerate(features) if b._is_cn] + [len - 1].
  std::vector<int> stage_indices() const;
};

/// torchvision's _mobilenet_extractor freezing: with S = stage_indices, every block before
/// S[len(S) - trainable_layers] (all of them when 0) gets requires_grad = false.
void freeze_feature_stages(torch::nn::Sequential& features, const FeatureStages& stages,
                           int trainable_layers);

/// Runs `features` up to the largest index in `return_indices` and returns the output of each listed block,
/// in the order given (torchvision's IntermediateLayerGetter over `features`).
std::vector<torch::Tensor> forward_feature_blocks(torch::nn::Sequential& features, torch::Tensor x,
                                                  const std::vector<int>& return_indices);

/// MobileNetV2's inverted residual: `conv` = [1x1 expand CNA] + 3x3 depthwise CNA + 1x1 conv + norm.
struct MobileNetV2BlockOptions {
  MobileNetV2BlockOptions(int64_t in, int64_t out, int64_t stride, int64_t expand_ratio)
      : in_(in), out_(out), stride_(stride), expand_ratio_(expand_ratio) {}
  TORCH_ARG(int64_t, in);
  TORCH_ARG(int64_t, out);
  TORCH_ARG(int64_t, stride);
  TORCH_ARG(int64_t, expand_ratio);
  TORCH_ARG(NormLayerOptions, norm) = {};
};

class MobileNetV2BlockImpl : public torch::nn::Module {
 public:
  explicit MobileNetV2BlockImpl(const MobileNetV2BlockOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  /// Folds the projection's norm (the last entry of `conv`) into the 1x1 conv before it, for inference;
  /// returns the number of norms folded (the expansion units fold themselves).
  int fold_norm();

 private:
  bool use_res_connect_ = false;
  bool tail_folded_ = false;
  torch::nn::Sequential conv_{nullptr};
};
TORCH_MODULE(MobileNetV2Block);

/// torchvision.models.MobileNetV2's arguments (the default inverted-residual setting).
struct MobileNetV2Options {
  TORCH_ARG(int64_t, num_classes) = 1000;
  TORCH_ARG(double, width_mult) = 1.0;
  TORCH_ARG(int64_t, round_nearest) = 8;
  TORCH_ARG(double, dropout) = 0.2;
  TORCH_ARG(bool, include_top) = true;  ///< false: no classifier (detection backbones)
  TORCH_ARG(NormLayerOptions, norm) = {};

 public:
  void validate() const;
};

/// torchvision's MobileNetV2: features.0 (stem) .. features.17 (blocks), features.18 (1x1 to last_channel),
/// classifier.0 Dropout + classifier.1 Linear.
class MobileNetV2Impl : public Classifier {
 public:
  explicit MobileNetV2Impl(const MobileNetV2Options& options = {});
  torch::Tensor forward(const torch::Tensor& images) override;
  std::pair<torch::Tensor, torch::Tensor> forward_with_embedding(const torch::Tensor& images) override;

  torch::nn::Sequential& features() { return features_; }
  const FeatureStages& stages() const { return stages_; }
  /// Channels of the last feature block (1280 at width 1).
  int64_t last_channel() const { return last_channel_; }

  void replace_head(int64_t num_classes, uint64_t seed = 0) override;
  void freeze_backbone(int trainable_stages = 0) override;
  int num_backbone_stages() const override;
  int64_t num_classes() const override;

 private:
  MobileNetV2Options options_;
  int64_t last_channel_ = 1280;
  torch::nn::Sequential features_{nullptr};
  FeatureStages stages_;
  std::shared_ptr<torch::nn::Module> classifier_;
  torch::nn::Linear fc_{nullptr};
};
TORCH_MODULE(MobileNetV2);

}  // namespace vigil::nn
