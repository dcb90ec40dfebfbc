#include "vigil/nn/backbones/resnet.h"

#include "vigil/core/error.h"
#include "vigil/nn/quantize.h"

namespace vigil::nn {

namespace {

torch::nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride, int64_t dilation) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(dilation).dilation(dilation).bias(false));
}

torch::nn::Conv2d conv1x1(int64_t in, int64_t out, int64_t stride = 1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1).stride(stride).bias(false));
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

}  // namespace

ResNetBlockImpl::ResNetBlockImpl(const ResNetBlockOptions& options) : options_(options) {
  const auto& o = options_;
  if (o.bottleneck()) {
    const int64_t width = o.planes();  // groups = 1, base_width = 64
    conv1_ = register_module("conv1", conv1x1(o.inplanes(), width));
    bn1_ = Norm2d(*this, "bn1", o.norm(), width);
    conv2_ = register_module("conv2", conv3x3(width, width, o.stride(), o.dilation()));
    bn2_ = Norm2d(*this, "bn2", o.norm(), width);
    conv3_ = register_module("conv3", conv1x1(width, out_channels()));
    bn3_ = Norm2d(*this, "bn3", o.norm(), out_channels());
    last_norm_name_ = "bn3";
  } else {
    VIGIL_CHECK(o.dilation() == 1, "expected dilation 1 in a BasicBlock (torchvision: not supported), got {}",
                o.dilation());
    conv1_ = register_module("conv1", conv3x3(o.inplanes(), o.planes(), o.stride(), 1));
    bn1_ = Norm2d(*this, "bn1", o.norm(), o.planes());
    conv2_ = register_module("conv2", conv3x3(o.planes(), o.planes(), 1, 1));
    bn2_ = Norm2d(*this, "bn2", o.norm(), o.planes());
    last_norm_name_ = "bn2";
  }
  if (o.downsample()) {
    // A plain Module keeps torchvision's Sequential names (downsample.0, downsample.1) without AnyModule
    // calls.
    auto downsample = register_module("downsample", std::make_shared<torch::nn::Module>());
    down_conv_ = downsample->register_module("0", conv1x1(o.inplanes(), out_channels(), o.stride()));
    down_norm_ = Norm2d(*downsample, "1", o.norm(), out_channels());
  }
}

int64_t ResNetBlockImpl::out_channels() const {
  return options_.planes() * (options_.bottleneck() ? 4 : 1);
}

void ResNetBlockImpl::zero_init_last_norm() {
  if (auto* bn = named_children()[last_norm_name_]->as<torch::nn::BatchNorm2dImpl>()) {
    torch::NoGradGuard no_grad;
    bn->weight.zero_();
  }
}

int ResNetBlockImpl::fold_norms() {
  int n = bn1_.fold_into(*conv1_) + bn2_.fold_into(*conv2_);
  if (conv3_) n += bn3_.fold_into(*conv3_);
  if (down_conv_) n += down_norm_.fold_into(*down_conv_);
  return n;
}

/// The activations an int8 block stores in 8 bits, their observers while calibrating, and the int8
/// convolutions afterwards. conv2 fuses its ReLU only in a bottleneck (in a BasicBlock it feeds the sum).
struct ResNetBlockImpl::Int8 {
  RangeObserver r1, r2, r3, rdown, rout;
  QuantizedConv2d c1, c2, c3, down;
  QParams out;
  bool ready = false;
};

torch::Tensor ResNetBlockImpl::forward(const torch::Tensor& x) {
  Int8* observe = int8_ && !int8_->ready ? int8_.get() : nullptr;
  auto out = bn1_.forward(conv1_->forward(x)).relu_();
  if (observe) observe->r1.observe(out);
  out = bn2_.forward(conv2_->forward(out));
  if (conv3_) {
    out.relu_();
    if (observe) observe->r2.observe(out);
    out = bn3_.forward(conv3_->forward(out));
    if (observe) observe->r3.observe(out);
  } else if (observe) {
    observe->r2.observe(out);
  }
  if (down_conv_) {
    const auto identity = down_norm_.forward(down_conv_->forward(x));
    if (observe) observe->rdown.observe(identity);
    out += identity;
  } else {
    out += x;
  }
  out.relu_();
  if (observe) observe->rout.observe(out);
  return out;
}

void ResNetBlockImpl::begin_int8_calibration() {
  VIGIL_CHECK(!is_training(), "expected an eval-mode ResNet block to calibrate for int8, got train mode");
  VIGIL_CHECK(bn1_.is_identity() && bn2_.is_identity() && bn3_.is_identity() && down_norm_.is_identity(),
              "expected a ResNet block with its norms folded (fold_batch_norms) before int8 calibration");
  int8_ = std::make_shared<Int8>();
}

