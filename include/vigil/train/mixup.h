#pragma once
/// Mixup for classifiers (Zhang et al., 2018; torchvision's classification reference, RandomMixup with p =
/// 1): each training batch is blended with itself rolled by one sample,
///   images  lam * x + (1 - lam) * x.roll(1)
///   loss    lam * CE(logits, y) + (1 - lam) * CE(logits, y.roll(1)),
/// lam ~ Beta(alpha, alpha), drawn from the global torch generator: a checkpoint saves its state, so a
/// resumed run draws the same lam as an uninterrupted one. The loss form equals torchvision's cross-entropy
/// against mixed one-hot targets, and keeps class weights and label smoothing meaning what they mean unmixed.

#include <torch/types.h>

namespace vigil::train {

struct MixedBatch {
  torch::Tensor images;     ///< lam * images + (1 - lam) * images rolled by one along dim 0
  torch::Tensor targets_b;  ///< targets rolled by one: the second label of each mixed sample
  double lam = 1;           ///< weight of the sample's own image and label
};

/// A draw from Beta(alpha, alpha) as the ratio of two Gamma(alpha) draws. Throws InvalidArgument for
/// alpha <= 0.
double sample_beta(double alpha);

/// Mixes a batch ([N, ...] images of any rank, [N] class indices) as above. A batch of one sample is returned
/// unmixed (lam 1): it has no other sample to blend with. Throws InvalidArgument for alpha <= 0 or sizes
/// that differ.
MixedBatch mixup(const torch::Tensor& images, const torch::Tensor& targets, double alpha);

}  // namespace vigil::train
