#pragma once
// Shared by vigil::model and vigil::train: keeps LibTorch's global CPU generator where it was for the guard's
// lifetime.

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <mutex>

namespace vigil::model::detail {

/// Saves the default CPU generator's state and restores it on destruction: building a model (which draws
/// initial weights), loading a checkpoint (which restores a saved generator) or a validation pass must not
/// move the caller's random stream.
class GlobalRngGuard {
 public:
  GlobalRngGuard() {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    state_ = gen.get_state();
  }
  ~GlobalRngGuard() {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state_);
  }
  GlobalRngGuard(const GlobalRngGuard&) = delete;
  GlobalRngGuard& operator=(const GlobalRngGuard&) = delete;

 private:
  torch::Tensor state_;
};

}  // namespace vigil::model::detail
