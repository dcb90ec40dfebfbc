#pragma once
// Internal to vigil::model: what model_file.cpp and weight_import.cpp both need to build a model.

#include <cstdint>
#include <string>

#include "vigil/model/model_file.h"

namespace vigil::model::detail {

/// torchvision's name for a detector's label 0.
inline constexpr const char* kBackground = "__background__";

/// True for a batch norm's `num_batches_tracked` counter (absent from FrozenBatchNorm2d and never compared).
bool is_bn_counter(const std::string& key);

/// Builds `info.arch` with info's classes, seeded so fresh layers are the same on every run.
LoadedModel build_model(const ModelInfo& info, uint64_t seed);

}  // namespace vigil::model::detail
