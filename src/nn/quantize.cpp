#include "vigil/nn/quantize.h"

#include <ATen/Context.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/native/quantized/PackedParams.h>
#include <fmt/format.h>
#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <list>
#include <mutex>
#include <utility>
#include <vector>

#include "vigil/core/error.h"
#include "vigil/nn/backbones/resnet.h"
#include "vigil/nn/detection/fpn.h"
#include "vigil/nn/detection/rpn.h"

namespace vigil::nn {

namespace {

// Percentile kept at each end of an observed tensor, and the sample size it is taken from: 2^18 values
// give the 99.99th percentile from the top 26 of them, in a few milliseconds even for the 14M-value
// activations of a detector's first stage.
constexpr double kTail = 1e-4;
constexpr int64_t kSample = int64_t{1} << 18;

using PackedConv = c10::intrusive_ptr<ConvPackedParamsBase<2>>;

/// The tensor's values as a 1-d view without copying when its memory is dense (channels-last included).
torch::Tensor flat_values(const torch::Tensor& t) {
  if (t.dim() == 4 && !t.is_contiguous() && t.is_contiguous(torch::MemoryFormat::ChannelsLast))
    return t.permute({0, 2, 3, 1}).reshape(-1);
  return t.reshape(-1);
}

}  // namespace

void RangeObserver::observe(const torch::Tensor& t) {
  VIGIL_ASSERT(t.defined() && t.numel() > 0, "observing an empty activation");
  torch::Tensor values = flat_values(t.detach().to(torch::kFloat32));
  const int64_t n = values.numel();
  if (n > kSample) {
    int64_t step = n / kSample;
    if (step % 2 == 0) ++step;  // odd: walks through every channel of a channels-last tensor, not a few
    values = values.slice(0, 0, n, step).contiguous();
  }
  const int64_t m = values.numel();
  const int64_t tail = static_cast<int64_t>(std::floor(static_cast<double>(m) * kTail));
  const float lo = std::get<0>(values.kthvalue(1 + tail)).item<float>();
  const float hi = std::get<0>(values.kthvalue(m - tail)).item<float>();
  VIGIL_CHECK(std::isfinite(lo) && std::isfinite(hi),
              "expected finite activations during int8 calibration, got [{}, {}]", lo, hi);
  lo_ = count_ == 0 ? lo : std::min(lo_, lo);
  hi_ = count_ == 0 ? hi : std::max(hi_, hi);
  ++count_;
}

QParams RangeObserver::qparams() const {
  VIGIL_CHECK(count_ > 0,
              "expected int8 calibration to observe every quantised activation, got one never "
              "reached (the calibration forward passes skipped part of the model)");
  const double lo = std::min(0.0, static_cast<double>(lo_));
  const double hi = std::max(0.0, static_cast<double>(hi_));
  QParams q;
  q.scale = std::max((hi - lo) / 255.0, 1e-8);
  q.zero_point = std::clamp<int64_t>(std::llround(-lo / q.scale), 0, 255);
  return q;
}

torch::Tensor quantize_activation(const torch::Tensor& x, const QParams& q) {
  return torch::quantize_per_tensor(x, q.scale, q.zero_point, torch::kQUInt8);
}

torch::Tensor quantized_add(const torch::Tensor& a, const torch::Tensor& b, const QParams& out) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("quantized::add", "")
                             .typed<at::Tensor(at::Tensor, at::Tensor, double, int64_t)>();
  return op.call(a, b, out.scale, out.zero_point);
}

torch::Tensor quantized_add_relu(const torch::Tensor& a, const torch::Tensor& b, const QParams& out) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("quantized::add_relu", "")
                             .typed<at::Tensor(at::Tensor, at::Tensor, double, int64_t)>();
  return op.call(a, b, out.scale, out.zero_point);
}

// LibTorch 1.13's oneDNN int8 convolution reorders its prepacked weights in place for the first input shape
// it sees; a later input of another shape can then fail with "could not create a primitive descriptor for a
// reorder primitive" (reproduced with torch.ao's own quantised ResNet-50 on 800x864 after 800x1000). A weight
// pack therefore only ever serves one input shape: Packed keeps the quantised weights and prepacks them again
// for each new shape, remembering the last kPackedShapes (a camera or a classifier feeds one shape; a folder
// of photographs a few), each a copy of the int8 weights.
constexpr size_t kPackedShapes = 3;

struct QuantizedConv2d::Packed {
  torch::Tensor weight;  // qint8, per output channel
  c10::optional<at::Tensor> bias;
  torch::List<int64_t> stride, padding, dilation;
  int64_t groups = 1;
  std::mutex mutex;
  std::list<std::pair<std::vector<int64_t>, PackedConv>> by_shape;  // most recently used first

  PackedConv for_shape(c10::IntArrayRef sizes) {
    static const auto prepack =
        c10::Dispatcher::singleton()
            .findSchemaOrThrow("quantized::conv2d_prepack", "")
            .typed<PackedConv(at::Tensor, c10::optional<at::Tensor>, torch::List<int64_t>,
                              torch::List<int64_t>, torch::List<int64_t>, int64_t)>();
    const std::lock_guard<std::mutex> lock(mutex);
    const std::vector<int64_t> key(sizes.begin(), sizes.end());
    for (auto it = by_shape.begin(); it != by_shape.end(); ++it) {
      if (it->first != key) continue;
      by_shape.splice(by_shape.begin(), by_shape, it);
      return it->second;
    }
    by_shape.emplace_front(key, prepack.call(weight, bias, stride, padding, dilation, groups));
    if (by_shape.size() > kPackedShapes) by_shape.pop_back();
    return by_shape.front().second;
  }
};

