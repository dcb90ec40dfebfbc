// TF.js weight manifests and shards, read the way tfjs-core's io.loadWeights + io.decodeWeights read them.

#include "tfjs_weights.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"

namespace vigil::model {
namespace {

using nlohmann::json;

/// Bytes of one stored element: the quantized type's when quantized, else the dtype's.
size_t element_bytes(const std::string& dtype, const std::string& quantized, const std::string& where) {
  if (quantized == "uint8") return 1;
  if (quantized == "uint16") return 2;
  if (!quantized.empty())
    throw DataError(fmt::format("{}: quantization dtype '{}' is not supported (expected uint8 or uint16)",
                                where, quantized));
  if (dtype == "float32" || dtype == "int32") return 4;
  if (dtype == "bool") return 1;
  throw DataError(
      fmt::format("{}: dtype '{}' is not supported (expected float32, int32 or bool)", where, dtype));
}

/// Element i of a little-endian buffer as a double.
double stored_value(const char* data, size_t i, size_t bytes, const std::string& dtype, bool quantized) {
  if (quantized && bytes == 1) return static_cast<unsigned char>(data[i]);
  if (quantized && bytes == 2) {
    uint16_t v;
    std::memcpy(&v, data + 2 * i, 2);
    return v;
  }
  if (dtype == "float32") {
    float v;
    std::memcpy(&v, data + 4 * i, 4);
    return v;
  }
  if (dtype == "int32") {
    int32_t v;
    std::memcpy(&v, data + 4 * i, 4);
    return v;
  }
  return static_cast<unsigned char>(data[i]) != 0;
}

const json& require(const json& node, const char* key, json::value_t type, const std::string& where) {
  if (!node.is_object() || !node.contains(key) || node.at(key).type() != type)
    throw DataError(fmt::format("{}: expected a '{}' {} in every entry, got {}", where, key,
                                type == json::value_t::array ? "array" : "string",
                                node.is_object() && node.contains(key) ? node.at(key).dump() : "none"));
  return node.at(key);
}

/// The concatenated bytes of a group's shard files (paths relative to the manifest's folder).
std::string read_shards(const json& paths, const fs::path& manifest) {
  std::string bytes;
  for (const json& p : paths) {
    if (!p.is_string())
      throw DataError(
          fmt::format("{}: expected shard file names in 'paths', got {}", to_utf8(manifest), p.dump()));
    const fs::path shard = manifest.parent_path() / p.get<std::string>();
    std::error_code ec;
    if (!fs::exists(shard, ec))
      throw NotFound(
          fmt::format("{}: the weights file {} it lists is missing", to_utf8(manifest), to_utf8(shard)));
    bytes += read_file(shard);
  }
  return bytes;
}

}  // namespace

std::map<std::string, torch::Tensor> read_tfjs_weights(const fs::path& manifest) {
  const std::string where = to_utf8(manifest);
  json groups;
  try {
    groups = json::parse(read_file(manifest));
  } catch (const json::exception& e) {
    throw DataError(fmt::format("{}: not a TF.js weights manifest (bad JSON: {})", where, e.what()));
  }
  if (!groups.is_array() || groups.empty())
    throw DataError(
        fmt::format("{}: expected a TF.js weights manifest (a JSON array of weight groups), got {}", where,
                    groups.is_array() ? "an empty array" : groups.type_name()));
  std::map<std::string, torch::Tensor> out;
  for (const json& group : groups) {
    const json& paths = require(group, "paths", json::value_t::array, where);
    const json& weights = require(group, "weights", json::value_t::array, where);
    const std::string bytes = read_shards(paths, manifest);
    const std::string shards = fmt::format("{} (shards {})", where, paths.dump());
    size_t offset = 0;
    for (const json& w : weights) {
      const std::string name = require(w, "name", json::value_t::string, where).get<std::string>();
      const std::string dtype = require(w, "dtype", json::value_t::string, where).get<std::string>();
      const json& shape_node = require(w, "shape", json::value_t::array, where);
      std::vector<int64_t> shape;
      int64_t count = 1;
      for (const json& d : shape_node) {
        if (!d.is_number_integer() || d.get<int64_t>() < 0)
          throw DataError(fmt::format("{}: weight '{}' has the shape {}; expected non-negative integers",
                                      where, name, shape_node.dump()));
        shape.push_back(d.get<int64_t>());
        count *= shape.back();
      }
      std::string quantized;
      double scale = 1, min = 0;
      if (w.contains("quantization")) {
        const json& q = w.at("quantization");
        quantized = q.value("dtype", std::string("?"));
        scale = q.value("scale", 1.0);
        min = q.value("min", 0.0);
      }
      const size_t bytes_per = element_bytes(dtype, quantized, fmt::format("{}: weight '{}'", where, name));
      const size_t need = bytes_per * static_cast<size_t>(count);
      if (offset + need > bytes.size())
        throw DataError(
            fmt::format("{}: {} bytes, but weight '{}' needs bytes {}..{}: the .bin is truncated or "
                        "belongs to another manifest",
                        shards, bytes.size(), name, offset, offset + need));
      torch::Tensor t = torch::empty(shape, torch::kFloat32);
      float* dst = t.data_ptr<float>();
      const char* src = bytes.data() + offset;
      for (int64_t i = 0; i < count; ++i) {
        double v = stored_value(src, static_cast<size_t>(i), bytes_per, dtype, !quantized.empty());
        if (!quantized.empty()) v = v * scale + min;
        if (dtype == "int32") v = std::round(v);
        dst[i] = static_cast<float>(v);
      }
      out[name] = t;
      offset += need;
    }
    if (offset != bytes.size())
      throw DataError(
          fmt::format("{}: {} bytes, but the manifest's weights take {}: the .bin belongs to another "
                      "manifest",
                      shards, bytes.size(), offset));
  }
  return out;
}

}  // namespace vigil::model
