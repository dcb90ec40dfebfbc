#include "vigil/nn/detection/fpn.h"

#include <torch/torch.h>

#include <algorithm>
#include <string>
#include <utility>

#include "vigil/core/error.h"
#include "vigil/nn/classification/classifier.h"
#include "vigil/nn/quantize.h"

namespace vigil::nn {

namespace {

ConvNormActivation fpn_conv(int64_t in_channels, int64_t out_channels, int64_t kernel) {
  // torchvision's Conv2dNormActivation(norm_layer=None, activation_layer=None): a lone biased conv "0".
  return ConvNormActivation(ConvNormActivationOptions(in_channels, out_channels, kernel)
                                .norm(std::nullopt)
                                .activation(Activation::kNone));
}

std::vector<std::string> numbered_names(size_t count) {
  std::vector<std::string> names;
  for (size_t i = 0; i < count; ++i) names.push_back(std::to_string(i));
  return names;
}

}  // namespace

void last_level_max_pool(FeatureMap& results) {
  VIGIL_CHECK(!results.is_empty(), "expected at least one FPN level to pool, got none");
  // Explicit dilation: quantised max pooling (int8 FPN levels) has no default for it.
  results.insert("pool", torch::max_pool2d(results.values().back(), {1, 1}, {2, 2}, {0, 0}, {1, 1}));
}

// ---------------------------------------------------------------------------- FeaturePyramidNetwork

void FeaturePyramidNetworkOptions::validate() const {
  VIGIL_CHECK(!in_channels_list_.empty(), "expected at least one FPN input level, got none");
  for (const auto c : in_channels_list_) VIGIL_CHECK(c > 0, "expected FPN in_channels > 0, got {}", c);
  VIGIL_CHECK(out_channels_ > 0, "expected FPN out_channels > 0, got {}", out_channels_);
}

FeaturePyramidNetworkImpl::FeaturePyramidNetworkImpl(FeaturePyramidNetworkOptions options_)
    : options(std::move(options_)) {
  options.validate();
  inner_blocks = register_module("inner_blocks", torch::nn::ModuleList());
  layer_blocks = register_module("layer_blocks", torch::nn::ModuleList());
  for (const auto in_channels : options.in_channels_list()) {
    inner_blocks->push_back(fpn_conv(in_channels, options.out_channels(), 1));
    layer_blocks->push_back(fpn_conv(options.out_channels(), options.out_channels(), 3));
  }
  torch::NoGradGuard no_grad;
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<torch::nn::Conv2dImpl>()) {
      torch::nn::init::kaiming_uniform_(conv->weight, /*a=*/1.0);
      conv->bias.zero_();
    }
  }
}

/// Per level: the observed ranges of the lateral (inner) outputs, of the top-down sums (every level but the
/// last, whose sum is its lateral) and of the outputs; then their int8 convolutions and sum parameters.
struct FeaturePyramidNetworkImpl::Int8 {
  std::vector<RangeObserver> r_inner, r_sum, r_layer;
  std::vector<QuantizedConv2d> inner, layer;
  std::vector<QParams> sum;
  bool ready = false;
};

FeatureMap FeaturePyramidNetworkImpl::forward(const FeatureMap& x) {
  const auto& in_channels = options.in_channels_list();
  const auto levels = static_cast<int64_t>(in_channels.size());
  VIGIL_CHECK(static_cast<int64_t>(x.size()) == levels, "expected {} FPN input maps, got {}", levels,
              x.size());
  const auto names = x.keys();
  const auto maps = x.values();
  for (int64_t i = 0; i < levels; ++i) {
    VIGIL_CHECK(maps[i].dim() == 4 && maps[i].size(1) == in_channels[i],
                "expected FPN input '{}' of shape [N, {}, H, W], got {}", names[i], in_channels[i],
                c10::str(maps[i].sizes()));
  }
  if (is_int8()) return forward_int8(names, maps);
  Int8* observe = int8_ ? int8_.get() : nullptr;  // calibrating
  auto inner = [&](int64_t i, const torch::Tensor& t) {
    auto out = inner_blocks[i]->as<ConvNormActivation>()->forward(t);
    if (observe) observe->r_inner[i].observe(out);
    return out;
  };
  auto layer = [&](int64_t i, const torch::Tensor& t) {
    auto out = layer_blocks[i]->as<ConvNormActivation>()->forward(t);
    if (observe) observe->r_layer[i].observe(out);
    return out;
  };

  std::vector<torch::Tensor> results(static_cast<size_t>(levels));
  auto last_inner = inner(levels - 1, maps[levels - 1]);
  results[levels - 1] = layer(levels - 1, last_inner);
  for (int64_t idx = levels - 2; idx >= 0; --idx) {
    auto lateral = inner(idx, maps[idx]);
    auto top_down = torch::upsample_nearest2d(last_inner, {lateral.size(-2), lateral.size(-1)});
    last_inner = lateral + top_down;
    if (observe) observe->r_sum[idx].observe(last_inner);
    results[idx] = layer(idx, last_inner);
  }
  FeatureMap out;
  for (int64_t i = 0; i < levels; ++i) out.insert(names[i], results[i]);
  if (options.extra_block() == ExtraFPNBlock::kLastLevelMaxPool) last_level_max_pool(out);
  return out;
}

