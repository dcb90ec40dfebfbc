#pragma once
// TF.js weight files (the layers/graph-model "weightsManifest" format of tfjs-core's io.decodeWeights): a
// JSON manifest of groups, each listing its binary shard files and, in order, the weights packed in their
// concatenation (name, shape, dtype, and optionally a uint8/uint16 quantization with scale and min). Private
// to the model module: faceapi.cpp is its one user.

#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <string>

namespace vigil::model {

/// Every weight of a manifest as a float32 tensor of its TF shape (HWIO for convolutions), dequantized as
/// tfjs-core does (q * scale + min; int32 weights rounded). Throws NotFound (the manifest or a shard missing)
/// and DataError (bad JSON, an unsupported dtype, shards shorter or longer than the manifest says), naming
/// the file.
std::map<std::string, torch::Tensor> read_tfjs_weights(const std::filesystem::path& manifest);

}  // namespace vigil::model
