#pragma once
/// Exponential moving average of a model's weights (Ultralytics' ModelEMA, from Mean Teacher / YOLOv5): after
/// every optimizer step each floating-point parameter and buffer `e` of the average moves towards the trained
/// one `w` as e = d * e + (1 - d) * w, with d = decay * (1 - exp(-updates / tau)), so the first updates
/// follow the weights closely and later ones average over about 1 / (1 - decay) steps. Validation and the
/// weights a run hands over use the average; training continues on the trained weights.

#include <torch/nn/module.h>

#include <cstdint>
#include <vector>

namespace vigil::train {

struct EmaOptions {
  double decay = 0;   ///< 0 = off; Ultralytics uses 0.9999
  double tau = 2000;  ///< updates over which the decay ramps up from 0 (its warm-up)

  template <class V>
  void visit(V& v) {
    v("decay", decay, "weight EMA: decay of the average (0 = off; Ultralytics 0.9999)");
    v("tau", tau, "weight EMA: optimizer steps over which the decay ramps up (Ultralytics 2000)");
  }
  void validate() const;
};

/// The averaged copy of a module's parameters and buffers (model::state_tensors, the checkpoint's order, so
/// the trained weights a checkpoint keeps beside the average line up with them). Starts equal to the module.
class ModelEma {
 public:
  ModelEma(torch::nn::Module& module, EmaOptions options);

  /// The decay applied at update number `updates` (1 for the first optimizer step).
  double decay_at(int64_t updates) const;
  /// Moves the average towards the module's current weights; `updates` counts optimizer steps so far
  /// (a resumed run passes its restored count, so it averages as the uninterrupted run did). Integer
  /// buffers (batch-norm step counts) are copied.
  void update(int64_t updates);
  /// Exchanges the module's weights with the average, in place (the module's tensors keep their identity,
  /// so an optimizer's state stays attached to them). Swapping twice restores both.
  void swap();
  /// The stored tensors: the average, or after swap() the trained weights.
  const std::vector<torch::Tensor>& tensors() const { return shadow_; }
  /// Resuming: the module holds the average a checkpoint saved and `trained` the trained weights it saved
  /// beside them. Takes the module's weights as the average and loads `trained` into the module. Throws
  /// DataError when `trained` does not fit the module (count, shape or dtype).
  void restore(const std::vector<torch::Tensor>& trained);

 private:
  EmaOptions options_;
  std::vector<torch::Tensor> live_;    ///< the module's tensors
  std::vector<torch::Tensor> shadow_;  ///< the average (or, swapped, the trained weights)
};

/// Holds the average in the module for its lifetime (validation, saving), then swaps the trained weights
/// back, also when an exception leaves the scope. Does nothing for a null average.
class EmaSwap {
 public:
  explicit EmaSwap(ModelEma* ema) : ema_(ema) {
    if (ema_ != nullptr) ema_->swap();
  }
  ~EmaSwap() {
    if (ema_ != nullptr) ema_->swap();
  }
  EmaSwap(const EmaSwap&) = delete;
  EmaSwap& operator=(const EmaSwap&) = delete;

 private:
  ModelEma* ema_;
};

}  // namespace vigil::train
