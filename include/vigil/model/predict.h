#pragma once
/// Batch prediction with a loaded model (model/model_file.h): preprocessing identical to the training
/// loader's validation path, batched inference on CPU or CUDA, and a file pipeline whose decode workers run
/// ahead of inference. Used by `vigil predict`; results come back in input order whatever the thread count.

#include <opencv2/core.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vigil/core/progress.h"
#include "vigil/data/preprocess.h"
#include "vigil/model/model_file.h"
#include "vigil/nn/precision.h"

namespace vigil::model {

/// How a Predictor runs. Thresholds < 0 keep the model file's values (ModelInfo::postprocess).
struct PredictOptions {
  int batch_size = 8;
  int decode_threads = 0;        ///< decode + preprocess workers (0 = every core)
  int prefetch_batches = 2;      ///< batches decoded ahead of inference (bounds memory)
  std::string device = "cpu";    ///< "cpu" or "cuda" (only when CUDA is available)
  double score_threshold = -1;   ///< detection: torchvision's box_score_thresh (0 keeps everything)
  double nms_iou = -1;           ///< detection: torchvision's box_nms_thresh
  int64_t max_detections = -1;   ///< detection: torchvision's box_detections_per_img
  bool fold_batch_norms = true;  ///< fold norms into convolutions (nn/fuse.h): same outputs up to rounding
  bool channels_last = true;     ///< NHWC convolution weights (nn/fuse.h): faster on CPU, same up to rounding
  bool embed = false;  ///< also fill Prediction::embedding (drift monitoring; from the same forward pass)
  std::string precision = "fp32";  ///< "fp32", "bf16" or "int8" (nn/precision.h, nn/quantize.h)
  /// int8: representative images to calibrate on (a file, a folder searched recursively, or @LIST, as
  /// collect_inputs reads them); calibration_images of them, evenly spaced in sorted order, are used.
  std::string calibration;
  int calibration_images = 16;

  template <class V>
  void visit(V& v) {
    v("batch_size", batch_size, "images per inference batch");
    v("decode_threads", decode_threads, "image decode and preprocessing workers (0 = every core)");
    v("prefetch_batches", prefetch_batches, "batches decoded ahead of inference (bounds memory)");
    v("device", device, "cpu or cuda");
    v("score_threshold", score_threshold, "detection: drop boxes scoring below this (< 0: the model's)");
    v("nms_iou", nms_iou, "detection: per-class NMS IoU threshold (< 0: the model's)");
    v("max_detections", max_detections, "detection: boxes kept per image (< 0: the model's)");
    v("fold_batch_norms", fold_batch_norms,
      "fold batch norms into convolutions (faster; equal up to rounding)");
    v("channels_last", channels_last,
      "channels-last convolution weights (faster on CPU; equal up to rounding)");
    v("embed", embed, "also compute each image's embedding (drift monitoring)");
    v("precision", precision,
      "fp32; bf16 on CPUs with AVX512_BF16/AMX (faster, within rounding); int8 for ResNet backbones on "
      "CPUs with VNNI (calibrated on `calibration`)");
    v("calibration", calibration, "int8: images to calibrate on (file, folder or @LIST)");
    v("calibration_images", calibration_images, "int8: how many of them to use");
  }
  /// Throws InvalidArgument naming the field; "cuda" without CUDA available is an error here.
  void validate() const;
};

/// One detected box in the pixel coordinates of the original image.
struct PredictedBox {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  float score = 0;
  int64_t class_id = 0;  ///< torchvision label index (0 is the background and never appears)
  std::string label;
};

/// What a model said about one image, or why it could not be read.
struct Prediction {
  std::string image;  ///< the path as given
  size_t index = 0;   ///< position in the input list
  int width = 0, height = 0;
  std::string error;  ///< non-empty when the image could not be used ("kind: detail")
  // classification
  int64_t class_id = -1;
  std::string label;
  float score = 0;
  std::vector<float> probs;  ///< softmax, by class index
  // detection
  std::vector<PredictedBox> boxes;  ///< descending score
  /// With PredictOptions::embed: the backbone's pooled features projected to kEmbeddingDims (embedding.h).
  std::vector<float> embedding;
  bool ok() const { return error.empty(); }
};

/// Runs one loaded model. Not thread-safe: one thread calls it (the pipeline's decode workers only call
/// preprocess(), which is).
class Predictor {
 public:
  /// Moves the model to options.device and applies the threshold overrides. Throws InvalidArgument on bad
  /// options.
  Predictor(LoadedModel model, PredictOptions options);

  const ModelInfo& info() const { return model_.info; }
  const PredictOptions& options() const { return options_; }
  bool is_detector() const { return static_cast<bool>(model_.detector); }
  /// Detection thresholds for the next predict() calls (the server changes them per group of requests).
  /// Classifiers ignore them.
  void set_postprocess(const nn::PostprocessOptions& post);
  /// What preprocess() does (the model file's preprocessing, missing mean/std filled with 0/1).
  const data::PreprocessOptions& preprocess_options() const { return input_; }
  /// The detection thresholds in use (the model file's, after PredictOptions' overrides).
  const nn::PostprocessOptions& postprocess() const { return model_.info.postprocess; }

  /// 8-bit BGR image -> the model's input tensor on the CPU: classifiers get the training loader's
  /// validation input (resize to the ModelInfo input size, RGB, /255, mean/std); detectors get RGB on 0..1
  /// at the original size (they resize and normalise inside, like torchvision). Thread-safe.
  torch::Tensor preprocess(const cv::Mat& bgr) const;

  /// Predicts a batch of preprocess()ed inputs into out[i] (same length), whose width and height must hold
  /// the original image size (detectors' boxes are in those pixels already; classifiers just report it).
  /// Detectors run images of one size per forward pass: torchvision pads a mixed batch to its largest image,
  /// which would make an image's boxes depend on its batch neighbours (and so on --batch and sharding).
  void predict(const std::vector<torch::Tensor>& inputs, const std::vector<Prediction*>& out);

 private:
  void fill_boxes(const nn::Detections& detections, Prediction& prediction) const;
  /// int8: calibrates on options_.calibration and quantises the model (nn/quantize.h).
  void quantize_int8();

  LoadedModel model_;
  PredictOptions options_;
  torch::Device device_;
  nn::Precision precision_ = nn::Precision::kFp32;
  data::PreprocessOptions input_;  ///< what preprocess() makes: the model file's, defaults filled in
};

/// One image to predict.
struct PredictInput {
  std::string path;
  size_t index = 0;  ///< position in the full input list (before sharding), reported in Prediction::index
};

/// Called once per input, in input order. `image` is the decoded BGR image when keep_images was set (for
/// drawing), else empty.
using PredictionSink = std::function<void(const Prediction& prediction, const cv::Mat& image)>;

/// Totals of a run.
struct PredictSummary {
  size_t predicted = 0;  ///< images the model ran on
  size_t failed = 0;     ///< images that could not be read or decoded (each reported to the sink)
};

/// Decodes the inputs on a worker pool, decode_threads wide and prefetch_batches ahead, while the calling
/// thread runs inference batch by batch; hands every result (failures included) to `sink` in input order.
/// Stops with Interrupted when an interrupt is requested between batches.
PredictSummary predict_files(Predictor& predictor, const std::vector<PredictInput>& inputs,
                             const PredictionSink& sink, bool keep_images, Progress* progress = nullptr);

/// Draws a prediction onto `bgr`: detections as labelled boxes, a classification as a labelled frame.
void draw_prediction(cv::Mat& bgr, const Prediction& prediction);

}  // namespace vigil::model
