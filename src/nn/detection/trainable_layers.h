#pragma once
// Internal to the detectors in src/nn/detection/: torchvision's _validate_trainable_layers.

#include <spdlog/spdlog.h>

#include <string>

#include "vigil/core/error.h"

namespace vigil::nn::detail {

/// Without a pretrained backbone every stage trains (a requested value is ignored with a warning, as
/// torchvision does); otherwise the requested value, or `default_value` when < 0, must lie in [0, max_value].
inline int trainable_layers_for(const std::string& name, bool pretrained, int requested, int max_value,
                                int default_value) {
  VIGIL_CHECK(requested >= -1 && requested <= max_value,
              "expected trainable_backbone_layers in [0, {}] (or -1 for the default) for '{}', got {}",
              max_value, name, requested);
  if (!pretrained) {
    if (requested >= 0 && requested != max_value) {
      spdlog::warn(
          "{}: trainable_backbone_layers={} has no effect without a pretrained backbone; all {} layers train "
          "(torchvision's rule)",
          name, requested, max_value);
    }
    return max_value;
  }
  return requested < 0 ? default_value : requested;
}

}  // namespace vigil::nn::detail
