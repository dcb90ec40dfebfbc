#include "vigil/nn/detection/detector.h"

#include <torch/torch.h>

#include "vigil/core/error.h"

namespace vigil::nn {

torch::Tensor pooled_embedding(const std::vector<torch::Tensor>& maps) {
  VIGIL_CHECK(!maps.empty(), "expected at least one feature map, got none");
  std::vector<torch::Tensor> means;
  means.reserve(maps.size());
  for (const auto& m : maps) {
    VIGIL_CHECK(m.dim() == 4, "expected feature maps [N, C, H, W], got {} dimensions", m.dim());
    means.push_back(m.mean({2, 3}));
  }
  return torch::cat(means, 1);
}

}  // namespace vigil::nn
