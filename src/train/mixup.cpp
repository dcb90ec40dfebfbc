#include "vigil/train/mixup.h"

#include <torch/torch.h>

#include "vigil/core/error.h"

namespace vigil::train {

double sample_beta(double alpha) {
  VIGIL_CHECK(alpha > 0, "expected mixup alpha > 0, got {}", alpha);
  const auto g = torch::_standard_gamma(torch::full({2}, alpha, torch::kDouble));
  const double a = g[0].item<double>(), b = g[1].item<double>();
  // Both draws underflow to 0 only for tiny alpha; Beta(alpha, alpha) is then a fair coin on {0, 1}.
  if (a + b <= 0) return torch::rand({1}, torch::kDouble).item<double>() < 0.5 ? 0.0 : 1.0;
  return a / (a + b);
}

MixedBatch mixup(const torch::Tensor& images, const torch::Tensor& targets, double alpha) {
  VIGIL_CHECK(alpha > 0, "expected mixup alpha > 0, got {}", alpha);
  VIGIL_CHECK(images.dim() >= 1 && targets.dim() == 1 && images.size(0) == targets.size(0),
              "expected one target per image for mixup, got images {} and targets {}",
              c10::str(images.sizes()), c10::str(targets.sizes()));
  MixedBatch out;
  if (images.size(0) < 2) {
    out.images = images;
    out.targets_b = targets;
    return out;
  }
  out.lam = sample_beta(alpha);
  out.images = images * out.lam + images.roll(1, 0) * (1.0 - out.lam);
  out.targets_b = targets.roll(1, 0);
  return out;
}

}  // namespace vigil::train
