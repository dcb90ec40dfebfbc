#pragma once
/// ResNet (torchvision.models.resnet) with torchvision 0.14's state_dict names: conv1, bn1, layer1.0.conv1,
/// ..., layer4.2.downsample.0/1, fc.

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "vigil/nn/classification/classifier.h"
#include "vigil/nn/frozen_batch_norm.h"

namespace vigil::nn {

/// BasicBlock (resnet18/34) or Bottleneck (resnet50+, stride on the 3x3 conv: "ResNet v1.5").
struct ResNetBlockOptions {
  ResNetBlockOptions(int64_t inplanes, int64_t planes) : inplanes_(inplanes), planes_(planes) {}
  TORCH_ARG(int64_t, inplanes);
  TORCH_ARG(int64_t, planes);
  TORCH_ARG(bool, bottleneck) = false;
  TORCH_ARG(int64_t, stride) = 1;
  TORCH_ARG(int64_t, dilation) = 1;
  TORCH_ARG(bool, downsample) = false;  ///< adds downsample.0 (1x1 conv) + downsample.1 (norm)
  TORCH_ARG(NormLayerOptions, norm) = {};
};

/// One residual block: conv1/bn1, conv2/bn2, [conv3/bn3], [downsample.0/1].
class ResNetBlockImpl : public torch::nn::Module {
 public:
  explicit ResNetBlockImpl(const ResNetBlockOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  /// Output channels: planes * (bottleneck ? 4 : 1).
  int64_t out_channels() const;

  /// Zeroes the weight of the branch's last BatchNorm (bn2 or bn3): zero_init_residual.
  void zero_init_last_norm();
  /// Folds every norm into its conv, for inference (see fold_batch_norms in nn/fuse.h); returns how many.
  int fold_norms();

  /// int8 (nn/quantize.h): from now on forward() records the ranges of the activations the int8 block
  /// stores; finish_int8_calibration() then builds the int8 convolutions (returns how many), after which
  /// forward_int8() runs the block on quint8 input. Norms must be folded first.
  void begin_int8_calibration();
  int finish_int8_calibration();
  torch::Tensor forward_int8(const torch::Tensor& qx);

 private:
  struct Int8;
  ResNetBlockOptions options_;
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr}, down_conv_{nullptr};
  Norm2d bn1_, bn2_, bn3_, down_norm_;
  std::string last_norm_name_;
  std::shared_ptr<Int8> int8_;  ///< observers during calibration, then the int8 convolutions
};
TORCH_MODULE(ResNetBlock);

/// torchvision.models.ResNet's constructor arguments.
struct ResNetOptions {
  using StageBlocks = std::array<int, 4>;
  using StageFlags = std::array<bool, 3>;

  /// Blocks per stage: resnet18 {2,2,2,2}, resnet50 {3,4,6,3}.
  ResNetOptions(StageBlocks layers, bool bottleneck) : layers_(layers), bottleneck_(bottleneck) {}
  TORCH_ARG(StageBlocks, layers);
  TORCH_ARG(bool, bottleneck);
  TORCH_ARG(int64_t, num_classes) = 1000;
  /// false drops `fc` (detection backbones: torchvision's IntermediateLayerGetter never keeps it).
  TORCH_ARG(bool, include_top) = true;
  TORCH_ARG(double, dropout) = 0.0;  ///< before fc; torchvision has none (0)
  TORCH_ARG(bool, zero_init_residual) = false;
  /// For layer2..layer4: replace the stride-2 with dilation (DeepLab-style).
  TORCH_ARG(StageFlags, replace_stride_with_dilation) = {false, false, false};
  TORCH_ARG(NormLayerOptions, norm) = {};

 public:
  void validate() const;
};

/// torchvision's ResNet. Also a detection body: forward_stages() returns layer1..layer4 outputs.
class ResNetImpl : public Classifier {
 public:
  explicit ResNetImpl(const ResNetOptions& options);
  torch::Tensor forward(const torch::Tensor& images) override;
  std::pair<torch::Tensor, torch::Tensor> forward_with_embedding(const torch::Tensor& images) override;
  /// conv1 .. layer4, returning the outputs of layer1..layer4 (strides 4, 8, 16, 32 without dilation).
  std::vector<torch::Tensor> forward_stages(const torch::Tensor& images);
  /// Channels of layer1..layer4 outputs (resnet18: 64..512, resnet50: 256..2048).
  std::vector<int64_t> stage_channels() const;

  /// torchvision's _resnet_fpn_extractor freezing: only parameters under
  /// ["layer4","layer3","layer2","layer1","conv1"][:trainable_layers] (+ "bn1" when 5) keep requires_grad.
  void freeze_for_fpn(int trainable_layers);

  void replace_head(int64_t num_classes, uint64_t seed = 0) override;
  void freeze_backbone(int trainable_stages = 0) override;
  int num_backbone_stages() const override { return 5; }
  /// Folds the stem's bn1 into conv1 for inference; the blocks fold themselves (fold_batch_norms).
  int fold_stem_norm() { return bn1_.fold_into(*conv1_); }
  int64_t num_classes() const override;

  /// int8 (nn/quantize.h; called by quantize_int8): begin recording activation ranges in forward passes,
  /// then build the int8 stem and blocks and run them in every later forward pass (the stage outputs and
  /// the pooled features come back float32). Returns the number of convolutions quantised.
  void begin_int8_calibration();
  int finish_int8_calibration();
  bool is_int8() const;
  /// After finish_int8_calibration: forward_stages with the stage outputs left quint8 (for an int8 FPN).
  std::vector<torch::Tensor> forward_stages_int8(const torch::Tensor& images);
  const ResNetOptions& options() const { return options_; }

 private:
  struct Int8;
  torch::Tensor stem(const torch::Tensor& x);
  void make_layer(int index, int64_t planes, int blocks, int64_t stride, bool dilate);
  void init_weights();

  ResNetOptions options_;
  int64_t inplanes_ = 64;
  int64_t dilation_ = 1;
  torch::nn::Conv2d conv1_{nullptr};
  Norm2d bn1_;
  std::array<std::vector<ResNetBlock>, 4> layers_;
  torch::nn::Linear fc_{nullptr};
  std::shared_ptr<Int8> int8_;
};
TORCH_MODULE(ResNet);

/// resnet18 (BasicBlock, {2,2,2,2}), BatchNorm2d.
ResNet resnet18(int64_t num_classes = 1000);
/// resnet50 (Bottleneck, {3,4,6,3}), BatchNorm2d.
ResNet resnet50(int64_t num_classes = 1000);
/// Options of resnet18/resnet50 by depth (18 or 50), to tweak before building.
ResNetOptions resnet_options(int depth);

}  // namespace vigil::nn
