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

/// Faster R-CNN hyper-parameters a training config may change, named as torchvision's FasterRCNN keyword
/// arguments; an empty list or 0 keeps the architecture's default. They are part of the model: a model file
/// records them (model/model_file.h) and the model is rebuilt with them.
struct DetectorArgs {
  /// Short-side targets of the model's resize; training picks one per image at random (torchvision's
  /// multi-scale training), evaluation and prediction use the last.
  std::vector<int64_t> min_size;
  int64_t max_size = 0;  ///< long-side cap of that resize
  /// Anchor sizes in pixels of the resized image. A backbone whose feature maps all carry every size
  /// (MobileNetV3: three maps) takes the list as is; one with a size per map (ResNet-50 FPN: five) takes
  /// one value per map, smallest first.
  std::vector<double> anchor_sizes;
  std::vector<double> aspect_ratios;  ///< anchor height / width, on every map
  /// Training cost: proposals kept before / after the RPN's NMS, anchors the RPN loss samples, proposals
  /// the box head trains on per image (torchvision 2000 / 2000 / 256 / 512; the box head's 12544 x 1024
  /// layer on 512 proposals is most of a MobileNet detector's training step).
  int64_t rpn_pre_nms_top_n_train = 0;
  int64_t rpn_post_nms_top_n_train = 0;
  int64_t rpn_batch_size_per_image = 0;
  int64_t box_batch_size_per_image = 0;

  /// Calls f(key, value) for each field that is set (a non-empty list, a non-zero number), in visit() order:
  /// what a model file stores and `vigil weights show` prints.
  template <class F>
  void for_each_set(F&& f) const {
    DetectorArgs copy = *this;  // visit() hands out mutable fields
    auto each = [&](const char* key, const auto& value, const char* = "") {
      if constexpr (requires { value.empty(); }) {
        if (!value.empty()) f(key, value);
      } else if (value != 0) {
        f(key, value);
      }
    };
    copy.visit(each);
  }
  bool empty() const {
    bool any = false;
    for_each_set([&](const char*, const auto&) { any = true; });
    return !any;
  }
  /// Throws InvalidArgument naming the field when a value is out of range.
  void validate() const;

  template <class V>
  void visit(V& v) {
    v("min_size", min_size,
      "short-side sizes of the model's resize; training picks one per image, prediction uses the last "
      "([] = the architecture's)");
    v("max_size", max_size, "long-side cap of that resize (0 = the architecture's)");
    v("anchor_sizes", anchor_sizes,
      "anchor sizes in resized pixels: every map's list (MobileNetV3) or one per map (ResNet-50 FPN) ([] = "
      "the architecture's)");
    v("aspect_ratios", aspect_ratios, "anchor height / width ratios ([] = 0.5, 1, 2)");
    v("rpn_pre_nms_top_n_train", rpn_pre_nms_top_n_train,
      "training proposals before the RPN's NMS (0 = 2000)");
    v("rpn_post_nms_top_n_train", rpn_post_nms_top_n_train, "training proposals after it (0 = 2000)");
    v("rpn_batch_size_per_image", rpn_batch_size_per_image, "anchors per image in the RPN loss (0 = 256)");
    v("box_batch_size_per_image", box_batch_size_per_image,
      "proposals per image the box head trains on (0 = 512; 128 trains a MobileNet detector ~1.8x faster)");
  }
};

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
  DetectorArgs detector;               ///< Faster R-CNN only; other models refuse a non-empty one
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
/// The input `name` expects when built with `detector`: its spec's preprocess with the detector's test-time
/// min_size (the list's last) and max_size.
data::PreprocessOptions model_preprocess(const std::string& name, const DetectorArgs& detector = {});
/// Builds any registered model; throws InvalidArgument for an unknown name, num_classes < 0, or detector
/// options for a model that is not a Faster R-CNN.
std::shared_ptr<torch::nn::Module> make_model(const std::string& name, const ModelArgs& args = {});
/// Builds a detection model; throws InvalidArgument for unknown or non-detection names.
std::shared_ptr<Detector> make_detector(const std::string& name, const ModelArgs& args = {});
/// Builds a classification model; throws InvalidArgument for unknown or non-classification names.
std::shared_ptr<Classifier> make_classifier(const std::string& name, int num_classes);
std::shared_ptr<Classifier> make_classifier(const ClassifierOptions& options);

}  // namespace vigil::nn