int ResNetBlockImpl::finish_int8_calibration() {
  VIGIL_ASSERT(int8_ && !int8_->ready, "finish_int8_calibration without begin_int8_calibration");
  Int8& q = *int8_;
  q.c1 = QuantizedConv2d(*conv1_, q.r1.qparams(), /*relu=*/true);
  q.c2 = QuantizedConv2d(*conv2_, q.r2.qparams(), /*relu=*/static_cast<bool>(conv3_));
  int n = 2;
  if (conv3_) {
    q.c3 = QuantizedConv2d(*conv3_, q.r3.qparams(), false);
    ++n;
  }
  if (down_conv_) {
    q.down = QuantizedConv2d(*down_conv_, q.rdown.qparams(), false);
    ++n;
  }
  q.out = q.rout.qparams();
  q.ready = true;
  return n;
}

torch::Tensor ResNetBlockImpl::forward_int8(const torch::Tensor& qx) {
  VIGIL_ASSERT(int8_ && int8_->ready, "forward_int8 of a ResNet block that was not quantised");
  const Int8& q = *int8_;
  auto out = q.c2.forward(q.c1.forward(qx));
  if (q.c3.defined()) out = q.c3.forward(out);
  return quantized_add_relu(out, q.down.defined() ? q.down.forward(qx) : qx, q.out);
}

void ResNetOptions::validate() const {
  for (int n : layers_) VIGIL_CHECK(n >= 1, "expected >= 1 block per ResNet stage, got {}", n);
  VIGIL_CHECK(!include_top_ || num_classes_ >= 1, "expected num_classes >= 1, got {}", num_classes_);
  VIGIL_CHECK(dropout_ >= 0.0 && dropout_ < 1.0, "expected dropout in [0, 1), got {}", dropout_);
}

