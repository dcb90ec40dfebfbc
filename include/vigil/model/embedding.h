#pragma once
/// The image embedding drift monitoring compares between a model's training data and its traffic: the
/// model's own backbone features (nn::Classifier::forward_with_embedding, nn::DetectorOutput::embeddings),
/// projected to kEmbeddingDims numbers by a fixed random sign matrix (Achlioptas' random projection, a
/// Johnson-Lindenstrauss map). Why a random projection and not PCA: it needs no fitting, so the server and
/// `vigil monitor profile` embed an image identically without sharing a basis, a log row stays small, and
/// distances and means between embeddings are kept up to a small factor. The matrix depends only on the
/// feature width: it is drawn from mt19937_64 with a fixed seed, a sequence the C++ standard fixes, so every
/// build of vigil gives the same embedding for the same features.

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace vigil::model {

/// Numbers per embedding.
constexpr int64_t kEmbeddingDims = 16;

/// Features [N, D] (any device and float type) -> embeddings [N, kEmbeddingDims] float32 on the CPU.
torch::Tensor project_embedding(const torch::Tensor& features);

/// Row `i` of project_embedding's result as a vector.
std::vector<float> embedding_row(const torch::Tensor& embeddings, int64_t i);

/// An embedding as the prediction log and a reference profile store it (5 decimals), so the server's row
/// and `vigil monitor profile`'s row of one image hold the same numbers.
std::vector<double> stored_embedding(const std::vector<float>& embedding);

}  // namespace vigil::model
