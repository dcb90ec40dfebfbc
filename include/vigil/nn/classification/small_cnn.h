#pragma once
/// `mask_small_cnn`: the face-mask seed's small Keras CNN, rebuilt in LibTorch.
///
/// Exact layer order (input [N, 3, 100, 100]; convs are "valid" like Keras' default padding):
///   features.0  Conv2d(3, 32, 3)    features.1 ReLU   features.2  BatchNorm2d(32)   features.3  MaxPool2d(2)
///   features.4  Conv2d(32, 64, 3)   features.5 ReLU   features.6  BatchNorm2d(64)   features.7  MaxPool2d(2)
///   features.8  Conv2d(64, 128, 3)  features.9 ReLU   features.10 BatchNorm2d(128)  features.11 MaxPool2d(2)
///   flatten (C, H, W order: 128 x 10 x 10 = 12800 at 100x100)
///   classifier.0 Linear(12800, 256)  classifier.1 BatchNorm1d(256)  classifier.2 ReLU  classifier.3
///   Dropout(0.5) classifier.4 Linear(256, num_classes)
/// Parameter names are therefore features.{0,4,8}.{weight,bias}, features.{2,6,10}.{weight,bias,running_mean,
/// running_var,num_batches_tracked}, classifier.0/.4.{weight,bias}, classifier.1.{weight,bias,running_*,...}.
/// (Keras flattens H, W, C: importing Keras weights would need classifier.0's columns permuted.)

#include <torch/torch.h>

#include <array>
#include <cstdint>

#include "vigil/nn/classification/classifier.h"

namespace vigil::nn {

struct SmallCnnOptions {
  TORCH_ARG(int64_t, num_classes) = 2;
  TORCH_ARG(int64_t, input_size) = 100;  ///< square input side the flatten size is computed for
  TORCH_ARG(double, dropout) = 0.5;

 public:
  void validate() const;
};

/// The mask seed's CNN (see the file comment for the layer order). Backbone stages = the three conv blocks.
class SmallCnnImpl : public Classifier {
 public:
  explicit SmallCnnImpl(const SmallCnnOptions& options = {});
  torch::Tensor forward(const torch::Tensor& images) override;
  std::pair<torch::Tensor, torch::Tensor> forward_with_embedding(const torch::Tensor& images) override;

  void replace_head(int64_t num_classes, uint64_t seed = 0) override;
  void freeze_backbone(int trainable_stages = 0) override;
  int num_backbone_stages() const override { return 3; }
  int64_t num_classes() const override { return fc_->options.out_features(); }
  /// Features entering classifier.0 (12800 at 100x100).
  int64_t flat_features() const { return flat_features_; }

 private:
  SmallCnnOptions options_;
  int64_t flat_features_ = 0;
  std::array<torch::nn::Conv2d, 3> convs_{nullptr, nullptr, nullptr};
  std::array<torch::nn::BatchNorm2d, 3> norms_{nullptr, nullptr, nullptr};
  std::shared_ptr<torch::nn::Module> classifier_;
  torch::nn::Linear dense_{nullptr}, fc_{nullptr};
  torch::nn::BatchNorm1d dense_norm_{nullptr};
};
TORCH_MODULE(SmallCnn);

}  // namespace vigil::nn
