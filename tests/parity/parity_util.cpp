#include "parity_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "tests_util.h"

namespace vigil::testing {

namespace {
torch::Dtype parse_dtype(const std::string& s) {
  if (s == "float32") return torch::kFloat32;
  if (s == "float64") return torch::kFloat64;
  if (s == "int64") return torch::kInt64;
  if (s == "int32") return torch::kInt32;
  if (s == "uint8") return torch::kUInt8;
  if (s == "bool") return torch::kBool;
  throw std::runtime_error("unknown dtype " + s);
}
}  // namespace

std::map<std::string, torch::Tensor> load_tensors(const std::filesystem::path& dir) {
  std::ifstream idx(dir / "index.json");
  if (!idx) throw std::runtime_error("missing " + (dir / "index.json").string());
  auto index = nlohmann::json::parse(idx);
  std::map<std::string, torch::Tensor> out;
  for (auto& [name, meta] : index.items()) {
    std::vector<int64_t> shape = meta.at("shape").get<std::vector<int64_t>>();
    auto t = torch::empty(shape, torch::TensorOptions().dtype(parse_dtype(meta.at("dtype"))));
    std::ifstream in(dir / meta.at("file").get<std::string>(), std::ios::binary);
    in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
    if (static_cast<size_t>(in.gcount()) != t.nbytes())
      throw std::runtime_error("short tensor file for " + name);
    out[name] = t;
  }
  return out;
}

bool run_generator(const std::string& python, const std::string& script, const std::filesystem::path& out_dir,
                   const std::string& args) {
  const auto path = std::filesystem::path(VIGIL_SOURCE_DIR) / "tests" / "parity" / script;
  auto [code, out] = run_shell(python + " '" + path.string() + "' '" + out_dir.string() + "' " + args);
  if (code != 0) ADD_FAILURE() << script << " failed (" << code << "):\n" << out;
  return code == 0;
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes()) return std::numeric_limits<double>::infinity();
  if (a.numel() == 0) return 0.0;
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

}  // namespace vigil::testing
