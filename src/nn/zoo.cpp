#include "vigil/nn/zoo.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "vigil/core/error.h"
#include "vigil/nn/backbones/mobilenet_v2.h"
#include "vigil/nn/backbones/mobilenet_v3.h"
#include "vigil/nn/backbones/resnet.h"
#include "vigil/nn/classification/clip_classifier.h"
#include "vigil/nn/classification/small_cnn.h"
#include "vigil/nn/detection/faster_rcnn.h"
#include "vigil/nn/detection/ssdlite.h"

namespace vigil::nn {

namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, ModelSpec> specs;  // std::map: references stay valid as models are added
};

Registry& registry() {
  static Registry r;
  return r;
}

const std::vector<double> kImageNetMean = {0.485, 0.456, 0.406};
const std::vector<double> kImageNetStd = {0.229, 0.224, 0.225};

ModelSpec classifier_spec(std::string name, std::string description,
                          std::function<std::shared_ptr<torch::nn::Module>(const ModelArgs&)> factory) {
  ModelSpec spec;
  spec.name = std::move(name);
  spec.task = data::Task::kClassification;
  spec.preprocess.width = spec.preprocess.height = 224;
  spec.preprocess.mean = kImageNetMean;
  spec.preprocess.std = kImageNetStd;
  spec.preprocess.normalize = true;
  spec.description = std::move(description);
  spec.factory = std::move(factory);
  return spec;
}

// ModelArgs' 0 means the architecture's default; detectors resolve theirs in their builders.
int classes_or_default(const ModelArgs& args) {
  return args.num_classes > 0 ? args.num_classes : 1000;
}

template <typename Options>
Options with_dropout(Options options, const ModelArgs& args) {
  if (args.dropout >= 0) options.dropout(args.dropout);
  return options;
}

void register_classifiers() {
  register_model(classifier_spec(
      "mobilenet_v2", "MobileNetV2 (torchvision 0.14 names), 3.5M parameters",
      [](const ModelArgs& a) -> std::shared_ptr<torch::nn::Module> {
        return MobileNetV2(with_dropout(MobileNetV2Options().num_classes(classes_or_default(a)), a)).ptr();
      }));
  for (const std::string size : {"large", "small"}) {
    register_model(classifier_spec(
        "mobilenet_v3_" + size, "MobileNetV3-" + size + " (torchvision 0.14 names)",
        [size](const ModelArgs& a) -> std::shared_ptr<torch::nn::Module> {
          return MobileNetV3(with_dropout(MobileNetV3Options(size).num_classes(classes_or_default(a)), a))
              .ptr();
        }));
  }
  for (int depth : {18, 50}) {
    register_model(classifier_spec(fmt::format("resnet{}", depth),
                                   fmt::format("ResNet-{} (torchvision 0.14 names)", depth),
                                   [depth](const ModelArgs& a) -> std::shared_ptr<torch::nn::Module> {
                                     auto options = resnet_options(depth).num_classes(classes_or_default(a));
                                     return ResNet(with_dropout(options, a)).ptr();
                                   }));
  }
  auto mask = classifier_spec(
      "mask_small_cnn", "The face-mask seed's small CNN: 3 conv blocks (32/64/128), dense 256, 100x100 input",
      [](const ModelArgs& a) -> std::shared_ptr<torch::nn::Module> {
        return SmallCnn(with_dropout(SmallCnnOptions().num_classes(classes_or_default(a)), a)).ptr();
      });
  // The Keras seed only rescales pixels to [0, 1].
  mask.preprocess.width = mask.preprocess.height = 100;
  mask.preprocess.mean = {0.0, 0.0, 0.0};
  mask.preprocess.std = {1.0, 1.0, 1.0};
  register_model(std::move(mask));
}

constexpr int kDefaultClipLength = 8;

// Clip classifiers take their backbone's input size and normalisation (already registered by then).
data::PreprocessOptions backbone_preprocess(const std::string& backbone) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.specs.at(backbone).preprocess;
}

