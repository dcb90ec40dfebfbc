#include "vigil/nn/frozen_batch_norm.h"

#include <string_view>

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
  // The eval-mode batch_norm kernel computes the same scale/bias form in one fused pass (no
  // broadcast temporaries); the buffers never require grad, so nothing here is trained.
  return torch::batch_norm(x, weight, bias, running_mean, running_var, /*training=*/false, /*momentum=*/0.0,
                           options.eps(), /*cudnn_enabled=*/true);
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
  return bn_ ? bn_->forward(x) : frozen_->forward(x);
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
