#include "vigil/nn/backbones/mobilenet_v3.h"

#include "vigil/core/error.h"

namespace vigil::nn {

SqueezeExcitationImpl::SqueezeExcitationImpl(int64_t input_channels, int64_t squeeze_channels) {
  fc1_ = register_module("fc1",
                         torch::nn::Conv2d(torch::nn::Conv2dOptions(input_channels, squeeze_channels, 1)));
  fc2_ = register_module("fc2",
                         torch::nn::Conv2d(torch::nn::Conv2dOptions(squeeze_channels, input_channels, 1)));
}

torch::Tensor SqueezeExcitationImpl::forward(const torch::Tensor& x) {
  auto scale = fc1_->forward(torch::adaptive_avg_pool2d(x, {1, 1})).relu_();
  scale = apply_activation_(fc2_->forward(scale), Activation::kHardsigmoid);
  return scale * x;
}

MobileNetV3BlockImpl::MobileNetV3BlockImpl(const MobileNetV3BlockConfig& c, const NormLayerOptions& norm) {
  VIGIL_CHECK(c.stride == 1 || c.stride == 2, "expected stride 1 or 2, got {}", c.stride);
  use_res_connect_ = c.stride == 1 && c.input_channels == c.out_channels;
  const Activation act = c.use_hs ? Activation::kHardswish : Activation::kReLU;
  block_ = register_module("block", torch::nn::Sequential());
  if (c.expanded_channels != c.input_channels) {
    block_->push_back(ConvNormActivation(
        ConvNormActivationOptions(c.input_channels, c.expanded_channels, 1).norm(norm).activation(act)));
  }
  block_->push_back(
      ConvNormActivation(ConvNormActivationOptions(c.expanded_channels, c.expanded_channels, c.kernel)
                             .stride(c.dilation > 1 ? 1 : c.stride)
                             .dilation(c.dilation)
                             .groups(c.expanded_channels)
                             .norm(norm)
                             .activation(act)));
  if (c.use_se) {
    block_->push_back(SqueezeExcitation(c.expanded_channels, make_divisible(c.expanded_channels / 4, 8)));
  }
  block_->push_back(ConvNormActivation(ConvNormActivationOptions(c.expanded_channels, c.out_channels, 1)
                                           .norm(norm)
                                           .activation(Activation::kNone)));
}

torch::Tensor MobileNetV3BlockImpl::forward(const torch::Tensor& x) {
  auto result = block_->forward(x);
  if (use_res_connect_) result += x;
  return result;
}

bool MobileNetV3Options::is_large() const {
  return arch_ == "large" || arch_ == "mobilenet_v3_large";
}

void MobileNetV3Options::validate() const {
  VIGIL_CHECK(is_large() || arch_ == "small" || arch_ == "mobilenet_v3_small",
              "expected MobileNetV3 arch 'large' or 'small', got '{}'", arch_);
  VIGIL_CHECK(!include_top_ || num_classes_ >= 1, "expected num_classes >= 1, got {}", num_classes_);
  VIGIL_CHECK(width_mult_ > 0, "expected width_mult > 0, got {}", width_mult_);
  VIGIL_CHECK(dropout_ >= 0.0 && dropout_ < 1.0, "expected dropout in [0, 1), got {}", dropout_);
}

std::vector<MobileNetV3BlockConfig> mobilenet_v3_config(const MobileNetV3Options& options,
                                                        int64_t* last_channel) {
  options.validate();
  const int64_t r = options.reduced_tail() ? 2 : 1;
  const int64_t d = options.dilated() ? 2 : 1;
  const double w = options.width_mult();
  auto adjust = [w](int64_t channels) { return make_divisible(static_cast<double>(channels) * w, 8); };
  // input, kernel, expanded, out, SE, HS, stride, dilation (torchvision's bneck_conf rows; "C" = strided
  // stage).
  auto row = [&](int64_t in, int64_t k, int64_t exp, int64_t out, bool se, bool hs, int64_t s, int64_t dil) {
    return MobileNetV3BlockConfig{adjust(in), k, adjust(exp), adjust(out), se, hs, s, dil};
  };
  if (options.is_large()) {
    *last_channel = adjust(1280 / r);
    return {row(16, 3, 16, 16, false, false, 1, 1),
            row(16, 3, 64, 24, false, false, 2, 1),  // C1
            row(24, 3, 72, 24, false, false, 1, 1),
            row(24, 5, 72, 40, true, false, 2, 1),  // C2
            row(40, 5, 120, 40, true, false, 1, 1),
            row(40, 5, 120, 40, true, false, 1, 1),
            row(40, 3, 240, 80, false, true, 2, 1),  // C3
            row(80, 3, 200, 80, false, true, 1, 1),
            row(80, 3, 184, 80, false, true, 1, 1),
            row(80, 3, 184, 80, false, true, 1, 1),
            row(80, 3, 480, 112, true, true, 1, 1),
            row(112, 3, 672, 112, true, true, 1, 1),
            row(112, 5, 672, 160 / r, true, true, 2, d),  // C4
            row(160 / r, 5, 960 / r, 160 / r, true, true, 1, d),
            row(160 / r, 5, 960 / r, 160 / r, true, true, 1, d)};
  }
  *last_channel = adjust(1024 / r);
  return {row(16, 3, 16, 16, true, false, 2, 1),   // C1
          row(16, 3, 72, 24, false, false, 2, 1),  // C2
          row(24, 3, 88, 24, false, false, 1, 1),
          row(24, 5, 96, 40, true, true, 2, 1),  // C3
          row(40, 5, 240, 40, true, true, 1, 1),
          row(40, 5, 240, 40, true, true, 1, 1),
          row(40, 5, 120, 48, true, true, 1, 1),
          row(48, 5, 144, 48, true, true, 1, 1),
          row(48, 5, 288, 96 / r, true, true, 2, d),  // C4
          row(96 / r, 5, 576 / r, 96 / r, true, true, 1, d),
          row(96 / r, 5, 576 / r, 96 / r, true, true, 1, d)};
}

MobileNetV3Impl::MobileNetV3Impl(const MobileNetV3Options& options) : options_(options) {
  const auto config = mobilenet_v3_config(options_, &last_channel_);
  const auto& norm = options_.norm();
  features_ = register_module("features", torch::nn::Sequential());
  const int64_t stem = config.front().input_channels;
  features_->push_back(ConvNormActivation(
      ConvNormActivationOptions(3, stem, 3).stride(2).norm(norm).activation(Activation::kHardswish)));
  stages_.is_cn.push_back(false);
  stages_.out_channels.push_back(stem);
  for (const auto& c : config) {
    features_->push_back(MobileNetV3Block(c, norm));
    stages_.is_cn.push_back(c.stride > 1);
    stages_.out_channels.push_back(c.out_channels);
  }
  const int64_t last_in = config.back().out_channels;
  const int64_t last_out = 6 * last_in;
  features_->push_back(ConvNormActivation(
      ConvNormActivationOptions(last_in, last_out, 1).norm(norm).activation(Activation::kHardswish)));
  stages_.is_cn.push_back(false);
  stages_.out_channels.push_back(last_out);
  if (options_.include_top()) {
    classifier_ = register_module("classifier", std::make_shared<torch::nn::Module>());
    fc_hidden_ = classifier_->register_module("0", torch::nn::Linear(last_out, last_channel_));
    fc_ = classifier_->register_module("3", torch::nn::Linear(last_channel_, options_.num_classes()));
  }
  init_mobilenet_weights(*this);
}

torch::Tensor MobileNetV3Impl::forward(const torch::Tensor& images) {
  return forward_with_embedding(images).first;
}

std::pair<torch::Tensor, torch::Tensor> MobileNetV3Impl::forward_with_embedding(const torch::Tensor& images) {
  VIGIL_CHECK(fc_, "expected a MobileNetV3 built with include_top, got one without a classifier");
  const auto pooled = torch::adaptive_avg_pool2d(features_->forward(images), {1, 1}).flatten(1);
  auto x = apply_activation_(fc_hidden_->forward(pooled), Activation::kHardswish);
  if (options_.dropout() > 0) x = torch::dropout(x, options_.dropout(), is_training());
  return {fc_->forward(x), pooled};
}

void MobileNetV3Impl::replace_head(int64_t num_classes, uint64_t seed) {
  VIGIL_CHECK(num_classes >= 1, "expected num_classes >= 1, got {}", num_classes);
  VIGIL_CHECK(fc_, "expected a MobileNetV3 with a classifier, got one without");
  fc_ = classifier_->replace_module("3", make_linear(last_channel_, num_classes, LinearInit::kNormal, seed));
  options_.num_classes(num_classes);
}

void MobileNetV3Impl::freeze_backbone(int trainable_stages) {
  // Start from all-trainable so successive calls do not accumulate.
  set_requires_grad(*this, true);
  freeze_feature_stages(features_, stages_, trainable_stages);
}

int MobileNetV3Impl::num_backbone_stages() const {
  return static_cast<int>(stages_.stage_indices().size());
}

int64_t MobileNetV3Impl::num_classes() const {
  return fc_ ? fc_->options.out_features() : 0;
}

}  // namespace vigil::nn
