#include "vigil/train/ema.h"

#include <cmath>

#include "vigil/core/error.h"
#include "vigil/model/checkpoint.h"

namespace vigil::train {

void EmaOptions::validate() const {
  VIGIL_CHECK(std::isfinite(decay) && decay >= 0 && decay < 1,
              "expected ema.decay in [0, 1) (0 = off; Ultralytics 0.9999), got {}", decay);
  VIGIL_CHECK(std::isfinite(tau) && tau > 0, "expected ema.tau > 0 (optimizer steps), got {}", tau);
}

ModelEma::ModelEma(torch::nn::Module& module, EmaOptions options)
    : options_(options), live_(model::state_tensors(module)) {
  options_.validate();
  torch::NoGradGuard no_grad;
  shadow_.reserve(live_.size());
  for (const auto& t : live_) shadow_.push_back(t.detach().clone());
}

double ModelEma::decay_at(int64_t updates) const {
  return options_.decay * (1.0 - std::exp(-static_cast<double>(updates) / options_.tau));
}

void ModelEma::update(int64_t updates) {
  const double d = decay_at(updates);
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < live_.size(); ++i) {
    if (shadow_[i].is_floating_point()) {
      // e = d * e + (1 - d) * w, i.e. e += (1 - d) * (w - e): one fused kernel.
      shadow_[i].lerp_(live_[i].detach(), 1.0 - d);
    } else {
      shadow_[i].copy_(live_[i]);
    }
  }
}

void ModelEma::swap() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < live_.size(); ++i) {
    torch::Tensor held = live_[i].detach().clone();
    live_[i].detach().copy_(shadow_[i]);
    shadow_[i].copy_(held);
  }
}

void ModelEma::restore(const std::vector<torch::Tensor>& trained) {
  if (trained.size() != live_.size()) {
    throw DataError(
        fmt::format("expected the checkpoint's trained weights beside its average to hold {} tensors, got {}",
                    live_.size(), trained.size()));
  }
  for (size_t i = 0; i < trained.size(); ++i) {
    if (!trained[i].defined() || trained[i].sizes() != live_[i].sizes() ||
        trained[i].scalar_type() != live_[i].scalar_type()) {
      throw DataError(fmt::format("the checkpoint's trained weights do not fit the model at tensor {}", i));
    }
  }
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < live_.size(); ++i) {
    shadow_[i].copy_(live_[i]);
    live_[i].detach().copy_(trained[i]);
  }
}

}  // namespace vigil::train
