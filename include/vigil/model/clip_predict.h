#pragma once
/// Inference with a clip classifier (CNN per frame + LSTM/GRU, nn/classification/clip_classifier.h): windows
/// of T frames in, one class per window out. The image Predictor (model/predict.h) refuses these models,
/// since one image is not what they take; `vigil predict` and `vigil evaluate` cut windows and use this
/// instead.
///
/// Frames are preprocessed exactly as the training loader's validation path (data::classification_input), so
/// a window predicted here sees the pixels the model was validated on.

#include <torch/types.h>
#include <opencv2/core.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "vigil/model/model_file.h"
#include "vigil/model/predict.h"

namespace vigil::model {

/// True when `info.arch` is a clip classifier (its zoo entry has a clip length).
bool is_clip_model(const ModelInfo& info);

/// What the model said about one window.
struct ClipPrediction {
  int64_t class_id = -1;
  std::string label;
  float score = 0;
  std::vector<float> probs;  ///< softmax, by class index
  /// When asked for: each frame alone through the model (its CNN, then the recurrent layer and head over a
  /// window of that one frame), [T][classes] — the single-frame baseline of the same network.
  std::vector<std::vector<float>> frame_probs;
};

/// Runs one loaded clip model. Not thread-safe (one thread calls predict(); preprocess() is thread-safe).
class ClipPredictor {
 public:
  /// Moves the model to options.device (batch norms folded, channels-last on CPU as options say). Throws
  /// InvalidArgument when the model is not a clip classifier or the options are bad.
  ClipPredictor(LoadedModel model, PredictOptions options);

  const ModelInfo& info() const { return model_.info; }
  /// Frames per window: the model file's clip_length.
  int clip_length() const { return clip_length_; }
  /// What preprocess() does (the model file's size and normalisation).
  const data::PreprocessOptions& preprocess_options() const { return input_; }
  /// One 8-bit BGR frame -> [3, H, W] float, as the training loader's validation input. Thread-safe.
  torch::Tensor preprocess(const cv::Mat& bgr) const;
  /// Windows [B, T, 3, H, W] of preprocess()ed frames (any T >= 1) -> one prediction per window; with
  /// `per_frame`, also every frame's own probabilities.
  std::vector<ClipPrediction> predict(const torch::Tensor& windows, bool per_frame = false);

  /// predict() in two steps, for a window that slides over a stream one frame at a time (`vigil watch`):
  /// each frame goes through the CNN once, when it arrives, instead of once in each of the T windows it is
  /// part of. frame_features: preprocess()ed frames [N, 3, H, W] -> their features [N, F].
  torch::Tensor frame_features(const torch::Tensor& frames);
  /// Windows of frame_features() rows [B, T, F] (any T >= 1) -> one prediction per window: the recurrent
  /// layer and the head, as predict() runs them on the same frames.
  std::vector<ClipPrediction> classify_features(const torch::Tensor& features);

 private:
  /// Frames [B, T, 3, H, W] on the model's device, channels-last when the options say so.
  torch::Tensor model_input(const torch::Tensor& windows) const;
  /// One prediction per row of softmax probabilities [B, classes].
  std::vector<ClipPrediction> to_predictions(const torch::Tensor& probs) const;

  LoadedModel model_;
  PredictOptions options_;
  torch::Device device_;
  data::PreprocessOptions input_;
  int clip_length_ = 0;
};

}  // namespace vigil::model
