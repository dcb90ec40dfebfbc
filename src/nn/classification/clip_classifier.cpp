#include "vigil/nn/classification/clip_classifier.h"

#include <fmt/format.h>

#include <algorithm>

#include "vigil/core/error.h"

namespace vigil::nn {

namespace {

/// A child module registered under `name` (SmallCnn's layers are reached by their documented names).
std::shared_ptr<torch::nn::Module> child(torch::nn::Module& parent, const std::string& name) {
  auto children = parent.named_children();
  auto* found = children.find(name);
  VIGIL_ASSERT(found, "module has no child '{}'", name);
  return *found;
}

template <typename Holder>
auto* child_as(torch::nn::Module& parent, const std::string& name) {
  auto* impl = child(parent, name)->as<Holder>();
  VIGIL_ASSERT(impl, "child '{}' has an unexpected type", name);
  return impl;
}

}  // namespace

const char* recurrent_kind_name(RecurrentKind kind) {
  return kind == RecurrentKind::kLstm ? "lstm" : "gru";
}

RecurrentKind parse_recurrent_kind(const std::string& s) {
  if (s == "lstm") return RecurrentKind::kLstm;
  if (s == "gru") return RecurrentKind::kGru;
  throw InvalidArgument(fmt::format("expected a recurrent layer 'lstm' or 'gru', got '{}'", s));
}

const char* clip_pooling_name(ClipPooling pooling) {
  return pooling == ClipPooling::kLast ? "last" : "mean";
}

ClipPooling parse_clip_pooling(const std::string& s) {
  if (s == "last") return ClipPooling::kLast;
  if (s == "mean") return ClipPooling::kMean;
  throw InvalidArgument(fmt::format("expected a clip pooling 'last' or 'mean', got '{}'", s));
}

const std::vector<std::string>& clip_backbone_names() {
  static const std::vector<std::string> kNames = {"mask_small_cnn",     "mobilenet_v2", "mobilenet_v3_large",
                                                  "mobilenet_v3_small", "resnet18",     "resnet50"};
  return kNames;
}

void ClipClassifierOptions::validate() const {
  const auto& names = clip_backbone_names();
  VIGIL_CHECK(std::find(names.begin(), names.end(), backbone_) != names.end(),
              "expected a clip backbone, one of: {}; got '{}'", fmt::join(names, ", "), backbone_);
  VIGIL_CHECK(hidden_size_ >= 1, "expected hidden_size >= 1, got {}", hidden_size_);
  VIGIL_CHECK(num_layers_ >= 1, "expected num_layers >= 1, got {}", num_layers_);
  VIGIL_CHECK(rnn_dropout_ >= 0.0 && rnn_dropout_ < 1.0, "expected rnn_dropout in [0, 1), got {}",
              rnn_dropout_);
  VIGIL_CHECK(dropout_ >= 0.0 && dropout_ < 1.0, "expected dropout in [0, 1), got {}", dropout_);
  VIGIL_CHECK(num_classes_ >= 1, "expected num_classes >= 1, got {}", num_classes_);
  VIGIL_CHECK(clip_length_ >= 1, "expected clip_length >= 1 (frames per clip), got {}", clip_length_);
}

ClipClassifierImpl::ClipClassifierImpl(const ClipClassifierOptions& options) : options_(options) {
  options_.validate();
  make_backbone();
  const auto& o = options_;
  if (o.rnn() == RecurrentKind::kLstm) {
    lstm_ = register_module("rnn", torch::nn::LSTM(torch::nn::LSTMOptions(feature_size_, o.hidden_size())
                                                       .num_layers(o.num_layers())
                                                       .dropout(o.rnn_dropout())
                                                       .bidirectional(o.bidirectional())
                                                       .batch_first(true)));
  } else {
    gru_ = register_module("rnn", torch::nn::GRU(torch::nn::GRUOptions(feature_size_, o.hidden_size())
                                                     .num_layers(o.num_layers())
                                                     .dropout(o.rnn_dropout())
                                                     .bidirectional(o.bidirectional())
                                                     .batch_first(true)));
  }
  const int64_t directions = o.bidirectional() ? 2 : 1;
  fc_ =
      register_module("fc", make_linear(directions * o.hidden_size(), o.num_classes(), LinearInit::kDefault));
}

void ClipClassifierImpl::make_backbone() {
  const std::string& name = options_.backbone();
  if (name == "mobilenet_v2") {
    mobilenet_v2_ = MobileNetV2(MobileNetV2Options().include_top(false));
    feature_size_ = mobilenet_v2_->last_channel();
    backbone_ = mobilenet_v2_.ptr();
  } else if (name == "mobilenet_v3_large" || name == "mobilenet_v3_small") {
    mobilenet_v3_ = MobileNetV3(MobileNetV3Options(name).include_top(false));
    feature_size_ = mobilenet_v3_->stages().out_channels.back();
    backbone_ = mobilenet_v3_.ptr();
  } else if (name == "resnet18" || name == "resnet50") {
    resnet_ = ResNet(resnet_options(name == "resnet18" ? 18 : 50).include_top(false));
    feature_size_ = resnet_->stage_channels().back();
    backbone_ = resnet_.ptr();
  } else {
    VIGIL_ASSERT(name == "mask_small_cnn", "unhandled clip backbone '{}'", name);
    small_cnn_ = SmallCnn(SmallCnnOptions().num_classes(1));
    // The frame feature is the 256-wide dense layer (classifier.0 + classifier.1); its last Linear goes.
    child(*small_cnn_, "classifier")->unregister_module("4");
    feature_size_ =
        child_as<torch::nn::Linear>(*child(*small_cnn_, "classifier"), "0")->options.out_features();
    backbone_ = small_cnn_.ptr();
  }
  register_module("backbone", backbone_);
}

torch::Tensor ClipClassifierImpl::small_cnn_features(const torch::Tensor& frames) {
  auto& features = *child(*small_cnn_, "features");
  auto x = frames;
  for (int i = 0; i < 3; ++i) {
    auto* conv = child_as<torch::nn::Conv2d>(features, std::to_string(4 * i));
    auto* norm = child_as<torch::nn::BatchNorm2d>(features, std::to_string(4 * i + 2));
    x = torch::max_pool2d(norm->forward(conv->forward(x).relu_()), {2, 2});
  }
  auto& head = *child(*small_cnn_, "classifier");
  auto* dense = child_as<torch::nn::Linear>(head, "0");
  auto* dense_norm = child_as<torch::nn::BatchNorm1d>(head, "1");
  return dense_norm->forward(dense->forward(x.flatten(1))).relu_();
}

torch::Tensor ClipClassifierImpl::encode_frames(const torch::Tensor& frames) {
  if (mobilenet_v2_)
    return torch::adaptive_avg_pool2d(mobilenet_v2_->features()->forward(frames), {1, 1}).flatten(1);
  if (mobilenet_v3_)
    return torch::adaptive_avg_pool2d(mobilenet_v3_->features()->forward(frames), {1, 1}).flatten(1);
  if (resnet_) return torch::adaptive_avg_pool2d(resnet_->forward_stages(frames).back(), {1, 1}).flatten(1);
  return small_cnn_features(frames);
}

torch::Tensor ClipClassifierImpl::frame_features(const torch::Tensor& clips) {
  VIGIL_CHECK(clips.dim() == 5 && clips.size(2) == 3 && clips.size(0) >= 1 && clips.size(1) >= 1,
              "expected clips [B, T, 3, H, W] with B, T >= 1, got {}", c10::str(clips.sizes()));
  const int64_t batch = clips.size(0), frames = clips.size(1);
  auto features = encode_frames(clips.flatten(0, 1));
  return features.view({batch, frames, feature_size_});
}

torch::Tensor ClipClassifierImpl::classify_features(const torch::Tensor& features) {
  VIGIL_CHECK(features.dim() == 3 && features.size(2) == feature_size_ && features.size(0) >= 1 &&
                  features.size(1) >= 1,
              "expected frame features [B, T, {}] with B, T >= 1, got {}", feature_size_,
              c10::str(features.sizes()));
  torch::Tensor outputs, hidden;
  if (lstm_) {
    auto [out, state] = lstm_->forward(features);
    outputs = out;
    hidden = std::get<0>(state);
  } else {
    std::tie(outputs, hidden) = gru_->forward(features);
  }
  torch::Tensor pooled;
  if (options_.pooling() == ClipPooling::kMean) {
    pooled = outputs.mean(1);
  } else {
    // hidden [layers * directions, B, H]: the last layer's final state of each direction, side by side.
    const int64_t directions = options_.bidirectional() ? 2 : 1, batch = features.size(0);
    pooled = hidden.view({options_.num_layers(), directions, batch, options_.hidden_size()})
                 .select(0, options_.num_layers() - 1)
                 .transpose(0, 1)
                 .reshape({batch, directions * options_.hidden_size()});
  }
  if (options_.dropout() > 0) pooled = torch::dropout(pooled, options_.dropout(), is_training());
  return fc_->forward(pooled);
}

torch::Tensor ClipClassifierImpl::forward(const torch::Tensor& clips) {
  return classify_features(frame_features(clips));
}

void ClipClassifierImpl::replace_head(int64_t num_classes, uint64_t seed) {
  VIGIL_CHECK(num_classes >= 1, "expected num_classes >= 1, got {}", num_classes);
  fc_ =
      replace_module("fc", make_linear(fc_->options.in_features(), num_classes, LinearInit::kDefault, seed));
  options_.num_classes(num_classes);
}

void ClipClassifierImpl::freeze_backbone(int trainable_stages) {
  backbone_->freeze_backbone(trainable_stages);
  if (small_cnn_) set_requires_grad(*child(*small_cnn_, "classifier"), trainable_stages > 0);
  for (auto& item : named_children()) {
    if (item.key() != "backbone") set_requires_grad(*item.value(), true);
  }
}

int ClipClassifierImpl::num_backbone_stages() const {
  return backbone_->num_backbone_stages();
}

}  // namespace vigil::nn
