#include "vigil/nn/detection/ssdlite.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <utility>

#include "nn/detection/trainable_layers.h"
#include "vigil/core/error.h"
#include "vigil/nn/backbones/mobilenet_v2.h"

namespace vigil::nn {

namespace {

constexpr const char* kSSDLite320 = "ssdlite320_mobilenet_v3_large";
constexpr int kMobileNetStages = 6;

// torchvision's _extra_block: 1x1 to half the output width, 3x3 depthwise stride 2, 1x1 to the output width,
// each with norm and ReLU6.
torch::nn::Sequential extra_block(int64_t in_channels, int64_t out_channels, const NormLayerOptions& norm) {
  const int64_t mid = out_channels / 2;
  torch::nn::Sequential block;
  block->push_back(ConvNormActivation(
      ConvNormActivationOptions(in_channels, mid, 1).norm(norm).activation(Activation::kReLU6)));
  block->push_back(ConvNormActivation(ConvNormActivationOptions(mid, mid, 3)
                                          .stride(2)
                                          .groups(mid)
                                          .norm(norm)
                                          .activation(Activation::kReLU6)));
  block->push_back(ConvNormActivation(
      ConvNormActivationOptions(mid, out_channels, 1).norm(norm).activation(Activation::kReLU6)));
  return block;
}

// torchvision's _prediction_block: 3x3 depthwise conv + norm + ReLU6, then a 1x1 conv with bias.
torch::nn::Sequential prediction_block(int64_t in_channels, int64_t out_channels,
                                       const NormLayerOptions& norm) {
  torch::nn::Sequential block;
  block->push_back(ConvNormActivation(ConvNormActivationOptions(in_channels, in_channels, 3)
                                          .groups(in_channels)
                                          .norm(norm)
                                          .activation(Activation::kReLU6)));
  block->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, out_channels, 1)));
  return block;
}

SSDScoringHead scoring_head(const std::vector<int64_t>& in_channels, const std::vector<int64_t>& num_anchors,
                            int64_t num_columns, const NormLayerOptions& norm) {
  std::vector<torch::nn::Sequential> blocks;
  for (size_t i = 0; i < in_channels.size(); ++i) {
    blocks.push_back(prediction_block(in_channels[i], num_columns * num_anchors[i], norm));
  }
  SSDScoringHead head(std::move(blocks), num_columns);
  ssdlite_normal_init(*head);
  return head;
}

}  // namespace

void ssdlite_normal_init(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (const auto& m : module.modules(/*include_self=*/true)) {
    if (auto* conv = m->as<torch::nn::Conv2dImpl>()) {
      conv->weight.normal_(0.0, 0.03);
      if (conv->bias.defined()) conv->bias.zero_();
    }
  }
}

// -------------------------------------------------------------------------- SSDLiteFeatureExtractorMobileNet

