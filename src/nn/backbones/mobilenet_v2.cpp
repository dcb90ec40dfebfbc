#include "vigil/nn/backbones/mobilenet_v2.h"

#include <algorithm>
#include <array>

#include "vigil/core/error.h"

namespace vigil::nn {

int64_t make_divisible(double v, int64_t divisor, std::optional<int64_t> min_value) {
  const int64_t min_v = min_value.value_or(divisor);
  // int(v + divisor / 2) truncates toward zero, as Python's int() does for these positive values.
  int64_t new_v = std::max(min_v, static_cast<int64_t>(v + divisor / 2.0) / divisor * divisor);
  if (static_cast<double>(new_v) < 0.9 * v) new_v += divisor;
  return new_v;
}

torch::Tensor apply_activation_(torch::Tensor x, Activation act) {
  switch (act) {
    case Activation::kNone:
      return x;
    case Activation::kReLU:
      return x.relu_();
    case Activation::kReLU6:
      return torch::hardtanh_(x, 0.0, 6.0);
    case Activation::kHardswish:
      return torch::hardswish_(x);
    case Activation::kHardsigmoid:
      return torch::hardsigmoid_(x);
  }
  return x;
}

ConvNormActivationImpl::ConvNormActivationImpl(const ConvNormActivationOptions& options) : options_(options) {
  const auto& o = options_;
  conv_ = register_module(
      "0", torch::nn::Conv2d(torch::nn::Conv2dOptions(o.in_channels(), o.out_channels(), o.kernel_size())
                                 .stride(o.stride())
                                 .padding((o.kernel_size() - 1) / 2 * o.dilation())
                                 .dilation(o.dilation())
                                 .groups(o.groups())
                                 .bias(!o.norm().has_value())));
  if (o.norm()) norm_ = Norm2d(*this, "1", *o.norm(), o.out_channels());
}

torch::Tensor ConvNormActivationImpl::forward(const torch::Tensor& x) {
  auto out = conv_->forward(x);
  if (!norm_.is_empty()) out = norm_.forward(out);
  return apply_activation_(out, options_.activation());
}

void init_mobilenet_weights(torch::nn::Module& root) {
  torch::NoGradGuard no_grad;
  root.apply([](torch::nn::Module& module) {
    if (auto* conv = module.as<torch::nn::Conv2dImpl>()) {
      torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut);
      if (conv->bias.defined()) conv->bias.zero_();
    } else if (auto* linear = module.as<torch::nn::LinearImpl>()) {
      linear->weight.normal_(0.0, 0.01);
      linear->bias.zero_();
    }
  });
  init_norms(root);
}

std::vector<int> FeatureStages::stage_indices() const {
  std::vector<int> out = {0};
  for (size_t i = 0; i < is_cn.size(); ++i)
    if (is_cn[i]) out.push_back(static_cast<int>(i));
  out.push_back(static_cast<int>(is_cn.size()) - 1);
  return out;
}

void freeze_feature_stages(torch::nn::Sequential& features, const FeatureStages& stages,
                           int trainable_layers) {
  const auto indices = stages.stage_indices();
  const int num_stages = static_cast<int>(indices.size());
  VIGIL_CHECK(trainable_layers >= 0 && trainable_layers <= num_stages,
              "expected trainable layers in [0, {}], got {}", num_stages, trainable_layers);
  const int freeze_before =
      trainable_layers == 0 ? static_cast<int>(features->size()) : indices[num_stages - trainable_layers];
  for (int i = 0; i < freeze_before; ++i) set_requires_grad(*features->ptr(i), false);
}

std::vector<torch::Tensor> forward_feature_blocks(torch::nn::Sequential& features, torch::Tensor x,
                                                  const std::vector<int>& return_indices) {
  VIGIL_CHECK(!return_indices.empty(), "expected at least one feature index to return, got none");
  const int last = *std::max_element(return_indices.begin(), return_indices.end());
  VIGIL_CHECK(last < static_cast<int>(features->size()), "expected feature indices < {}, got {}",
              features->size(), last);
  std::vector<torch::Tensor> kept(static_cast<size_t>(last) + 1);
  auto it = features->begin();
  for (int i = 0; i <= last; ++i, ++it) {
    x = it->forward(x);
    kept[i] = x;
  }
  std::vector<torch::Tensor> out;
  for (int i : return_indices) out.push_back(kept[i]);
  return out;
}

MobileNetV2BlockImpl::MobileNetV2BlockImpl(const MobileNetV2BlockOptions& o) {
  VIGIL_CHECK(o.stride() == 1 || o.stride() == 2, "expected stride 1 or 2, got {}", o.stride());
  const int64_t hidden = o.in() * o.expand_ratio();
  use_res_connect_ = o.stride() == 1 && o.in() == o.out();
  conv_ = register_module("conv", torch::nn::Sequential());
  if (o.expand_ratio() != 1) {
    conv_->push_back(ConvNormActivation(
        ConvNormActivationOptions(o.in(), hidden, 1).norm(o.norm()).activation(Activation::kReLU6)));
  }
  conv_->push_back(ConvNormActivation(ConvNormActivationOptions(hidden, hidden, 3)
                                          .stride(o.stride())
                                          .groups(hidden)
                                          .norm(o.norm())
                                          .activation(Activation::kReLU6)));
  conv_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(hidden, o.out(), 1).bias(false)));
  conv_->push_back(make_norm2d(o.norm(), o.out()));
}

