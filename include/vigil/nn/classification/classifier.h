#pragma once
/// The interface every image classifier in the zoo implements, and the options that pick one.

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace vigil::nn {

/// What make_classifier builds: an architecture name from the zoo, the number of classes and the dropout
/// before the last Linear layer.
struct ClassifierOptions {
  std::string arch;
  int num_classes = 1000;
  double dropout = -1;  ///< < 0: the architecture's default (MobileNet 0.2, ResNet none, mask_small_cnn 0.5)
  /// Throws InvalidArgument when a field is out of range (the arch name is checked by the zoo).
  void validate() const;
};

/// Base of the classification models: forward(images) -> logits, plus the two transfer-learning moves.
/// A backbone is split into stages (ResNet: conv1, layer1..layer4; MobileNet: torchvision's stage_indices;
/// mask_small_cnn: its three conv blocks); the head is what follows them.
class Classifier : public torch::nn::Module {
 public:
  /// images [N, 3, H, W] (normalised) -> logits [N, num_classes].
  virtual torch::Tensor forward(const torch::Tensor& images) = 0;
  /// images -> (logits, embedding): the same logits as forward() and, from the same pass, the head's input
  /// [N, D] (MobileNet, ResNet: the backbone's globally pooled features; the small CNN: its dense layer),
  /// what drift monitoring compares between training data and traffic. A model without one (a clip
  /// classifier) throws InvalidArgument.
  virtual std::pair<torch::Tensor, torch::Tensor> forward_with_embedding(const torch::Tensor& images);
  /// Swaps the last Linear layer for a fresh one with `num_classes` outputs, initialised with the model's own
  /// scheme from a generator seeded with `seed` (the global RNG is left alone).
  virtual void replace_head(int64_t num_classes, uint64_t seed = 0) = 0;
  /// Freezes (requires_grad = false) every backbone parameter except those of the last `trainable_stages`
  /// stages, like torchvision's trainable_backbone_layers; the head stays trainable. 0 freezes the whole
  /// backbone (Keras' `base.trainable = False`).
  virtual void freeze_backbone(int trainable_stages = 0) = 0;
  /// Number of backbone stages freeze_backbone counts.
  virtual int num_backbone_stages() const = 0;
  /// Width of the logits.
  virtual int64_t num_classes() const = 0;
};

/// Fresh Linear(in, out) initialised from a generator seeded with `seed` (nullopt: torch's global generator,
/// so torch::manual_seed governs it): kNormal = N(0, 0.01) weights and zero
/// bias (MobileNet); kDefault = PyTorch's default U(-1/sqrt(in), 1/sqrt(in)) for both (ResNet's fc);
/// kXavier = Glorot-uniform weights and zero bias (Keras' Dense default, the mask seed).
enum class LinearInit { kNormal, kDefault, kXavier };
torch::nn::Linear make_linear(int64_t in_features, int64_t out_features, LinearInit init,
                              std::optional<uint64_t> seed = std::nullopt);

/// Sets requires_grad on every parameter of `module`.
void set_requires_grad(torch::nn::Module& module, bool requires_grad);

}  // namespace vigil::nn
