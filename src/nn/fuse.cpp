#include "vigil/nn/fuse.h"

#include "vigil/core/error.h"
#include "vigil/nn/backbones/mobilenet_v2.h"
#include "vigil/nn/backbones/resnet.h"

namespace vigil::nn {

int fold_batch_norms(torch::nn::Module& root) {
  VIGIL_CHECK(!root.is_training(), "expected an eval-mode model to fold batch norms into, got train mode");
  int folded = 0;
  for (const auto& m : root.modules()) {
    if (auto* cna = m->as<ConvNormActivationImpl>()) {
      folded += cna->fold_norm();
    } else if (auto* v2 = m->as<MobileNetV2BlockImpl>()) {
      folded += v2->fold_norm();
    } else if (auto* block = m->as<ResNetBlockImpl>()) {
      folded += block->fold_norms();
    } else if (auto* resnet = m->as<ResNetImpl>()) {
      folded += resnet->fold_stem_norm();
    }
  }
  return folded;
}

int to_channels_last(torch::nn::Module& root) {
  torch::NoGradGuard no_grad;
  int converted = 0;
  auto convert = [&](torch::Tensor& t) {
    if (!t.defined() || t.dim() != 4 || t.is_contiguous(torch::MemoryFormat::ChannelsLast)) return;
    t.set_data(t.contiguous(torch::MemoryFormat::ChannelsLast));
    ++converted;
  };
  for (auto& p : root.parameters(/*recurse=*/true)) convert(p);
  for (auto& b : root.buffers(/*recurse=*/true)) convert(b);
  return converted;
}

}  // namespace vigil::nn