torch::Tensor MobileNetV2BlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor out;
  if (tail_folded_) {
    VIGIL_CHECK(!is_training(), "expected an eval-mode model after folding batch norms, got train mode");
    out = x;
    const size_t n = conv_->size() - 1;  // the folded norm is skipped
    for (size_t i = 0; i < n; ++i) out = (conv_->begin() + static_cast<std::ptrdiff_t>(i))->forward(out);
  } else {
    out = conv_->forward(x);
  }
  return use_res_connect_ ? x + out : out;
}

int MobileNetV2BlockImpl::fold_norm() {
  if (tail_folded_) return 0;
  const size_t n = conv_->size();
  fold_norm_into_conv(*conv_[n - 2]->as<torch::nn::Conv2dImpl>(), *conv_[n - 1]);
  tail_folded_ = true;
  return 1;
}

void MobileNetV2Options::validate() const {
  VIGIL_CHECK(!include_top_ || num_classes_ >= 1, "expected num_classes >= 1, got {}", num_classes_);
  VIGIL_CHECK(width_mult_ > 0, "expected width_mult > 0, got {}", width_mult_);
  VIGIL_CHECK(round_nearest_ >= 1, "expected round_nearest >= 1, got {}", round_nearest_);
  VIGIL_CHECK(dropout_ >= 0.0 && dropout_ < 1.0, "expected dropout in [0, 1), got {}", dropout_);
}

MobileNetV2Impl::MobileNetV2Impl(const MobileNetV2Options& options) : options_(options) {
  options_.validate();
  const auto& o = options_;
  // t (expansion), c (channels), n (repeats), s (first stride): torchvision's default setting.
  static constexpr std::array<std::array<int, 4>, 7> kSetting = {{{1, 16, 1, 1},
                                                                  {6, 24, 2, 2},
                                                                  {6, 32, 3, 2},
                                                                  {6, 64, 4, 2},
                                                                  {6, 96, 3, 1},
                                                                  {6, 160, 3, 2},
                                                                  {6, 320, 1, 1}}};
  int64_t in = make_divisible(32 * o.width_mult(), o.round_nearest());
  last_channel_ = make_divisible(1280 * std::max(1.0, o.width_mult()), o.round_nearest());
  features_ = register_module("features", torch::nn::Sequential());
  features_->push_back(ConvNormActivation(
      ConvNormActivationOptions(3, in, 3).stride(2).norm(o.norm()).activation(Activation::kReLU6)));
  stages_.is_cn.push_back(false);
  stages_.out_channels.push_back(in);
  for (const auto& [t, c, n, s] : kSetting) {
    const int64_t out = make_divisible(c * o.width_mult(), o.round_nearest());
    for (int i = 0; i < n; ++i) {
      const int64_t stride = i == 0 ? s : 1;
      features_->push_back(MobileNetV2Block(MobileNetV2BlockOptions(in, out, stride, t).norm(o.norm())));
      stages_.is_cn.push_back(stride > 1);
      stages_.out_channels.push_back(out);
      in = out;
    }
  }
  features_->push_back(ConvNormActivation(
      ConvNormActivationOptions(in, last_channel_, 1).norm(o.norm()).activation(Activation::kReLU6)));
  stages_.is_cn.push_back(false);
  stages_.out_channels.push_back(last_channel_);
  if (o.include_top()) {
    classifier_ = register_module("classifier", std::make_shared<torch::nn::Module>());
    fc_ = classifier_->register_module("1", torch::nn::Linear(last_channel_, o.num_classes()));
  }
  init_mobilenet_weights(*this);
}

torch::Tensor MobileNetV2Impl::forward(const torch::Tensor& images) {
  return forward_with_embedding(images).first;
}

std::pair<torch::Tensor, torch::Tensor> MobileNetV2Impl::forward_with_embedding(const torch::Tensor& images) {
  VIGIL_CHECK(fc_, "expected a MobileNetV2 built with include_top, got one without a classifier");
  const auto pooled = torch::adaptive_avg_pool2d(features_->forward(images), {1, 1}).flatten(1);
  auto x = pooled;
  if (options_.dropout() > 0) x = torch::dropout(x, options_.dropout(), is_training());
  return {fc_->forward(x), pooled};
}

void MobileNetV2Impl::replace_head(int64_t num_classes, uint64_t seed) {
  VIGIL_CHECK(num_classes >= 1, "expected num_classes >= 1, got {}", num_classes);
  VIGIL_CHECK(fc_, "expected a MobileNetV2 with a classifier, got one without");
  fc_ = classifier_->replace_module("1", make_linear(last_channel_, num_classes, LinearInit::kNormal, seed));
  options_.num_classes(num_classes);
}

void MobileNetV2Impl::freeze_backbone(int trainable_stages) {
  // Start from all-trainable so successive calls do not accumulate.
  set_requires_grad(*this, true);
  freeze_feature_stages(features_, stages_, trainable_stages);
}

int MobileNetV2Impl::num_backbone_stages() const {
  return static_cast<int>(stages_.stage_indices().size());
}

int64_t MobileNetV2Impl::num_classes() const {
  return fc_ ? fc_->options.out_features() : 0;
}

}  // namespace vigil::nn
