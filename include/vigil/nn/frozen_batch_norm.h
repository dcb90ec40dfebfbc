#pragma once
/// Norm layers for the backbones: torchvision's FrozenBatchNorm2d and the choice between it and BatchNorm2d.

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>

namespace vigil::nn {

/// Options of FrozenBatchNorm2d (torchvision.ops.misc.FrozenBatchNorm2d).
struct FrozenBatchNorm2dOptions {
  /* implicit */ FrozenBatchNorm2dOptions(int64_t num_features) : num_features_(num_features) {}
  TORCH_ARG(int64_t, num_features);
  TORCH_ARG(double, eps) = 1e-5;
};

/// BatchNorm2d whose statistics and affine parameters are fixed: four buffers (weight, bias, running_mean,
/// running_var), no parameters, no num_batches_tracked. Detection uses it under pretrained backbones, where
/// batches are too small for batch statistics.
class FrozenBatchNorm2dImpl : public torch::nn::Cloneable<FrozenBatchNorm2dImpl> {
 public:
  explicit FrozenBatchNorm2dImpl(const FrozenBatchNorm2dOptions& options);
  void reset() override;
  void pretty_print(std::ostream& stream) const override;
  /// y = x * scale + (bias - running_mean * scale), scale = weight * rsqrt(running_var + eps).
  torch::Tensor forward(const torch::Tensor& x);

  FrozenBatchNorm2dOptions options;
  torch::Tensor weight, bias, running_mean, running_var;
};
TORCH_MODULE(FrozenBatchNorm2d);

/// True when `key` (a torchvision state_dict key) is a num_batches_tracked entry of a FrozenBatchNorm2d
/// inside `root`. torchvision's FrozenBatchNorm2d._load_from_state_dict drops such keys; loaders should skip
/// them.
bool is_ignored_frozen_bn_key(const torch::nn::Module& root, const std::string& key);

enum class NormKind { kBatchNorm, kFrozenBatchNorm };

/// Which 2-d norm a backbone builds (torchvision's `norm_layer` argument).
struct NormLayerOptions {
  NormKind kind = NormKind::kBatchNorm;
  double eps = 1e-5;
  double momentum = 0.1;  ///< BatchNorm2d only

  /// nn.BatchNorm2d(eps, momentum).
  static NormLayerOptions batch_norm(double eps = 1e-5, double momentum = 0.1);
  /// FrozenBatchNorm2d(eps).
  static NormLayerOptions frozen(double eps = 1e-5);
  /// torchvision's detection rule: FrozenBatchNorm2d when starting from pretrained weights (`is_trained`),
  /// BatchNorm2d when training from scratch.
  static NormLayerOptions for_detection(bool pretrained);
};

/// Folds an eval-mode norm (BatchNorm2d or FrozenBatchNorm2d; anything else throws InvalidArgument) into the
/// convolution before it, so conv'(x) == norm(conv(x)): the weight is scaled per output channel and the bias
/// becomes the norm's shift. Inference only: the conv's `bias` member gets a tensor that is not a registered
/// parameter, so the folded conv must not be trained or saved.
void fold_norm_into_conv(torch::nn::Conv2dImpl& conv, torch::nn::Module& norm);

/// A BatchNorm2d or FrozenBatchNorm2d registered directly under its parent module, so parameter names stay
/// torchvision's (`bn1.weight`, not `bn1.norm.weight`).
class Norm2d {
 public:
  Norm2d() = default;
  /// Builds the norm and registers it as `parent.<name>`.
  Norm2d(torch::nn::Module& parent, const std::string& name, const NormLayerOptions& options,
         int64_t channels);
  /// The norm, or the identity once folded (forward in training mode after folding throws InvalidArgument).
  torch::Tensor forward(const torch::Tensor& x);
  bool is_empty() const { return !bn_ && !frozen_; }
  /// True when forward() is the identity: no norm, or one folded into its convolution.
  bool is_identity() const { return folded_ || is_empty(); }
  /// Folds this norm into `conv` (fold_norm_into_conv) and turns forward() into the identity. Returns 1 when
  /// it folded now, 0 when there is nothing (left) to fold.
  int fold_into(torch::nn::Conv2dImpl& conv);

 private:
  torch::nn::Module& module() const;

  torch::nn::BatchNorm2d bn_{nullptr};
  FrozenBatchNorm2d frozen_{nullptr};
  bool folded_ = false;
};

/// The chosen norm as an AnyModule, for torch::nn::Sequential containers.
torch::nn::AnyModule make_norm2d(const NormLayerOptions& options, int64_t channels);

/// Sets BatchNorm weights to one and biases to zero (torchvision's init; FrozenBatchNorm2d already is).
void init_norms(torch::nn::Module& root);

}  // namespace vigil::nn
