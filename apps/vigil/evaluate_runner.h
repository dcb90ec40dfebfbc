#pragma once
/// `vigil evaluate`: a model run over a dataset split (or a COCO results file scored against COCO ground
/// truth), the metrics of vigil::eval computed on what it predicted, and the outputs written into one
/// folder: metrics.json, PNG plots, report.html, and for detectors the ground truth and results as COCO JSON
/// (so pycocotools can score the very same numbers).

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "vigil/core/progress.h"
#include "vigil/data/clips.h"
#include "vigil/data/dataset.h"
#include "vigil/data/formats.h"
#include "vigil/model/predict.h"

namespace vigil::cli {

/// Settings of an evaluation (the `vigil evaluate` flags and `--set` keys).
struct EvaluateOptions {
  std::string split = "val";           ///< train, val, test or all (every sample of the dataset)
  std::string split_name = "default";  ///< which saved split of the dataset (`vigil data split --name`)
  int gallery = 24;                    ///< sample pictures in the report (0: none)
  double confusion_conf = 0.25;        ///< detection confusion matrix: minimum score (Ultralytics' default)
  double confusion_iou = 0.45;         ///< detection confusion matrix: IoU to pair boxes
  model::PredictOptions predict;       ///< batching, threads, device, thresholds
  /// Clip models: how the frames are grouped into clips and windows (clips.clip_length is always the model
  /// file's; with --run, the pattern and grouping are the training run's).
  data::ClipOptions clips;
  /// Clip models: an image classifier whose single-frame majority vote over each window is reported beside
  /// the clip model; "" = the clip model's own single-frame output (each frame alone through its CNN,
  /// recurrent layer and head).
  std::string frame_model;

  template <class V>
  void visit(V& v) {
    v("split", split, "train, val, test or all");
    v("split_name", split_name, "the dataset's saved split to read");
    v("gallery", gallery, "sample pictures with predictions drawn in the report (0: none)");
    v("confusion_conf", confusion_conf, "detection confusion matrix: minimum detection score");
    v("confusion_iou", confusion_iou, "detection confusion matrix: IoU to pair a detection with a box");
    v("predict", predict, "prediction settings (batch_size, score_threshold, ...)");
    v("clips", clips, "clip models: frame-name pattern and window stride (clip_length is the model's)");
    v("frame_model", frame_model,
      "clip models: image classifier for the single-frame majority-vote comparison ('' = the clip model's "
      "own single-frame output)");
  }
  /// Throws InvalidArgument naming the field.
  void validate() const;
};

/// What is evaluated and where the outputs go.
struct EvaluationInput {
  const data::Dataset* dataset = nullptr;
  data::ImageSource images;  ///< sample -> image file
  std::vector<int> samples;  ///< indices into dataset->samples
  std::filesystem::path out;
  /// Shown in the report's header: model, dataset, split, date... (library code reads no clock).
  std::vector<std::pair<std::string, std::string>> metadata;
};

/// What an evaluation produced.
struct EvaluationReport {
  nlohmann::ordered_json metrics;  ///< the flat metrics (also in metrics.json)
  std::string summary;             ///< the table printed to the terminal
  std::filesystem::path out, metrics_file, report_file;
  size_t images = 0;
};

/// Checks that the model's classes are the dataset's (same names, same order; a detector's background
/// excluded); DataError naming both lists otherwise.
void check_classes(const model::ModelInfo& model, const data::Dataset& dataset);

/// Predicts every sample of `input` with `predictor` and evaluates the predictions against the dataset's
/// labels. Every sample must be usable: missing files are NotFound and undecodable ones a DataError listing
/// them (metrics over a silently smaller set would mislead). An empty sample list is a DataError.
EvaluationReport evaluate_model(model::Predictor& predictor, const EvaluationInput& input,
                                const EvaluateOptions& options, Progress* progress = nullptr);

/// A clip model (model::is_clip_model) over the windows of `input`'s samples: frames grouped into clips by
/// options.clips, windows of the model's clip length that lie wholly in the samples. Reports window metrics
/// (accuracy, per-class, confusion matrix), segment-level accuracy (a segment being a clip's run of one
/// label, its windows' probabilities averaged), and the same two for the single-frame majority vote of
/// options.frame_model (or of the clip model's own single-frame output). Unusable frames are a DataError
/// listing them.
EvaluationReport evaluate_clip_model(model::LoadedModel clip_model, const EvaluationInput& input,
                                     const EvaluateOptions& options, Progress* progress = nullptr);

/// Scores a COCO results file against a COCO ground-truth file (no model, no images): metrics.json, plots
/// and the report without a gallery.
EvaluationReport evaluate_coco_files(const std::filesystem::path& ground_truth,
                                     const std::filesystem::path& results, const std::filesystem::path& out,
                                     const EvaluateOptions& options,
                                     const std::vector<std::pair<std::string, std::string>>& metadata = {});

}  // namespace vigil::cli
