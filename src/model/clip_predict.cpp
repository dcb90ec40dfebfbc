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

std::vector<ClipPrediction> ClipPredictor::predict(const torch::Tensor& windows, bool per_frame) {
  VIGIL_CHECK(windows.dim() == 5 && windows.size(2) == 3 && windows.size(0) >= 1 && windows.size(1) >= 1,
              "expected windows [B, T, 3, H, W] with B, T >= 1, got {}", c10::str(windows.sizes()));
  c10::InferenceMode inference;
  auto& net = dynamic_cast<nn::ClipClassifierImpl&>(*model_.classifier);
  torch::Tensor x = windows.to(device_);
  // Frames channels-last, so the model's flatten to [B*T, 3, H, W] is a channels-last view.
  if (options_.channels_last && device_.is_cpu())
    x = x.permute({0, 1, 3, 4, 2}).contiguous().permute({0, 1, 4, 2, 3});
  const int64_t b = x.size(0), t = x.size(1);
  const torch::Tensor features = net.frame_features(x);  // [B, T, F]: the CNN runs once for both outputs
  const torch::Tensor probs =
      torch::softmax(net.classify_features(features), 1).to(torch::kCPU, torch::kFloat32).contiguous();
  torch::Tensor frame_probs;
  if (per_frame) {
    // Each frame as a window of one: [B*T, 1, F] through the recurrent layer and the head.
    frame_probs = torch::softmax(net.classify_features(features.reshape({b * t, 1, features.size(2)})), 1)
                      .to(torch::kCPU, torch::kFloat32)
                      .contiguous();
  }
  std::vector<ClipPrediction> out(static_cast<size_t>(b));
  const auto& names = model_.info.class_names;
  for (int64_t i = 0; i < b; ++i) {
    ClipPrediction& p = out[static_cast<size_t>(i)];
    p.probs = row(probs, i);
    const auto best = std::max_element(p.probs.begin(), p.probs.end()) - p.probs.begin();
    p.class_id = best;
    p.score = p.probs[static_cast<size_t>(best)];
    p.label = best < static_cast<int64_t>(names.size()) ? names[static_cast<size_t>(best)]
                                                        : fmt::format("class_{}", best);
    if (per_frame) {
      for (int64_t k = 0; k < t; ++k) p.frame_probs.push_back(row(frame_probs, i * t + k));
    }
  }
  return out;
}

}  // namespace vigil::model
