#pragma once
/// The model zoo: an explicit name -> factory registry (DESIGN.md section 5) with each model's input size and
/// normalisation. register_builtin_models() fills the classifiers and the Faster R-CNN detectors.

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vigil/data/preprocess.h"
#include "vigil/data/task.h"
#include "vigil/nn/classification/classifier.h"
#include "vigil/nn/detection/detector.h"

namespace vigil::nn {

/// What a factory is asked to build.
struct ModelArgs {
  /// Classes (detectors: including the background); 0 = the architecture's default (classifiers 1000,
  /// detectors 91, torchvision's COCO head).
  int num_classes = 0;
  double dropout = -1;  ///< < 0: the architecture's default
  /// Detection: the backbone starts from pretrained weights (torchvision then uses FrozenBatchNorm2d).
  bool pretrained_backbone = false;
  int trainable_backbone_layers = -1;  ///< detection: < 0 = torchvision's default
  int clip_length = 0;                 ///< clip models: frames per clip; 0 = the spec's clip_length
};

/// One zoo entry.
struct ModelSpec {
  std::string name;
  data::Task task = data::Task::kClassification;
  /// The architecture's default input: classifiers' size and normalisation; detectors' transform min/max
  /// size and the mean/std they normalise with inside.
  data::PreprocessOptions preprocess;
  /// Frames per clip: 0 for image models (input [N, 3, H, W]); > 0 for clip classifiers (input
  /// [B, T, 3, H, W], task classification), their default T. ModelArgs::clip_length overrides it.
  int clip_length = 0;
  std::string description;
  std::function<std::shared_ptr<torch::nn::Module>(const ModelArgs&)> factory;
};

/// Adds a model; throws InvalidArgument when the name is empty, already taken or the factory is missing.
void register_model(ModelSpec spec);
/// Registers mobilenet_v2, mobilenet_v3_large, mobilenet_v3_small, resnet18, resnet50, mask_small_cnn and the
/// detectors fasterrcnn_resnet50_fpn, fasterrcnn_mobilenet_v3_large_fpn,
/// fasterrcnn_mobilenet_v3_large_320_fpn; also the clip classifiers clip_<backbone>_<lstm|gru> (each image
/// classifier above but resnet50 as the per-frame CNN). Idempotent; the lookups below call it themselves.
void register_builtin_models();
/// The spec of `name`; unknown names throw InvalidArgument listing the valid ones.
const ModelSpec& find_model(const std::string& name);
/// Registered names, sorted.
std::vector<std::string> model_names();
/// Builds any registered model; throws InvalidArgument for an unknown name or num_classes < 0.
std::shared_ptr<torch::nn::Module> make_model(const std::string& name, const ModelArgs& args = {});
/// Builds a detection model; throws InvalidArgument for unknown or non-detection names.
std::shared_ptr<Detector> make_detector(const std::string& name, const ModelArgs& args = {});
/// Builds a classification model; throws InvalidArgument for unknown or non-classification names.
std::shared_ptr<Classifier> make_classifier(const std::string& name, int num_classes);
std::shared_ptr<Classifier> make_classifier(const ClassifierOptions& options);

}  // namespace vigil::nn