void FeaturePyramidNetworkImpl::begin_int8_calibration() {
  VIGIL_CHECK(!is_training(), "expected an eval-mode FPN to calibrate for int8, got train mode");
  const size_t levels = inner_blocks->size();
  int8_ = std::make_shared<Int8>();
  int8_->r_inner.resize(levels);
  int8_->r_sum.resize(levels);
  int8_->r_layer.resize(levels);
}

int FeaturePyramidNetworkImpl::finish_int8_calibration() {
  VIGIL_ASSERT(int8_ && !int8_->ready, "finish_int8_calibration without begin_int8_calibration");
  Int8& q = *int8_;
  const size_t levels = inner_blocks->size();
  for (size_t i = 0; i < levels; ++i) {
    const auto inner = inner_blocks[i]->as<ConvNormActivation>();
    const auto layer = layer_blocks[i]->as<ConvNormActivation>();
    VIGIL_CHECK(inner->is_bare_conv(Activation::kNone) && layer->is_bare_conv(Activation::kNone),
                "expected the FPN's convolutions without norm or activation to quantise, got level {}", i);
    q.inner.emplace_back(inner->conv(), q.r_inner[i].qparams(), false);
    q.layer.emplace_back(layer->conv(), q.r_layer[i].qparams(), false);
    q.sum.push_back(i + 1 < levels ? q.r_sum[i].qparams() : QParams{});
  }
  q.ready = true;
  return static_cast<int>(2 * levels);
}

bool FeaturePyramidNetworkImpl::is_int8() const {
  return int8_ && int8_->ready;
}

FeatureMap FeaturePyramidNetworkImpl::forward_int8(const std::vector<std::string>& names,
                                                   const std::vector<torch::Tensor>& maps) {
  const Int8& q = *int8_;
  const auto levels = static_cast<int64_t>(maps.size());
  for (int64_t i = 0; i < levels; ++i)
    VIGIL_CHECK(maps[i].is_quantized(), "expected quantised FPN input '{}' in int8 mode, got {}", names[i],
                c10::toString(maps[i].scalar_type()));
  std::vector<torch::Tensor> results(static_cast<size_t>(levels));
  auto last_inner = q.inner[levels - 1].forward(maps[levels - 1]);
  results[levels - 1] = q.layer[levels - 1].forward(last_inner);
  for (int64_t idx = levels - 2; idx >= 0; --idx) {
    auto lateral = q.inner[idx].forward(maps[idx]);
    auto top_down = torch::upsample_nearest2d(last_inner, {lateral.size(-2), lateral.size(-1)});
    last_inner = quantized_add(lateral, top_down, q.sum[idx]);
    results[idx] = q.layer[idx].forward(last_inner);
  }
  FeatureMap out;
  for (int64_t i = 0; i < levels; ++i) out.insert(names[i], results[i]);
  if (options.extra_block() == ExtraFPNBlock::kLastLevelMaxPool) last_level_max_pool(out);
  return out;
}

// ---------------------------------------------------------------------------------- BackboneWithFPN

BackboneWithFPNImpl::BackboneWithFPNImpl(ResNet body, std::vector<int> returned_layers, int64_t out_channels)
    : returned_layers_(std::move(returned_layers)), out_channels_(out_channels) {
  VIGIL_CHECK(!body.is_empty(), "expected a ResNet body, got an empty module holder");
  VIGIL_CHECK(!returned_layers_.empty(), "expected at least one returned ResNet layer, got none");
  const auto channels = body->stage_channels();
  std::vector<int64_t> in_channels;
  for (const int layer : returned_layers_) {
    VIGIL_CHECK(layer >= 1 && layer <= 4, "expected returned ResNet layers in [1, 4], got {}", layer);
    in_channels.push_back(channels[layer - 1]);
  }
  resnet_ = register_module("body", std::move(body));
  fpn_ =
      register_module("fpn", FeaturePyramidNetwork(FeaturePyramidNetworkOptions(in_channels, out_channels)));
}