SSDLiteFeatureExtractorMobileNetImpl::SSDLiteFeatureExtractorMobileNetImpl(MobileNetV3 backbone,
                                                                           const NormLayerOptions& norm,
                                                                           double width_mult,
                                                                           int64_t min_depth) {
  VIGIL_CHECK(!backbone.is_empty(), "expected a MobileNetV3 backbone, got an empty module holder");
  VIGIL_CHECK(width_mult > 0 && min_depth >= 2, "expected width_mult > 0 and min_depth >= 2, got {} and {}",
              width_mult, min_depth);
  auto& body = backbone->features();
  stage_indices_ = backbone->stages().stage_indices();
  const auto num_blocks = static_cast<int>(body->size());
  // _mobilenet_extractor's c4_pos: the last strided block (a strided block has no residual to split).
  const int c4_pos = stage_indices_.at(stage_indices_.size() - 2);
  VIGIL_ASSERT(c4_pos > 0 && c4_pos < num_blocks - 1, "MobileNetV3 C4 block at {} of {}", c4_pos, num_blocks);
  const auto c4_inner = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(
      body->ptr<MobileNetV3BlockImpl>(c4_pos)->named_children()["block"]);
  VIGIL_ASSERT(c4_inner && c4_inner->size() >= 2, "MobileNetV3 C4 block without an inner `block`");

  // features.0: blocks 0..c4_pos - 1 and the C4 expansion (keyed c4_pos); features.1: the rest of the C4
  // block (keys 1.., as torchvision's Sequential slice keeps them) and the blocks after it. Plain modules
  // hold the names; the AnyModule lists run them.
  features = register_module("features", std::make_shared<torch::nn::Module>());
  auto head_part = features->register_module("0", std::make_shared<torch::nn::Module>());
  auto tail_part = features->register_module("1", std::make_shared<torch::nn::Module>());
  auto c4_rest = tail_part->register_module("0", std::make_shared<torch::nn::Module>());
  auto block = body->begin();
  for (int i = 0; i < c4_pos; ++i, ++block) {
    head_part->register_module(std::to_string(i), block->ptr());
    head_modules_.push_back(*block);
    blocks_.push_back({block->ptr()});
  }
  auto inner = c4_inner->begin();
  head_part->register_module(std::to_string(c4_pos), inner->ptr());
  head_modules_.push_back(*inner);
  const auto c4_expand = inner->ptr();
  ++inner;
  for (int j = 1; inner != c4_inner->end(); ++inner, ++j) {
    c4_rest->register_module(std::to_string(j), inner->ptr());
    tail_modules_.push_back(*inner);
  }
  blocks_.push_back({c4_expand, c4_rest});
  ++block;
  for (int i = c4_pos + 1; i < num_blocks; ++i, ++block) {
    tail_part->register_module(std::to_string(i - c4_pos), block->ptr());
    tail_modules_.push_back(*block);
    blocks_.push_back({block->ptr()});
  }

  out_channels_ = {c4_inner->ptr<ConvNormActivationImpl>(0)->out_channels(),
                   body->ptr<ConvNormActivationImpl>(num_blocks - 1)->out_channels()};
  const auto depth = [&](int64_t d) {
    return std::max(min_depth, static_cast<int64_t>(static_cast<double>(d) * width_mult));
  };
  extra = register_module("extra", torch::nn::ModuleList());
  int64_t in_channels = out_channels_.back();
  for (const int64_t d : {512, 256, 256, 128}) {
    extra_blocks_.push_back(extra_block(in_channels, depth(d), norm));
    extra->push_back(extra_blocks_.back());
    in_channels = depth(d);
    out_channels_.push_back(in_channels);
  }
  ssdlite_normal_init(*extra);
}

std::vector<torch::Tensor> SSDLiteFeatureExtractorMobileNetImpl::forward(const torch::Tensor& images) {
  std::vector<torch::Tensor> output;
  output.reserve(out_channels_.size());
  torch::Tensor x = images;
  for (auto* part : {&head_modules_, &tail_modules_}) {
    for (auto& module : *part) x = module.forward(x);
    output.push_back(x);
  }
  for (auto& block : extra_blocks_) {
    // Each extra block halves the map (rounding up). A 1x1 map of a single image leaves batch norm one value
    // per channel in training, which LibTorch rejects deep inside; say what to change instead.
    const int64_t out_h = (x.size(2) + 1) / 2;
    const int64_t out_w = (x.size(3) + 1) / 2;
    VIGIL_CHECK(
        !is_training() || x.size(0) * out_h * out_w > 1,
        "expected at least 2 images per training batch (SSDlite's last extra layer is {}x{} and its batch "
        "norm needs more than one value per channel), got 1",
        out_h, out_w);
    x = block->forward(x);
    output.push_back(x);
  }
  return output;
}

void SSDLiteFeatureExtractorMobileNetImpl::freeze(int trainable_layers) {
  const int num_stages = max_trainable_layers();
  VIGIL_CHECK(trainable_layers >= 0 && trainable_layers <= num_stages,
              "expected trainable_backbone_layers in [0, {}], got {}", num_stages, trainable_layers);
  set_requires_grad(*features, true);
  const size_t freeze_before = trainable_layers == 0
                                   ? blocks_.size()
                                   : static_cast<size_t>(stage_indices_[num_stages - trainable_layers]);
  for (size_t b = 0; b < freeze_before; ++b) {
    for (const auto& module : blocks_[b]) set_requires_grad(*module, false);
  }
}

// ----------------------------------------------------------------------------------------------- SSDLiteHead