void register_clip_classifiers() {
  for (const std::string backbone :
       {"mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "resnet18", "mask_small_cnn"}) {
    for (const auto kind : {RecurrentKind::kLstm, RecurrentKind::kGru}) {
      const std::string rnn = recurrent_kind_name(kind);
      ModelSpec spec;
      spec.name = fmt::format("clip_{}_{}", backbone, rnn);
      spec.task = data::Task::kClassification;
      spec.preprocess = backbone_preprocess(backbone);
      spec.clip_length = kDefaultClipLength;
      spec.description = fmt::format(
          "Clip classifier: {} per frame + 1-layer {} (hidden 256) over the frames, input [B, T, 3, H, W]",
          backbone, kind == RecurrentKind::kLstm ? "LSTM" : "GRU");
      spec.factory = [backbone, kind](const ModelArgs& a) -> std::shared_ptr<torch::nn::Module> {
        VIGIL_CHECK(a.clip_length >= 0, "expected clip_length >= 1 (or 0 for the default {}), got {}",
                    kDefaultClipLength, a.clip_length);
        auto options = ClipClassifierOptions(backbone).rnn(kind).num_classes(classes_or_default(a));
        options.clip_length(a.clip_length > 0 ? a.clip_length : kDefaultClipLength);
        return ClipClassifier(with_dropout(options, a)).ptr();
      };
      register_model(std::move(spec));
    }
  }
}

void register_detectors() {
  const std::map<std::string, std::string> descriptions = {
      {"fasterrcnn_resnet50_fpn", "Faster R-CNN, ResNet-50 FPN backbone (torchvision 0.14 names), 800/1333"},
      {"fasterrcnn_mobilenet_v3_large_fpn",
       "Faster R-CNN, MobileNetV3-Large FPN backbone (torchvision 0.14 names), 800/1333"},
      {"fasterrcnn_mobilenet_v3_large_320_fpn",
       "Faster R-CNN, MobileNetV3-Large FPN backbone (torchvision 0.14 names), low resolution 320/640"},
  };
  for (const auto& name : faster_rcnn_names()) {
    const auto defaults = faster_rcnn_defaults(name);
    ModelSpec spec;
    spec.name = name;
    spec.task = data::Task::kDetection;
    spec.preprocess.min_size = static_cast<int>(defaults.min_size().back());
    spec.preprocess.max_size = static_cast<int>(defaults.max_size());
    spec.preprocess.mean = defaults.image_mean();
    spec.preprocess.std = defaults.image_std();
    spec.preprocess.normalize = false;  // the detector's transform normalises inside, like torchvision
    spec.description = descriptions.at(name);
    spec.factory = [name](const ModelArgs& a) -> std::shared_ptr<torch::nn::Module> {
      return make_faster_rcnn(name, a).ptr();
    };
    register_model(std::move(spec));
  }
  for (const auto& name : ssdlite_names()) {
    const auto defaults = ssdlite_defaults(name);
    ModelSpec spec;
    spec.name = name;
    spec.task = data::Task::kDetection;
    // SSD resizes every image to one fixed size (torchvision's fixed_size, 320x320, aspect ratio not kept);
    // min_size / max_size, which Faster R-CNN's transform uses, only record that size here.
    spec.preprocess.min_size = static_cast<int>(std::min(defaults.size()[0], defaults.size()[1]));
    spec.preprocess.max_size = static_cast<int>(std::max(defaults.size()[0], defaults.size()[1]));
    spec.preprocess.mean = defaults.image_mean();
    spec.preprocess.std = defaults.image_std();
    spec.preprocess.normalize = false;  // the detector's transform normalises inside, like torchvision
    spec.description =
        "SSDlite, MobileNetV3-Large backbone (torchvision 0.14 names), fixed 320x320, real-time on CPU";
    spec.factory = [name](const ModelArgs& a) -> std::shared_ptr<torch::nn::Module> {
      return make_ssdlite(name, a).ptr();
    };
    register_model(std::move(spec));
  }
}

}  // namespace

void register_model(ModelSpec spec) {
  VIGIL_CHECK(!spec.name.empty(), "expected a model name, got an empty string");
  VIGIL_CHECK(static_cast<bool>(spec.factory), "expected a factory for model '{}', got none", spec.name);
  spec.preprocess.validate();
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  VIGIL_CHECK(!r.specs.count(spec.name), "expected a new model name, got '{}' which is already registered",
              spec.name);
  const std::string name = spec.name;
  r.specs.emplace(name, std::move(spec));
}

