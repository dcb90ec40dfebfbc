#pragma once
/// The model zoo: an explicit name -> factory registry (DESIGN.md section 5) with each model's input size and
/// normalisation. register_builtin_models() fills the classifiers and the Faster R-CNN detectors.

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

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
};

/// One zoo entry.
struct ModelSpec {
  std::string name;
  std::string task;  ///< "classification" | "detection"
  /// Classifier input size; detectors: min_size (width) / max_size (height) of their transform.
  int input_width = 224, input_height = 224;
  std::vector<double> mean, std;  ///< per-channel normalisation of [0, 1] RGB input
  std::string description;
  std::function<std::shared_ptr<torch::nn::Module>(const ModelArgs&)> factory;
};

/// Adds a model; throws InvalidArgument when the name is empty, already taken or the factory is missing.
void register_model(ModelSpec spec);
/// Registers mobilenet_v2, mobilenet_v3_large, mobilenet_v3_small, resnet18, resnet50, mask_small_cnn and the
/// detectors fasterrcnn_resnet50_fpn, fasterrcnn_mobilenet_v3_large_fpn,
/// fasterrcnn_mobilenet_v3_large_320_fpn. Idempotent; the lookups below call it themselves.
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