ResNetImpl::ResNetImpl(const ResNetOptions& options) : options_(options) {
  options_.validate();
  conv1_ = register_module(
      "conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 64, 7).stride(2).padding(3).bias(false)));
  bn1_ = Norm2d(*this, "bn1", options_.norm(), 64);
  const auto& dil = options_.replace_stride_with_dilation();
  make_layer(0, 64, options_.layers()[0], 1, false);
  make_layer(1, 128, options_.layers()[1], 2, dil[0]);
  make_layer(2, 256, options_.layers()[2], 2, dil[1]);
  make_layer(3, 512, options_.layers()[3], 2, dil[2]);
  if (options_.include_top())
    fc_ = register_module("fc", torch::nn::Linear(inplanes_, options_.num_classes()));
  init_weights();
}

void ResNetImpl::make_layer(int index, int64_t planes, int blocks, int64_t stride, bool dilate) {
  const int64_t expansion = options_.bottleneck() ? 4 : 1;
  const int64_t previous_dilation = dilation_;
  if (dilate) {
    dilation_ *= stride;
    stride = 1;
  }
  auto layer = register_module("layer" + std::to_string(index + 1), std::make_shared<torch::nn::Module>());
  for (int i = 0; i < blocks; ++i) {
    auto opts = ResNetBlockOptions(inplanes_, planes).bottleneck(options_.bottleneck()).norm(options_.norm());
    if (i == 0) {
      opts.stride(stride)
          .dilation(previous_dilation)
          .downsample(stride != 1 || inplanes_ != planes * expansion);
    } else {
      opts.dilation(dilation_);
    }
    layers_[index].push_back(layer->register_module(std::to_string(i), ResNetBlock(opts)));
    inplanes_ = planes * expansion;
  }
}

void ResNetImpl::init_weights() {
  torch::NoGradGuard no_grad;
  apply([](torch::nn::Module& module) {
    if (auto* conv = module.as<torch::nn::Conv2dImpl>())
      torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
  });
  init_norms(*this);
  if (options_.zero_init_residual()) {
    for (auto& layer : layers_)
      for (auto& block : layer) block->zero_init_last_norm();
  }
}

/// The int8 stem: the observed image range quantises the input, conv1 fuses its ReLU (max pooling keeps
/// the quantisation parameters).
struct ResNetImpl::Int8 {
  RangeObserver input, stem;
  QParams input_q;
  QuantizedConv2d conv1;
  bool ready = false;
};

torch::Tensor ResNetImpl::stem(const torch::Tensor& x) {
  if (int8_ && !int8_->ready) int8_->input.observe(x);
  auto out = bn1_.forward(conv1_->forward(x)).relu_();
  if (int8_ && !int8_->ready) int8_->stem.observe(out);
  return torch::max_pool2d(out, {3, 3}, {2, 2}, {1, 1});
}

void ResNetImpl::begin_int8_calibration() {
  VIGIL_CHECK(!is_training(), "expected an eval-mode ResNet to calibrate for int8, got train mode");
  VIGIL_CHECK(bn1_.is_identity(),
              "expected a ResNet with its norms folded (fold_batch_norms) before int8 "
              "calibration, got an unfolded stem");
  int8_ = std::make_shared<Int8>();
  for (auto& layer : layers_)
    for (auto& block : layer) block->begin_int8_calibration();
}

int ResNetImpl::finish_int8_calibration() {
  VIGIL_ASSERT(int8_ && !int8_->ready, "finish_int8_calibration without begin_int8_calibration");
  int8_->input_q = int8_->input.qparams();
  int8_->conv1 = QuantizedConv2d(*conv1_, int8_->stem.qparams(), /*relu=*/true);
  int n = 1;
  for (auto& layer : layers_)
    for (auto& block : layer) n += block->finish_int8_calibration();
  int8_->ready = true;
  return n;
}

bool ResNetImpl::is_int8() const {
  return int8_ && int8_->ready;
}

std::vector<torch::Tensor> ResNetImpl::forward_stages_int8(const torch::Tensor& images) {
  VIGIL_ASSERT(is_int8(), "forward_stages_int8 of a ResNet that was not quantised");
  auto x = int8_->conv1.forward(quantize_activation(images.to(torch::kFloat32), int8_->input_q));
  x = torch::max_pool2d(x, {3, 3}, {2, 2}, {1, 1}, /*dilation=*/{1, 1});  // quantised: no default dilation
  std::vector<torch::Tensor> outs;
  for (auto& layer : layers_) {
    for (auto& block : layer) x = block->forward_int8(x);
    outs.push_back(x);
  }
  return outs;
}

torch::Tensor ResNetImpl::forward(const torch::Tensor& images) {
  return forward_with_embedding(images).first;
}

std::pair<torch::Tensor, torch::Tensor> ResNetImpl::forward_with_embedding(const torch::Tensor& images) {
  VIGIL_CHECK(fc_, "expected a ResNet built with include_top, got one without fc (use forward_stages)");
  torch::Tensor x;
  if (is_int8()) {
    x = forward_stages_int8(images).back().dequantize();
  } else {
    x = stem(images);
    for (auto& layer : layers_)
      for (auto& block : layer) x = block->forward(x);
  }
  const auto pooled = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
  x = pooled;
  if (options_.dropout() > 0) x = torch::dropout(x, options_.dropout(), is_training());
  return {fc_->forward(x), pooled};
}

std::vector<torch::Tensor> ResNetImpl::forward_stages(const torch::Tensor& images) {
  if (is_int8()) {
    auto outs = forward_stages_int8(images);
    for (auto& o : outs) o = o.dequantize();
    return outs;
  }
  std::vector<torch::Tensor> outs;
  auto x = stem(images);
  for (auto& layer : layers_) {
    for (auto& block : layer) x = block->forward(x);
    outs.push_back(x);
  }
  return outs;
}

std::vector<int64_t> ResNetImpl::stage_channels() const {
  const int64_t expansion = options_.bottleneck() ? 4 : 1;
  return {64 * expansion, 128 * expansion, 256 * expansion, 512 * expansion};
}

void ResNetImpl::freeze_for_fpn(int trainable_layers) {
  VIGIL_CHECK(trainable_layers >= 0 && trainable_layers <= 5, "expected trainable layers in [0, 5], got {}",
              trainable_layers);
  std::vector<std::string> to_train = {"layer4", "layer3", "layer2", "layer1", "conv1"};
  to_train.resize(trainable_layers);
  if (trainable_layers == 5) to_train.push_back("bn1");
  for (auto& item : named_parameters()) {
    bool train = false;
    for (const auto& prefix : to_train) train = train || starts_with(item.key(), prefix);
    if (!train) item.value().set_requires_grad(false);
  }
}

void ResNetImpl::replace_head(int64_t num_classes, uint64_t seed) {
  VIGIL_CHECK(num_classes >= 1, "expected num_classes >= 1, got {}", num_classes);
  VIGIL_CHECK(fc_, "expected a ResNet with a head (include_top), got one without fc");
  fc_ =
      replace_module("fc", make_linear(fc_->options.in_features(), num_classes, LinearInit::kDefault, seed));
  options_.num_classes(num_classes);
}

void ResNetImpl::freeze_backbone(int trainable_stages) {
  VIGIL_CHECK(trainable_stages >= 0 && trainable_stages <= 5, "expected trainable stages in [0, 5], got {}",
              trainable_stages);
  // Start from all-trainable so successive calls do not accumulate; fc is not under a backbone prefix.
  set_requires_grad(*this, true);
  freeze_for_fpn(trainable_stages);
  if (fc_) set_requires_grad(*fc_, true);
}

int64_t ResNetImpl::num_classes() const {
  return fc_ ? fc_->options.out_features() : 0;
}

ResNetOptions resnet_options(int depth) {
  VIGIL_CHECK(depth == 18 || depth == 50, "expected ResNet depth 18 or 50, got {}", depth);
  return depth == 18 ? ResNetOptions({2, 2, 2, 2}, false) : ResNetOptions({3, 4, 6, 3}, true);
}

ResNet resnet18(int64_t num_classes) {
  return ResNet(resnet_options(18).num_classes(num_classes));
}

ResNet resnet50(int64_t num_classes) {
  return ResNet(resnet_options(50).num_classes(num_classes));
}

}  // namespace vigil::nn