QuantizedConv2d::QuantizedConv2d(const torch::nn::Conv2dImpl& conv, const QParams& out, bool relu)
    : out_(out), relu_(relu) {
  const auto& o = conv.options;
  VIGIL_CHECK(c10::holds_alternative<torch::ExpandingArray<2>>(o.padding()) &&
                  c10::holds_alternative<torch::enumtype::kZeros>(o.padding_mode()),
              "expected a convolution with explicit zero padding to quantise, got another padding");
  VIGIL_CHECK(!relu || out.zero_point == 0, "expected a ReLU output range starting at 0, got zero point {}",
              out.zero_point);
  torch::NoGradGuard no_grad;
  const torch::Tensor w = conv.weight.detach().to(torch::kFloat32).contiguous();
  // Symmetric per output channel: oneDNN takes int8 weights with zero point 0.
  const torch::Tensor max_abs = w.abs().amax({1, 2, 3}).clamp_min(1e-12);
  const torch::Tensor scales = (max_abs / 127.0).to(torch::kFloat64);
  const torch::Tensor zero_points = torch::zeros({w.size(0)}, torch::kLong);
  const auto list = [](const torch::ExpandingArray<2>& a) {
    return torch::List<int64_t>({a->at(0), a->at(1)});
  };
  packed_ = std::make_shared<Packed>();
  packed_->weight = torch::quantize_per_channel(w, scales, zero_points, 0, torch::kQInt8);
  if (conv.bias.defined() && conv.bias.numel() > 0)
    packed_->bias = conv.bias.detach().to(torch::kFloat32).contiguous();
  packed_->stride = list(o.stride());
  packed_->padding = list(c10::get<torch::ExpandingArray<2>>(o.padding()));
  packed_->dilation = list(o.dilation());
  packed_->groups = o.groups();
}

torch::Tensor QuantizedConv2d::forward(const torch::Tensor& qx) const {
  VIGIL_ASSERT(packed_, "forward of an empty QuantizedConv2d");
  const PackedConv params = packed_->for_shape(qx.sizes());
  try {
    return relu_ ? params->apply_relu(qx, out_.scale, out_.zero_point)
                 : params->apply(qx, out_.scale, out_.zero_point);
  } catch (const std::exception& e) {
    throw InternalError(
        fmt::format("int8 convolution failed on input {} strides {} (scale {}, zero point {}): {}",
                    c10::str(qx.sizes()), c10::str(qx.strides()), qx.q_scale(), qx.q_zero_point(), e.what()));
  }
}

namespace {

/// What quantize_int8 converts, in calibration order: ResNet bodies; the FPNs fed by one (their inputs come
/// quantised); every RPN head of such a detector (it takes the FPN's quantised levels).
struct Int8Parts {
  std::vector<ResNetImpl*> resnets;
  std::vector<FeaturePyramidNetworkImpl*> fpns;
  std::vector<RPNHeadImpl*> rpn_heads;
};

Int8Parts int8_parts(torch::nn::Module& root) {
  Int8Parts parts;
  for (const auto& m : root.modules()) {
    if (auto* resnet = m->as<ResNetImpl>()) parts.resnets.push_back(resnet);
    if (auto* backbone = m->as<BackboneWithFPNImpl>(); backbone && backbone->is_resnet())
      parts.fpns.push_back(backbone->fpn().get());
  }
  if (!parts.fpns.empty()) {
    for (const auto& m : root.modules())
      if (auto* head = m->as<RPNHeadImpl>()) parts.rpn_heads.push_back(head);
  }
  return parts;
}

}  // namespace

int count_int8_capable(torch::nn::Module& root) {
  return static_cast<int>(int8_parts(root).resnets.size());
}

int quantize_int8(torch::nn::Module& root, const std::function<void()>& calibrate) {
  VIGIL_CHECK(!root.is_training(), "expected an eval-mode model to quantise, got train mode");
  const Int8Parts parts = int8_parts(root);
  VIGIL_CHECK(!parts.resnets.empty(),
              "expected a model with a ResNet backbone to quantise to int8 (resnet18, resnet50, "
              "fasterrcnn_resnet50_fpn), got none: use precision fp32 or bf16");
  at::globalContext().setQEngine(at::QEngine::ONEDNN);
  for (auto* m : parts.resnets) m->begin_int8_calibration();
  for (auto* m : parts.fpns) m->begin_int8_calibration();
  for (auto* m : parts.rpn_heads) m->begin_int8_calibration();
  calibrate();
  int quantized = 0;
  for (auto* m : parts.resnets) quantized += m->finish_int8_calibration();
  for (auto* m : parts.fpns) quantized += m->finish_int8_calibration();
  for (auto* m : parts.rpn_heads) quantized += m->finish_int8_calibration();
  // The float weights of every quantised convolution are never read again (the int8 copies and their packs
  // are): free them, about 100 MB for fasterrcnn_resnet50_fpn, and hand the pages back to the system.
  torch::NoGradGuard no_grad;
  const auto release = [](torch::nn::Module& m) {
    for (const auto& sub : m.modules())
      if (auto* conv = sub->as<torch::nn::Conv2dImpl>())
        conv->weight.set_data(torch::empty({0}, conv->weight.options()));
  };
  for (auto* m : parts.resnets) release(*m);
  for (auto* m : parts.fpns) release(*m);
  for (auto* m : parts.rpn_heads) release(*m);
  malloc_trim(0);
  return quantized;
}

}  // namespace vigil::nn
