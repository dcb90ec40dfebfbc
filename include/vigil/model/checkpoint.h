#pragma once
/// Training checkpoints: everything a killed run needs to continue bit-for-bit where it stopped.
///
/// One file: a LibTorch archive (torch::serialize, the format torch.jit/torch::save use) holding the model's
/// parameters and buffers, the optimizer state, the default CPU generator's state and the metadata below,
/// followed by a 72-byte trailer ("VGLCKPT1" + SHA-256 hex of the archive bytes). The file is written to a
/// temporary name and renamed, so a kill during a save leaves the previous checkpoint intact; a truncated or
/// altered file fails the hash and is reported as DataError instead of crashing inside the zip reader.
/// To open one from Python, drop the last 72 bytes.

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace vigil::model {

/// Metadata stored beside the tensors.
struct Checkpoint {
  int epoch = 0;                         ///< epochs completed (the next epoch to run)
  int64_t iteration = 0;                 ///< optimizer steps taken; also the LR schedule position
  std::string arch;                      ///< architecture name from the model zoo
  std::vector<std::string> class_names;  ///< index -> class name
  std::string config_yaml;               ///< the resolved training options
  std::string extra_json;                ///< trainer state: early stopping, best metric, ...
  /// What serving a model needs besides weights (model/model_file.h's ModelInfo as JSON): task, input size,
  /// normalisation, thresholds, lineage. Empty in checkpoints written before it existed.
  std::string model_json;
  std::string rng_state;  ///< data-order RNG (see rng_state_string), empty when unused
  std::string optimizer;  ///< optimizer kind ("sgd", "adamw", ...); empty if none was saved
  /// Tensors the trainer keeps beside the model's: the trained weights of a run whose model tensors are a
  /// weight average (train/ema.h). Stored as "extra/<i>"; filled by load_checkpoint, not by
  /// read_checkpoint_meta.
  std::vector<torch::Tensor> extra_tensors;
};

/// A module's parameters then buffers, in registration order, undefined slots (bias=false) skipped: the
/// tensors a checkpoint stores, in its order.
std::vector<torch::Tensor> state_tensors(const torch::nn::Module& model);

/// Saves meta (its extra_tensors included), `model` and, when not null, `optimizer` (plus the default CPU
/// generator) to `file` atomically.
/// Throws IoError naming the file.
void save_checkpoint(const std::filesystem::path& file, const Checkpoint& meta, torch::nn::Module& model,
                     torch::optim::Optimizer* optimizer);

/// Restores `model`, `optimizer` (when not null) and the default CPU generator from `file`; returns its meta.
/// Missing file -> NotFound; truncated, corrupt or foreign file -> DataError naming it; a checkpoint of
/// another architecture (parameter names, shapes or dtypes differ) -> InvalidArgument naming the first
/// mismatching key, before anything is changed; an optimizer of another kind, or none saved ->
/// InvalidArgument. The optimizer's hyper-parameters (lr, ...) are not restored: build it from the same
/// options and let the schedule set the lr from Checkpoint::iteration.
Checkpoint load_checkpoint(const std::filesystem::path& file, torch::nn::Module& model,
                           torch::optim::Optimizer* optimizer);

/// The optimizer's registry name ("sgd", "adam", "adamw", ...) from its dynamic type; "unknown" otherwise.
/// Stored in Checkpoint::optimizer so a resume refuses an optimizer of another kind.
std::string optimizer_kind(const torch::optim::Optimizer& optimizer);

/// Reads and verifies only the metadata (same errors as load_checkpoint for the file itself).
Checkpoint read_checkpoint_meta(const std::filesystem::path& file);

/// The engine's full state as text (the standard's operator<<), for Checkpoint::rng_state.
std::string rng_state_string(const std::mt19937_64& rng);
/// Restores an engine from rng_state_string(). Malformed text -> DataError.
void restore_rng_state(std::mt19937_64& rng, const std::string& state);

}  // namespace vigil::model
