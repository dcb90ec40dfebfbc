#include "vigil/nn/frozen_batch_norm.h"

#include <fmt/format.h>

#include <string_view>

#include "vigil/core/error.h"

namespace vigil::nn {

FrozenBatchNorm2dImpl::FrozenBatchNorm2dImpl(const FrozenBatchNorm2dOptions& options_) : options(options_) {
  reset();
}

void FrozenBatchNorm2dImpl::reset() {
  const int64_t n = options.num_features();
  weight = register_buffer("weight", torch::ones({n}));
  bias = register_buffer("bias", torch::zeros({n}));
  running_mean = register_buffer("running_mean", torch::zeros({n}));
  running_var = register_buffer("running_var", torch::ones({n}));
}

void FrozenBatchNorm2dImpl::pretty_print(std::ostream& stream) const {
  stream << "vigil::nn::FrozenBatchNorm2d(" << options.num_features() << ", eps=" << options.eps() << ")";
}

torch::Tensor FrozenBatchNorm2dImpl::forward(const torch::Tensor& x) {
  // torchvision's exact arithmetic (x * scale + shift, in this order): the fused batch_norm kernel rounds
  // differently, which after a ResNet-50 adds up to ~1e-3 px in detected boxes. Inference folds these into
  // the convolutions anyway (fuse.h), so the broadcast temporaries only cost during training.
  const auto scale =
      weight.reshape({1, -1, 1, 1}) * (running_var.reshape({1, -1, 1, 1}) + options.eps()).rsqrt();
  const auto shift = bias.reshape({1, -1, 1, 1}) - running_mean.reshape({1, -1, 1, 1}) * scale;
  return x * scale + shift;
}

bool is_ignored_frozen_bn_key(const torch::nn::Module& root, const std::string& key) {
  constexpr std::string_view kSuffix = ".num_batches_tracked";
  if (key.size() <= kSuffix.size() || key.compare(key.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0)
    return false;
  const std::string owner = key.substr(0, key.size() - kSuffix.size());
  for (const auto& item : root.named_modules("", /*include_self=*/false)) {
    if (item.key() == owner) return item.value()->as<FrozenBatchNorm2dImpl>() != nullptr;
  }
  return false;
}

NormLayerOptions NormLayerOptions::batch_norm(double eps, double momentum) {
  return {NormKind::kBatchNorm, eps, momentum};
}

NormLayerOptions NormLayerOptions::frozen(double eps) {
  return {NormKind::kFrozenBatchNorm, eps, 0.0};
}

NormLayerOptions NormLayerOptions::for_detection(bool pretrained) {
  return pretrained ? frozen() : batch_norm();
}

Norm2d::Norm2d(torch::nn::Module& parent, const std::string& name, const NormLayerOptions& options,
               int64_t channels) {
  if (options.kind == NormKind::kFrozenBatchNorm) {
    frozen_ =
        parent.register_module(name, FrozenBatchNorm2d(FrozenBatchNorm2dOptions(channels).eps(options.eps)));
  } else {
    bn_ = parent.register_module(
        name, torch::nn::BatchNorm2d(
                  torch::nn::BatchNorm2dOptions(channels).eps(options.eps).momentum(options.momentum)));
  }
}

torch::Tensor Norm2d::forward(const torch::Tensor& x) {
  if (folded_) {
    VIGIL_CHECK(!module().is_training(),
                "expected an eval-mode model after folding batch norms, got train mode");
    return x;
  }
  return bn_ ? bn_->forward(x) : frozen_->forward(x);
}

torch::nn::Module& Norm2d::module() const {
  if (bn_) return *bn_.ptr();
  return *frozen_.ptr();
}

int Norm2d::fold_into(torch::nn::Conv2dImpl& conv) {
  if (folded_ || is_empty()) return 0;
  fold_norm_into_conv(conv, module());
  folded_ = true;
  return 1;
}

void fold_norm_into_conv(torch::nn::Conv2dImpl& conv, torch::nn::Module& norm) {
  torch::Tensor weight, bias, mean, var;
  double eps = 0;
  if (auto* bn = norm.as<torch::nn::BatchNorm2dImpl>()) {
    VIGIL_CHECK(!bn->is_training(), "expected an eval-mode BatchNorm2d to fold, got train mode");
    weight = bn->weight, bias = bn->bias, mean = bn->running_mean, var = bn->running_var;
    eps = bn->options.eps();
  } else if (auto* frozen = norm.as<FrozenBatchNorm2dImpl>()) {
    weight = frozen->weight, bias = frozen->bias, mean = frozen->running_mean, var = frozen->running_var;
    eps = frozen->options.eps();
  } else {
    throw InvalidArgument(
        fmt::format("expected a BatchNorm2d or FrozenBatchNorm2d to fold, got {}", norm.name()));
  }
  torch::NoGradGuard no_grad;
  const auto scale = weight * torch::rsqrt(var + eps);
  const auto old_bias = conv.bias.defined() ? conv.bias : torch::zeros_like(mean);
  conv.weight.mul_(scale.view({-1, 1, 1, 1}));
  conv.bias = (old_bias - mean) * scale + bias;
}

torch::nn::AnyModule make_norm2d(const NormLayerOptions& options, int64_t channels) {
  if (options.kind == NormKind::kFrozenBatchNorm)
    return torch::nn::AnyModule(FrozenBatchNorm2d(FrozenBatchNorm2dOptions(channels).eps(options.eps)));
  return torch::nn::AnyModule(torch::nn::BatchNorm2d(
      torch::nn::BatchNorm2dOptions(channels).eps(options.eps).momentum(options.momentum)));
}

void init_norms(torch::nn::Module& root) {
  torch::NoGradGuard no_grad;
  // apply() with a Module& visitor works inside constructors, before the module is owned by a shared_ptr.
  root.apply([](torch::nn::Module& module) {
    if (auto* bn = module.as<torch::nn::BatchNorm2dImpl>()) {
      bn->weight.fill_(1.0);
      bn->bias.zero_();
    } else if (auto* bn1d = module.as<torch::nn::BatchNorm1dImpl>()) {
      bn1d->weight.fill_(1.0);
      bn1d->bias.zero_();
    }
  });
}

}  // namespace vigil::nn
