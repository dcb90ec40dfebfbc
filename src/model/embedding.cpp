#include "vigil/model/embedding.h"

#include <torch/torch.h>

#include <cmath>
#include <map>
#include <mutex>
#include <random>

#include "vigil/core/error.h"

namespace vigil::model {

namespace {

/// The projection for features of width `d`: [d, K] of +-1/sqrt(K), one bit of mt19937_64 per entry.
torch::Tensor projection(int64_t d) {
  static std::mutex mutex;
  static std::map<int64_t, torch::Tensor> cache;  // one per feature width: a server embeds with one model
  std::lock_guard lock(mutex);
  if (auto it = cache.find(d); it != cache.end()) return it->second;
  std::mt19937_64 bits(0x76696769'6c656d62ULL ^ static_cast<uint64_t>(d));
  const float scale = 1.0F / std::sqrt(static_cast<float>(kEmbeddingDims));
  torch::Tensor r = torch::empty({d, kEmbeddingDims}, torch::kFloat32);
  float* p = r.data_ptr<float>();
  for (int64_t i = 0; i < d * kEmbeddingDims; ++i) p[i] = (bits() >> 63) != 0U ? scale : -scale;
  return cache.emplace(d, r).first->second;
}

}  // namespace

torch::Tensor project_embedding(const torch::Tensor& features) {
  VIGIL_CHECK(features.dim() == 2 && features.size(1) > 0,
              "expected features [N, D] with D > 0, got {} dimensions", features.dim());
  const torch::Tensor f = features.to(torch::kCPU, torch::kFloat32).contiguous();
  return torch::matmul(f, projection(f.size(1))).contiguous();
}

std::vector<float> embedding_row(const torch::Tensor& embeddings, int64_t i) {
  VIGIL_CHECK(embeddings.dim() == 2 && i >= 0 && i < embeddings.size(0), "embedding row {} of {}", i,
              embeddings.dim() == 2 ? embeddings.size(0) : 0);
  const torch::Tensor row = embeddings[i].to(torch::kCPU, torch::kFloat32).contiguous();
  return {row.data_ptr<float>(), row.data_ptr<float>() + row.numel()};
}

std::vector<double> stored_embedding(const std::vector<float>& embedding) {
  std::vector<double> out;
  out.reserve(embedding.size());
  for (float v : embedding) out.push_back(std::round(static_cast<double>(v) * 1e5) / 1e5);
  return out;
}

}  // namespace vigil::model
