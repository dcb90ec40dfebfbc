#pragma once
/// PyTorch weight files in and out: read torch.save / TorchScript files into a name -> tensor map, load that
/// map into a LibTorch module by parameter name with a clear report, and write files Python's torch.load
/// reads.

#include <torch/nn/module.h>
#include <torch/ordered_dict.h>
#include <torch/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace vigil::nn {

/// Parameter and buffer tensors by their PyTorch state_dict name, in file order.
using StateDict = torch::OrderedDict<std::string, torch::Tensor>;

/// Reads the tensors of a PyTorch weight file:
///  - torch.save zip archives (PyTorch >= 1.6) holding a state_dict (an OrderedDict with `_metadata`, as the
///    published torchvision files are), a plain dict of tensors, or a checkpoint dict whose weights are under
///    "model", "state_dict", "model_state_dict" or "ema" (the first dict of tensors wins; logged);
///  - TorchScript archives (torch.jit.save): parameters and buffers under their eager state_dict names;
///  - the legacy (pre-1.6) torch.save format.
/// A DataParallel `module.` prefix on every key is stripped (logged). Views, offsets and shared storages are
/// kept as in Python. Throws NotFound for a missing file and DataError naming the file for anything
/// unreadable.
StateDict read_state_dict(const std::filesystem::path& file);

/// Which keys load_state_dict copies and what counts as an error.
struct LoadOptions {
  bool strict = true;  ///< throw InvalidArgument on missing / unexpected / mismatched keys
  std::vector<std::string>
      skip_prefixes;  ///< keys starting with one of these are left alone (e.g. a predictor)
  std::vector<std::string>
      only_prefixes;                 ///< when not empty, only keys starting with one of these are loaded
  bool skip_shape_mismatch = false;  ///< shape mismatches are skipped, not errors (fine-tuning a new head)
  /// Checks the options; throws InvalidArgument (e.g. on an empty prefix).
  void validate() const;
};

/// What load_state_dict did, key by key.
struct LoadReport {
  std::vector<std::string> loaded;            ///< copied into the module
  std::vector<std::string> missing;           ///< in the module, not in the file
  std::vector<std::string> unexpected;        ///< in the file, not in the module
  std::vector<std::string> skipped;           ///< left out on purpose: "key (reason)"
  std::vector<std::string> shape_mismatches;  ///< "key: expected [..], got [..]" (also dtype kind clashes)
  /// A readable multi-line summary (counts, then the keys of each non-empty list).
  std::string to_text() const;
};

/// Copies `dict` into `module`'s parameters and buffers (recursive names, exact match) without recording
/// gradients, converting dtypes within a kind (float64 -> float32, int32 -> int64). BatchNorm's
/// `num_batches_tracked` present on one side only is skipped, not an error. With strict=true, throws
/// InvalidArgument listing the first offending keys and their counts; when almost nothing matches the
/// message says the file looks like a different architecture.
LoadReport load_state_dict(torch::nn::Module& module, const StateDict& dict, const LoadOptions& opt = {});

/// Writes `dict` as torch.save does (a zip holding an OrderedDict of tensors) so Python's torch.load reads
/// it. Tensors are written contiguous from CPU copies. The file appears atomically; throws IoError on
/// failure.
void save_state_dict(const StateDict& dict, const std::filesystem::path& file);

/// One line per tensor (name, dtype, shape) and a total (tensor count, element count, bytes), for
/// `vigil weights inspect`.
std::string describe_state_dict(const StateDict& dict);

}  // namespace vigil::nn
