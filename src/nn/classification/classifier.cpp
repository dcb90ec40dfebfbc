#include "vigil/nn/classification/classifier.h"

#include <ATen/CPUGeneratorImpl.h>

#include <fmt/format.h>

#include <cmath>

#include "vigil/core/error.h"

namespace vigil::nn {

void ClassifierOptions::validate() const {
  VIGIL_CHECK(!arch.empty(), "expected a classifier architecture name, got an empty string");
  VIGIL_CHECK(num_classes >= 1, "expected num_classes >= 1, got {}", num_classes);
  VIGIL_CHECK(dropout < 1.0, "expected dropout < 1 (or < 0 for the architecture default), got {}", dropout);
}

torch::nn::Linear make_linear(int64_t in_features, int64_t out_features, LinearInit init,
                              std::optional<uint64_t> seed) {
  torch::nn::Linear linear(in_features, out_features);
  c10::optional<at::Generator> gen;
  if (seed) gen = at::make_generator<at::CPUGeneratorImpl>(*seed);
  torch::NoGradGuard no_grad;
  switch (init) {
    case LinearInit::kNormal:
      linear->weight.normal_(0.0, 0.01, gen);
      linear->bias.zero_();
      break;
    case LinearInit::kDefault: {
      // kaiming_uniform_(a = sqrt(5)) reduces to this bound, and nn.Linear uses the same one for the bias.
      const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
      linear->weight.uniform_(-bound, bound, gen);
      linear->bias.uniform_(-bound, bound, gen);
      break;
    }
    case LinearInit::kXavier: {
      const double bound = std::sqrt(6.0 / static_cast<double>(in_features + out_features));
      linear->weight.uniform_(-bound, bound, gen);
      linear->bias.zero_();
      break;
    }
  }
  return linear;
}

std::pair<torch::Tensor, torch::Tensor> Classifier::forward_with_embedding(const torch::Tensor&) {
  throw InvalidArgument(
      fmt::format("this classifier ({}) has no image embedding (drift monitoring embeds "
                  "image classifiers: MobileNet, ResNet, the small CNN)",
                  name()));
}

void set_requires_grad(torch::nn::Module& module, bool requires_grad) {
  for (auto& p : module.parameters()) p.set_requires_grad(requires_grad);
}

}  // namespace vigil::nn
