#pragma once
// Internal to the trainer: the run's dataset version, split indices, class balancing and loaders.

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "vigil/core/workspace.h"
#include "vigil/data/clip_loader.h"
#include "vigil/data/clips.h"
#include "vigil/data/loader.h"
#include "vigil/data/store.h"
#include "vigil/nn/zoo.h"
#include "vigil/train/train_options.h"

namespace vigil::train::detail {

/// The data of one run, resolved from the workspace store.
struct RunData {
  data::DatasetVersion version;
  data::Dataset ds;
  data::ImageSource images;
  std::vector<int> train, val;   ///< indices into ds.samples; clip models: into clips->windows
  std::vector<double> weights;   ///< balance=weights: loss weight per class (empty otherwise)
  std::vector<double> sample_p;  ///< balance=resample: draw weight per train entry (empty otherwise)
  /// Clip models (the zoo spec's clip_length > 0): the dataset's frames grouped into clips and windows by
  /// data.clips; a window is then what a sample is to an image model (train, val and balancing count
  /// windows). Null for image models.
  std::shared_ptr<const data::ClipGrouping> clips;
  std::shared_ptr<data::FrameCache> frame_cache;  ///< clip models: decoded frames shared by both loaders
};

/// The loader of a run: image batches (data::DataLoader) or, for clip models, window batches
/// (data::ClipLoader) — one interface for the training loop.
class RunLoader {
 public:
  explicit RunLoader(std::unique_ptr<data::DataLoader> images);
  RunLoader(std::unique_ptr<data::ClipLoader> clips, std::shared_ptr<data::FrameCache> cache);
  ~RunLoader();
  void start_epoch(int epoch);
  std::optional<data::Batch> next();
  size_t batches_per_epoch() const;
  size_t skipped() const;

 private:
  std::unique_ptr<data::DataLoader> images_;
  std::unique_ptr<data::ClipLoader> clips_;
  std::shared_ptr<data::FrameCache> cache_;
};

/// The loader of run.train (`train` true: with data's augmentations) or run.val, with loader options `lo`.
std::unique_ptr<RunLoader> make_run_loader(const RunData& run, const TrainOptions& options,
                                           const data::LoaderOptions& lo, bool train);

/// Resolves `dataset_ref` (a name, name@id or id), loads its split and checks that both lists have samples
/// and that the dataset's task is the model's. NotFound / DataError / InvalidArgument name the dataset and
/// split.
RunData load_run_data(const Workspace& ws, const TrainOptions& options, const std::string& dataset_ref);

/// Loader options for training (`train` true: shuffled, augmented) or validation.
data::LoaderOptions loader_options(const TrainOptions& options, const nn::ModelSpec& spec, bool train,
                                   size_t samples);

/// Classification input size: data.image_size, else the architecture's.
int classifier_input_size(const TrainOptions& options, const nn::ModelSpec& spec);

/// balance=resample: the training samples of `epoch`, drawn with replacement with probability sample_p, as a
/// dataset of their own (so each draw gets its own augmentation stream). Deterministic for (seed, epoch).
data::Dataset resampled_epoch(const RunData& run, uint64_t seed, int epoch);

/// Profiles the run's validation split (the training split without one) with `weights` into
/// weights/<stem>.profile.json (run_profile.h). A failure costs monitoring its reference, never the run: it
/// is logged as a warning. Defined in run_profile.cpp.
void write_run_profile(const std::filesystem::path& weights, const RunData& run);

}  // namespace vigil::train::detail
