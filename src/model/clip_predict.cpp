#include "vigil/model/clip_predict.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>

#include "vigil/core/error.h"
#include "vigil/data/loader.h"
#include "vigil/nn/classification/clip_classifier.h"
#include "vigil/nn/fuse.h"
#include "vigil/nn/zoo.h"

namespace vigil::model {

namespace {

/// Softmax over classes of logits [B, classes], as float32 on the CPU for reading rows.
torch::Tensor probabilities(const torch::Tensor& logits) {
  return torch::softmax(logits, 1).to(torch::kCPU, torch::kFloat32).contiguous();
}

std::vector<float> row(const torch::Tensor& probs, int64_t i) {
  const float* p = probs.data_ptr<float>() + i * probs.size(1);
  return {p, p + probs.size(1)};
}

}  // namespace

bool is_clip_model(const ModelInfo& info) {
  if (info.clip_length > 0) return true;
  try {
    return nn::find_model(info.arch).clip_length > 0;
  } catch (const InvalidArgument&) {
    return false;  // not a zoo name: an imported model, never a clip model
  }
}

ClipPredictor::ClipPredictor(LoadedModel model, PredictOptions options)
    : model_(std::move(model)), options_(std::move(options)), device_(torch::kCPU) {
  options_.validate();
  const ModelInfo& info = model_.info;
  VIGIL_CHECK(is_clip_model(info) && model_.classifier &&
                  std::dynamic_pointer_cast<nn::ClipClassifierImpl>(model_.classifier),
              "expected a clip classifier (clip_<backbone>_<lstm|gru>), got model '{}'", info.arch);
  VIGIL_CHECK(options_.precision == "fp32",
              "expected precision fp32 for clip model '{}' (its LSTM runs in float32 only), got {}",
              info.arch, options_.precision);
  clip_length_ = info.clip_length > 0 ? info.clip_length : nn::find_model(info.arch).clip_length;
  device_ = torch::Device(options_.device);
  model_.module->to(device_);
  model_.module->eval();
  if (options_.fold_batch_norms) nn::fold_batch_norms(*model_.module);
  if (options_.channels_last && device_.is_cpu()) nn::to_channels_last(*model_.module);
  input_ = info.preprocess;
  if (input_.mean.empty()) input_.mean = {0.0, 0.0, 0.0};
  if (input_.std.empty()) input_.std = {1.0, 1.0, 1.0};
  input_.normalize = true;
  input_.validate();
  VIGIL_CHECK(input_.width > 0 && input_.height > 0, "expected a clip model input size, got {}x{}",
              input_.width, input_.height);
}

torch::Tensor ClipPredictor::preprocess(const cv::Mat& bgr) const {
  return data::classification_input(bgr, input_);
}

torch::Tensor ClipPredictor::model_input(const torch::Tensor& windows) const {
  torch::Tensor x = windows.to(device_);
  // Frames channels-last, so the model's flatten to [B*T, 3, H, W] is a channels-last view.
  if (options_.channels_last && device_.is_cpu())
    x = x.permute({0, 1, 3, 4, 2}).contiguous().permute({0, 1, 4, 2, 3});
  return x;
}

std::vector<ClipPrediction> ClipPredictor::to_predictions(const torch::Tensor& probs) const {
  const auto& names = model_.info.class_names;
  std::vector<ClipPrediction> out(static_cast<size_t>(probs.size(0)));
  for (int64_t i = 0; i < probs.size(0); ++i) {
    ClipPrediction& p = out[static_cast<size_t>(i)];
    p.probs = row(probs, i);
    const auto best = std::max_element(p.probs.begin(), p.probs.end()) - p.probs.begin();
    p.class_id = best;
    p.score = p.probs[static_cast<size_t>(best)];
    p.label = best < static_cast<int64_t>(names.size()) ? names[static_cast<size_t>(best)]
                                                        : fmt::format("class_{}", best);
  }
  return out;
}

std::vector<ClipPrediction> ClipPredictor::predict(const torch::Tensor& windows, bool per_frame) {
  VIGIL_CHECK(windows.dim() == 5 && windows.size(2) == 3 && windows.size(0) >= 1 && windows.size(1) >= 1,
              "expected windows [B, T, 3, H, W] with B, T >= 1, got {}", c10::str(windows.sizes()));
  c10::InferenceMode inference;
  auto& net = dynamic_cast<nn::ClipClassifierImpl&>(*model_.classifier);
  const int64_t b = windows.size(0), t = windows.size(1);
  // [B, T, F]: the CNN runs once for both outputs.
  const torch::Tensor features = net.frame_features(model_input(windows));
  std::vector<ClipPrediction> out = to_predictions(probabilities(net.classify_features(features)));
  if (per_frame) {
    // Each frame as a window of one: [B*T, 1, F] through the recurrent layer and the head.
    const torch::Tensor frame_probs =
        probabilities(net.classify_features(features.reshape({b * t, 1, features.size(2)})));
    for (int64_t i = 0; i < b; ++i)
      for (int64_t k = 0; k < t; ++k)
        out[static_cast<size_t>(i)].frame_probs.push_back(row(frame_probs, i * t + k));
  }
  return out;
}

torch::Tensor ClipPredictor::frame_features(const torch::Tensor& frames) {
  VIGIL_CHECK(frames.dim() == 4 && frames.size(1) == 3 && frames.size(0) >= 1,
              "expected frames [N, 3, H, W] with N >= 1, got {}", c10::str(frames.sizes()));
  c10::InferenceMode inference;
  auto& net = dynamic_cast<nn::ClipClassifierImpl&>(*model_.classifier);
  // The N frames as one window of N: the backbone sees the same [N, 3, H, W] batch either way.
  return net.frame_features(model_input(frames.unsqueeze(0))).squeeze(0);
}

std::vector<ClipPrediction> ClipPredictor::classify_features(const torch::Tensor& features) {
  c10::InferenceMode inference;
  auto& net = dynamic_cast<nn::ClipClassifierImpl&>(*model_.classifier);
  return to_predictions(probabilities(net.classify_features(features.to(device_))));  // the net checks shapes
}

}  // namespace vigil::model
