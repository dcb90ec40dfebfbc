#pragma once
/// Weight import into a model: a torchvision `.pth` / TorchScript file (read tensor by tensor by
/// nn/weights.h) copied key by key into a model of the zoo, strictly or in part (fine-tuning), with a report
/// of what was copied. nn/weights.h knows tensors and state dicts; this knows models, heads and classes.

#include <filesystem>
#include <string>

#include "vigil/model/model_file.h"
#include "vigil/nn/weights.h"

namespace vigil::model {

/// "none", "backbone", "skip-predictor" -> PartialLoad; anything else -> InvalidArgument listing them.
PartialLoad parse_partial_load(const std::string& name);

/// A model built from a torchvision weight file, with what was copied key by key.
struct ImportedModel {
  LoadedModel model;
  nn::LoadReport report;
};

/// Builds options.arch with options.num_classes (0: the file's head) and copies the file's tensors into it:
/// every key (strict: any missing / unexpected / mismatched key is an InvalidArgument naming the first one),
/// or the part options.partial selects (the rest keeps its fresh initialisation).
ImportedModel import_weights(const std::filesystem::path& file, const LoadModelOptions& options);

/// True when some key of `dict` starts with `prefix`.
bool has_key_prefix(const nn::StateDict& dict, const std::string& prefix);

/// A classifier's state dict as a detector backbone's (torchvision's weights_backbone): keys move under
/// `backbone.body.`, ResNet names kept, MobileNet's `features.N` becoming `body.N`; the classifier head is
/// dropped.
nn::StateDict classifier_to_detector_backbone(const nn::StateDict& dict);

}  // namespace vigil::model