SSDLiteHeadImpl::SSDLiteHeadImpl(std::vector<int64_t> in_channels, std::vector<int64_t> num_anchors,
                                 int64_t num_classes, const NormLayerOptions& norm)
    : in_channels_(std::move(in_channels)),
      num_anchors_(std::move(num_anchors)),
      norm_(norm),
      num_classes_(num_classes) {
  VIGIL_CHECK(!in_channels_.empty() && in_channels_.size() == num_anchors_.size(),
              "expected one channel count per anchor count (one per feature map), got {} and {}",
              in_channels_.size(), num_anchors_.size());
  for (size_t i = 0; i < in_channels_.size(); ++i) {
    VIGIL_CHECK(in_channels_[i] > 0 && num_anchors_[i] > 0,
                "expected positive channels and anchors for feature map {}, got {} and {}", i,
                in_channels_[i], num_anchors_[i]);
  }
  VIGIL_CHECK(num_classes_ >= 2, "expected num_classes >= 2 (background included), got {}", num_classes_);
  // torchvision's order: classification_head, then regression_head.
  classification_head =
      register_module("classification_head", scoring_head(in_channels_, num_anchors_, num_classes_, norm_));
  regression_head = register_module("regression_head", scoring_head(in_channels_, num_anchors_, 4, norm_));
}

SSDHeadOutput SSDLiteHeadImpl::forward(const std::vector<torch::Tensor>& features) {
  return {regression_head->forward(features), classification_head->forward(features)};
}

void SSDLiteHeadImpl::replace_classification_head(int64_t num_classes) {
  VIGIL_CHECK(num_classes >= 2, "expected num_classes >= 2 (background included), got {}", num_classes);
  classification_head =
      replace_module("classification_head", scoring_head(in_channels_, num_anchors_, num_classes, norm_));
  num_classes_ = num_classes;
}

// -------------------------------------------------------------------------------------------------- builders

std::vector<std::string> ssdlite_names() {
  return {kSSDLite320};
}

SSDOptions ssdlite_defaults(const std::string& name) {
  VIGIL_CHECK(name == kSSDLite320, "expected an SSDlite name, one of: {}; got '{}'", kSSDLite320, name);
  return SSDOptions()
      .size({320, 320})
      .image_mean({0.5, 0.5, 0.5})
      .image_std({0.5, 0.5, 0.5})
      .score_thresh(0.001)
      .nms_thresh(0.55)
      .detections_per_img(300)
      .topk_candidates(300);
}

SSD make_ssdlite(const std::string& name, const ModelArgs& args, std::optional<SSDOptions> options,
                 bool reduced_tail) {
  // ssdlite_defaults() also rejects unknown names when options are given.
  SSDOptions opts = ssdlite_defaults(name);
  if (options) opts = *options;
  VIGIL_CHECK(args.num_classes >= 0, "expected num_classes >= 2 (or 0 for the default), got {}",
              args.num_classes);
  if (args.num_classes > 0) opts.num_classes(args.num_classes);
  opts.validate();
  const int layers = detail::trainable_layers_for(
      name, args.pretrained_backbone, args.trainable_backbone_layers, kMobileNetStages, kMobileNetStages);

  // torchvision's norm_layer for SSDlite, in the backbone, the extra blocks and the head alike.
  const auto norm = NormLayerOptions::batch_norm(0.001, 0.03);
  MobileNetV3 mobilenet(MobileNetV3Options("large").reduced_tail(reduced_tail).include_top(false).norm(norm));
  // Without ImageNet weights torchvision re-initialises the backbone's convs with N(0, 0.03).
  if (reduced_tail) ssdlite_normal_init(*mobilenet);
  SSDLiteFeatureExtractorMobileNet backbone(std::move(mobilenet), norm);
  backbone->freeze(layers);

  DefaultBoxGenerator anchors(DefaultBoxGeneratorOptions(std::vector<std::vector<double>>(6, {2.0, 3.0}))
                                  .min_ratio(0.2)
                                  .max_ratio(0.95));
  SSDLiteHead head(backbone->out_channels(), anchors->num_anchors_per_location(), opts.num_classes(), norm);
  return SSD(backbone.ptr(), std::move(anchors), head.ptr(), opts);
}

SSD ssdlite320_mobilenet_v3_large(const ModelArgs& args) {
  return make_ssdlite(kSSDLite320, args);
}

}  // namespace vigil::nn
