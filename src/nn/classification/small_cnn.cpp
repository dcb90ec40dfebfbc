#include "vigil/nn/classification/small_cnn.h"

#include "vigil/core/error.h"
#include "vigil/nn/frozen_batch_norm.h"

namespace vigil::nn {

namespace {
constexpr std::array<int64_t, 4> kChannels = {3, 32, 64, 128};
constexpr int64_t kDense = 256;
}  // namespace

void SmallCnnOptions::validate() const {
  VIGIL_CHECK(num_classes_ >= 1, "expected num_classes >= 1, got {}", num_classes_);
  VIGIL_CHECK(input_size_ >= 22, "expected an input side >= 22 (three conv+pool blocks), got {}",
              input_size_);
  VIGIL_CHECK(dropout_ >= 0.0 && dropout_ < 1.0, "expected dropout in [0, 1), got {}", dropout_);
}

SmallCnnImpl::SmallCnnImpl(const SmallCnnOptions& options) : options_(options) {
  options_.validate();
  auto features = register_module("features", std::make_shared<torch::nn::Module>());
  int64_t side = options_.input_size();
  for (size_t i = 0; i < 3; ++i) {
    const auto in = kChannels[i], out = kChannels[i + 1];
    convs_[i] = features->register_module(std::to_string(4 * i),
                                          torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3)));
    norms_[i] = features->register_module(std::to_string(4 * i + 2), torch::nn::BatchNorm2d(out));
    side = (side - 2) / 2;
  }
  flat_features_ = kChannels[3] * side * side;
  classifier_ = register_module("classifier", std::make_shared<torch::nn::Module>());
  dense_ = classifier_->register_module("0", make_linear(flat_features_, kDense, LinearInit::kXavier));
  dense_norm_ = classifier_->register_module("1", torch::nn::BatchNorm1d(kDense));
  fc_ = classifier_->register_module("4", make_linear(kDense, options_.num_classes(), LinearInit::kXavier));
  torch::NoGradGuard no_grad;
  for (auto& conv : convs_) {
    torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
    conv->bias.zero_();
  }
  init_norms(*this);
}

torch::Tensor SmallCnnImpl::forward(const torch::Tensor& images) {
  return forward_with_embedding(images).first;
}

std::pair<torch::Tensor, torch::Tensor> SmallCnnImpl::forward_with_embedding(const torch::Tensor& images) {
  auto x = images;
  for (size_t i = 0; i < 3; ++i)
    x = torch::max_pool2d(norms_[i]->forward(convs_[i]->forward(x).relu_()), {2, 2});
  const auto dense = dense_norm_->forward(dense_->forward(x.flatten(1))).relu_();
  x = dense;
  if (options_.dropout() > 0) x = torch::dropout(x, options_.dropout(), is_training());
  return {fc_->forward(x), dense};
}

void SmallCnnImpl::replace_head(int64_t num_classes, uint64_t seed) {
  VIGIL_CHECK(num_classes >= 1, "expected num_classes >= 1, got {}", num_classes);
  fc_ = classifier_->replace_module("4", make_linear(kDense, num_classes, LinearInit::kXavier, seed));
  options_.num_classes(num_classes);
}

void SmallCnnImpl::freeze_backbone(int trainable_stages) {
  VIGIL_CHECK(trainable_stages >= 0 && trainable_stages <= 3, "expected trainable stages in [0, 3], got {}",
              trainable_stages);
  set_requires_grad(*this, true);
  for (int i = 0; i < 3 - trainable_stages; ++i) {
    set_requires_grad(*convs_[i], false);
    set_requires_grad(*norms_[i], false);
  }
}

}  // namespace vigil::nn
