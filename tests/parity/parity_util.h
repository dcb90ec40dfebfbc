#pragma once
// Reads tensors written by tests/parity/tensor_io.py and runs the gen_*.py generators with the reference
// python (python3-torchvision).

#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <string>

namespace vigil::testing {

/// name -> tensor, from DIR/index.json + DIR/*.bin.
std::map<std::string, torch::Tensor> load_tensors(const std::filesystem::path& dir);

/// Runs `python tests/parity/<script> <out_dir> [args]`; fails the test (ADD_FAILURE) and returns false on
/// error.
bool run_generator(const std::string& python, const std::string& script, const std::filesystem::path& out_dir,
                   const std::string& args = "");

/// Max absolute difference, for messages.
double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace vigil::testing
