#pragma once
/// Self-describing model files (DESIGN.md section 4): weights + architecture + classes + input size +
/// normalisation + thresholds + lineage. A model file is a vigil checkpoint (model/checkpoint.h) whose
/// Checkpoint::model_json holds a ModelInfo; a training checkpoint is also a model file. `vigil predict`,
/// `vigil serve`, `vigil evaluate` and `vigil watch` need nothing else.

#include <torch/nn/module.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vigil/data/preprocess.h"
#include "vigil/data/task.h"
#include "vigil/nn/classification/classifier.h"
#include "vigil/nn/detection/detector.h"
#include "vigil/nn/zoo.h"

namespace vigil::model {

/// Everything about a model except its weights.
struct ModelInfo {
  std::string arch;  ///< model zoo name
  data::Task task = data::Task::kClassification;
  std::vector<std::string> class_names;  ///< classification: index -> name; detection: label index -> name,
                                         ///< index 0 = "__background__" (torchvision's convention)
  /// How images become the model's input (the training loader's validation path). Stored in the file as
  /// input_width / input_height (classification: the size; detection: the transform's min / max size), mean,
  /// std; normalize follows the task (classifiers normalise before the model, detectors inside).
  data::PreprocessOptions preprocess;
  nn::PostprocessOptions postprocess;  ///< detection thresholds
  /// Detection: the backbone uses FrozenBatchNorm2d (torchvision's choice when it starts from pretrained
  /// weights), which changes the module's buffers. save_model() sets it from the module itself.
  bool pretrained_backbone = false;
  /// Clip classifiers (nn/classification/clip_classifier.h): frames per window the model was trained on,
  /// which prediction and evaluation cut their windows to; 0 for image models. Stored only when > 0.
  int clip_length = 0;
  /// Faster R-CNN: the hyper-parameters it was built with where they differ from the architecture's
  /// (multi-scale sizes, anchors, sampling); stored as the object "detector" only when some are set.
  nn::DetectorArgs detector;
  /// Lineage: where the weights came from.
  std::string run_id, dataset_id, source, code_version, created_at;
  /// What the model scored when it was registered (training and evaluation metrics); empty before.
  std::map<std::string, double> metrics;

  std::string to_json() const;
  /// Throws DataError naming the field when `json` is malformed.
  static ModelInfo from_json(const std::string& json);
  /// Number of classes the model's head has (detection: including the background).
  int num_classes() const { return static_cast<int>(class_names.size()); }
};

/// A model ready to run: the module in eval mode plus its description. Exactly one of classifier/detector is
/// set.
struct LoadedModel {
  ModelInfo info;
  std::shared_ptr<torch::nn::Module> module;
  std::shared_ptr<nn::Classifier> classifier;
  std::shared_ptr<nn::Detector> detector;
};

/// Which part of a torchvision file `import_weights` copies.
enum class PartialLoad {
  kNone,      ///< every key (strict)
  kBackbone,  ///< only the backbone (detectors: `backbone.`; classifiers: all but `fc.` / `classifier.`);
              ///< a detector also takes a classifier file's backbone (ImageNet -> `backbone.body.`)
  kSkipPredictor,  ///< everything except the class-specific layer (detectors: `roi_heads.box_predictor.`;
                   ///< classifiers: the last Linear), which stays freshly initialised: fine-tuning
};
struct LoadModelOptions {
  std::string arch;     ///< required for a torchvision .pth / TorchScript file; must match otherwise
  int num_classes = 0;  ///< .pth: classes of the model (0 = those of the saved head)
  std::vector<std::string> class_names;  ///< .pth: optional names (default: COCO's for 91-class detectors,
                                         ///< else "class_N"; detectors' index 0 is "__background__")
  PartialLoad partial = PartialLoad::kNone;  ///< import_weights only; load_model always loads every key
  uint64_t seed = 0;  ///< partial loads: seeds the fresh layers' initialisation (the global RNG is restored)
};

/// Opens a vigil model file / checkpoint, or a torchvision `.pth` / TorchScript file when options.arch is
/// set (through import_weights, model/weight_import.h).
/// Missing file -> NotFound; corrupt -> DataError; wrong architecture -> InvalidArgument naming the
/// first mismatching key. The global torch RNG is left as it was.
LoadedModel load_model(const std::filesystem::path& file, const LoadModelOptions& options = {});

/// True when `file` ends in a vigil checkpoint trailer (it may still be corrupt). Missing file -> NotFound.
bool is_vigil_model_file(const std::filesystem::path& file);

/// Writes a weights-only model file (no optimizer) atomically.
void save_model(const std::filesystem::path& file, const ModelInfo& info, torch::nn::Module& module);

/// The zoo's defaults for `arch` (task, input size, normalisation) with the given classes. For detection,
/// "__background__" is put in front of `class_names` unless it is already there (a dataset's classes have no
/// background; a detector's label index 0 is the background).
ModelInfo default_model_info(const std::string& arch, const std::vector<std::string>& class_names);

/// torchvision's 91 COCO category names by label index ("__background__" at 0, "N/A" for unused ids).
const std::vector<std::string>& coco_category_names();

/// Default names for a head of `num_classes` outputs: COCO's for a 91-class detector, else "class_N"
/// (detectors: "__background__" at index 0).
std::vector<std::string> default_class_names(data::Task task, int num_classes);

/// Number of parameter elements (buffers excluded).
int64_t parameter_count(const torch::nn::Module& module);

}  // namespace vigil::model