void register_builtin_models() {
  static std::once_flag once;
  std::call_once(once, [] {
    register_classifiers();
    register_clip_classifiers();
    register_detectors();
  });
}

const ModelSpec& find_model(const std::string& name) {
  register_builtin_models();
  auto& r = registry();
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.specs.find(name);
    if (it != r.specs.end()) return it->second;
  }
  throw InvalidArgument(
      fmt::format("expected a model name, one of: {}; got '{}'", fmt::join(model_names(), ", "), name));
}

std::vector<std::string> model_names() {
  register_builtin_models();
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& [name, spec] : r.specs) names.push_back(name);
  return names;
}

void DetectorArgs::validate() const {
  for (const auto s : min_size) VIGIL_CHECK(s >= 1, "expected detector.min_size values >= 1, got {}", s);
  VIGIL_CHECK(max_size >= 0, "expected detector.max_size >= 1 (or 0 for the default), got {}", max_size);
  for (const auto s : anchor_sizes)
    VIGIL_CHECK(s > 0, "expected detector.anchor_sizes values > 0 (pixels), got {}", s);
  for (const auto r : aspect_ratios)
    VIGIL_CHECK(r > 0, "expected detector.aspect_ratios values > 0 (height / width), got {}", r);
  const std::pair<const char*, int64_t> counts[] = {{"rpn_pre_nms_top_n_train", rpn_pre_nms_top_n_train},
                                                    {"rpn_post_nms_top_n_train", rpn_post_nms_top_n_train},
                                                    {"rpn_batch_size_per_image", rpn_batch_size_per_image},
                                                    {"box_batch_size_per_image", box_batch_size_per_image}};
  for (const auto& [key, value] : counts)
    VIGIL_CHECK(value >= 0, "expected detector.{} >= 1 (or 0 for the default), got {}", key, value);
}

data::PreprocessOptions model_preprocess(const std::string& name, const DetectorArgs& detector) {
  auto p = find_model(name).preprocess;
  if (!detector.min_size.empty()) p.min_size = static_cast<int>(detector.min_size.back());
  if (detector.max_size > 0) p.max_size = static_cast<int>(detector.max_size);
  return p;
}

std::shared_ptr<torch::nn::Module> make_model(const std::string& name, const ModelArgs& args) {
  VIGIL_CHECK(args.num_classes >= 0, "expected num_classes >= 1 (or 0 for the model's default), got {}",
              args.num_classes);
  const auto& spec = find_model(name);
  VIGIL_CHECK(args.detector.empty() || is_faster_rcnn(name),
              "expected detector options only for a Faster R-CNN ({}), got them for '{}'",
              fmt::join(faster_rcnn_names(), ", "), name);
  return spec.factory(args);
}

std::shared_ptr<Detector> make_detector(const std::string& name, const ModelArgs& args) {
  const auto& spec = find_model(name);
  VIGIL_CHECK(spec.task == data::Task::kDetection, "expected a detection model, got '{}' (task {})",
              spec.name, data::task_name(spec.task));
  auto detector = std::dynamic_pointer_cast<Detector>(make_model(name, args));
  VIGIL_ASSERT(detector, "factory of '{}' did not return a Detector", spec.name);
  return detector;
}

std::shared_ptr<Classifier> make_classifier(const ClassifierOptions& options) {
  options.validate();
  const auto& spec = find_model(options.arch);
  VIGIL_CHECK(spec.task == data::Task::kClassification, "expected a classification model, got '{}' (task {})",
              spec.name, data::task_name(spec.task));
  ModelArgs args;
  args.num_classes = options.num_classes;
  args.dropout = options.dropout;
  auto classifier = std::dynamic_pointer_cast<Classifier>(spec.factory(args));
  VIGIL_ASSERT(classifier, "factory of '{}' did not return a Classifier", spec.name);
  return classifier;
}

std::shared_ptr<Classifier> make_classifier(const std::string& name, int num_classes) {
  ClassifierOptions options;
  options.arch = name;
  options.num_classes = num_classes;
  return make_classifier(options);
}

}  // namespace vigil::nn