BackboneWithFPNImpl::BackboneWithFPNImpl(MobileNetV3 body, std::vector<int> returned_layers,
                                         int64_t out_channels)
    : returned_layers_(std::move(returned_layers)), out_channels_(out_channels) {
  VIGIL_CHECK(!body.is_empty(), "expected a MobileNetV3 body, got an empty module holder");
  VIGIL_CHECK(!returned_layers_.empty(), "expected at least one returned MobileNetV3 stage, got none");
  stages_ = body->stages();
  const auto stage_indices = stages_.stage_indices();
  const auto num_stages = static_cast<int>(stage_indices.size());
  std::vector<int64_t> in_channels;
  for (const int stage : returned_layers_) {
    VIGIL_CHECK(stage >= 0 && stage < num_stages, "expected returned MobileNetV3 stages in [0, {}], got {}",
                num_stages - 1, stage);
    feature_indices_.push_back(stage_indices[stage]);
    in_channels.push_back(stages_.out_channels[stage_indices[stage]]);
  }
  // Only `features` is the body (torchvision's IntermediateLayerGetter over backbone.features), so keys read
  // body.0.0.weight; the classifier never becomes part of this module.
  features_ = register_module("body", body->features());
  fpn_ =
      register_module("fpn", FeaturePyramidNetwork(FeaturePyramidNetworkOptions(in_channels, out_channels)));
}

FeatureMap BackboneWithFPNImpl::forward(const torch::Tensor& images) {
  VIGIL_CHECK(images.dim() == 4 && images.size(1) == 3, "expected images of shape [N, 3, H, W], got {}",
              c10::str(images.sizes()));
  std::vector<torch::Tensor> levels;
  if (is_resnet()) {
    // Quantised body and FPN hand each other quint8 maps; the detector's heads take the FPN's levels as
    // they come (nn/quantize.h).
    const auto stages = resnet_->is_int8() && fpn_->is_int8() ? resnet_->forward_stages_int8(images)
                                                              : resnet_->forward_stages(images);
    for (const int layer : returned_layers_) levels.push_back(stages[layer - 1]);
  } else {
    levels = forward_feature_blocks(features_, images, feature_indices_);
  }
  const auto names = level_names();
  FeatureMap x;
  for (size_t i = 0; i < levels.size(); ++i) x.insert(names[i], levels[i]);
  return fpn_->forward(x);
}

std::vector<std::string> BackboneWithFPNImpl::level_names() const {
  return numbered_names(returned_layers_.size());
}

int BackboneWithFPNImpl::max_trainable_layers() const {
  return is_resnet() ? 5 : static_cast<int>(stages_.stage_indices().size());
}

void BackboneWithFPNImpl::freeze(int trainable_layers) {
  const int max_layers = max_trainable_layers();
  VIGIL_CHECK(trainable_layers >= 0 && trainable_layers <= max_layers,
              "expected trainable backbone layers in [0, {}], got {}", max_layers, trainable_layers);
  if (is_resnet()) {
    set_requires_grad(*resnet_, true);
    resnet_->freeze_for_fpn(trainable_layers);
  } else {
    set_requires_grad(*features_, true);
    freeze_feature_stages(features_, stages_, trainable_layers);
  }
}

// -------------------------------------------------------------------------------------------- factories

BackboneWithFPN resnet_fpn_backbone(int depth, const NormLayerOptions& norm, int trainable_layers) {
  auto body = ResNet(resnet_options(depth).include_top(false).norm(norm));
  BackboneWithFPN backbone(std::move(body), std::vector<int>{1, 2, 3, 4}, 256);
  backbone->freeze(trainable_layers);
  return backbone;
}

BackboneWithFPN mobilenet_v3_fpn_backbone(const NormLayerOptions& norm, int trainable_layers) {
  auto body = MobileNetV3(MobileNetV3Options("large").include_top(false).norm(norm));
  const auto num_stages = static_cast<int>(body->stages().stage_indices().size());
  BackboneWithFPN backbone(std::move(body), std::vector<int>{num_stages - 2, num_stages - 1}, 256);
  backbone->freeze(trainable_layers);
  return backbone;
}

}  // namespace vigil::nn
