#pragma once
/// int8 inference: post-training static quantisation, run by the oneDNN int8 kernels LibTorch ships.
///
/// What is quantised: the ResNet backbones (resnet18/resnet50 classifiers and the body of
/// fasterrcnn_resnet50_fpn), which hold most of those models' time. Their residual blocks run entirely in
/// 8 bits: the image is quantised once before the stem, the blocks hand each other quint8 tensors (residual
/// additions included), and only what the rest of the model reads (the stage outputs the FPN takes, the
/// features the classifier pools) is turned back into float32. Everything after the backbone stays float32.
///
/// How, as torch.ao.quantization's eager mode does it: fold_batch_norms first; then calibration, where the
/// float model runs on representative images and every activation that will be stored in 8 bits records its
/// range (RangeObserver); then each convolution becomes an int8 one (weights symmetric per output channel,
/// activations asymmetric per tensor, float bias), and forward passes switch to the int8 path.

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>

#include <cstdint>
#include <functional>
#include <memory>

namespace vigil::nn {

/// Per-tensor affine quantisation parameters of a quint8 activation: real = scale * (q - zero_point).
struct QParams {
  double scale = 1.0;
  int64_t zero_point = 0;
};

/// The range one activation takes over the calibration images. Per observed tensor it keeps the 0.01th and
/// 99.99th percentiles of an evenly strided sample of the values (a few outliers would otherwise spread 256
/// levels over a range nearly all values never reach), and the widest of those over the observed tensors.
class RangeObserver {
 public:
  void observe(const torch::Tensor& t);
  bool empty() const { return count_ == 0; }
  /// quint8 parameters covering [min(lo, 0), max(hi, 0)]; an InvalidArgument when nothing was observed.
  QParams qparams() const;

 private:
  float lo_ = 0, hi_ = 0;
  int64_t count_ = 0;
};

/// `x` (float32) quantised to quint8 with `q`.
torch::Tensor quantize_activation(const torch::Tensor& x, const QParams& q);

/// a + b of two quint8 tensors, requantised to `out` (quantized::add).
torch::Tensor quantized_add(const torch::Tensor& a, const torch::Tensor& b, const QParams& out);

/// relu(a + b) of two quint8 tensors, requantised to `out` (quantized::add_relu).
torch::Tensor quantized_add_relu(const torch::Tensor& a, const torch::Tensor& b, const QParams& out);

/// An int8 copy of a (norm-folded) float convolution: weights quantised symmetrically per output channel
/// (qint8), bias kept float, prepacked once for oneDNN. Takes and returns quint8 tensors.
class QuantizedConv2d {
 public:
  QuantizedConv2d() = default;
  /// `out` quantises the output; `relu` fuses a ReLU into the kernel (the output must then start at 0).
  QuantizedConv2d(const torch::nn::Conv2dImpl& conv, const QParams& out, bool relu);
  torch::Tensor forward(const torch::Tensor& qx) const;
  bool defined() const { return static_cast<bool>(packed_); }

 private:
  struct Packed;
  std::shared_ptr<Packed> packed_;
  QParams out_;
  bool relu_ = false;
};

/// Modules of `root` that quantise_int8 can quantise (ResNet backbones), so callers can refuse a model
/// before spending time on calibration.
int count_int8_capable(torch::nn::Module& root);

/// Quantises every ResNet backbone in `root` (eval mode, norms folded): records activation ranges while
/// `calibrate` runs float forward passes of `root` on representative inputs, then switches those backbones
/// to int8, freeing the float weights of the convolutions it replaced. Throws InvalidArgument when `root`
/// holds no such backbone or `calibrate` ran none of it. Inference only: a quantised model must not be
/// trained or saved. Returns the number of convolutions
/// quantised.
int quantize_int8(torch::nn::Module& root, const std::function<void()>& calibrate);

}  // namespace vigil::nn
