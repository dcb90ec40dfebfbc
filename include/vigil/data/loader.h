#pragma once
/// The training data loader: worker threads decode, augment and convert samples to LibTorch tensors; batches
/// come out in a deterministic order whatever the thread count, with at most `prefetch_batches` in flight.

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "vigil/data/augment.h"
#include "vigil/data/dataset.h"
#include "vigil/data/formats.h"
#include "vigil/data/preprocess.h"

namespace vigil::data {

struct LoaderOptions {
  int batch_size = 8;
  int threads = 0;           ///< decode + augment workers; 0 = all cores
  int prefetch_batches = 4;  ///< batches in flight (decoding or ready): bounds memory
  bool shuffle = true;
  bool drop_last = false;
  uint64_t seed = 0;
  bool augment = true;
  /// Detection: resize like torchvision's GeneralizedRCNNTransform, scale = min(min_size / short side,
  /// max_size / long side); 0 leaves that bound out (both 0: keep the size).
  int min_size = 0, max_size = 0;
  int image_width = 224, image_height = 224;                                ///< classification output size
  std::vector<double> mean{0.485, 0.456, 0.406}, std{0.229, 0.224, 0.225};  ///< RGB, on 0..1 values
  bool normalize = false;  ///< detection models normalise inside; classifiers want it here
  /// Decode once: "auto" keeps each decoded image in memory after its first use while the cache fits
  /// cache_mb, so later epochs skip the decode (Python recipes decode their whole dataset up front);
  /// "none" decodes every time. With augmentation, the kept image is first shrunk to what the model will
  /// see (classification: short side 2x the output; detection: cache_min_size / cache_max_size, as the
  /// detector's own resize), so the geometric augmentations work on the small image. Without it the kept
  /// pixels are exactly what an uncached loader makes.
  std::string cache = "auto";
  int cache_mb = 0;  ///< memory budget of the cache; 0 = a quarter of the memory available at start
  int cache_min_size = 0, cache_max_size = 0;  ///< detection with augmentation: the shrink (0 = none)
  /// Data-parallel training: this process reads shard `shard_rank` of `shard_count` of every epoch's
  /// order (shard_of()), so the processes of one run see disjoint parts of the same shuffled epoch.
  int shard_rank = 0, shard_count = 1;

  template <class V>
  void visit(V& v) {
    v("batch_size", batch_size, "samples per batch");
    v("threads", threads, "decode and augment workers (0 = all cores)");
    v("prefetch_batches", prefetch_batches, "batches prepared ahead (bounds memory)");
    v("shuffle", shuffle, "shuffle the sample order every epoch");
    v("drop_last", drop_last, "drop the last incomplete batch");
    v("seed", seed, "seed for shuffling and augmentation");
    v("augment", augment, "apply augmentations");
    v("min_size", min_size, "detection: resize so the short side is this (0 = no bound)");
    v("max_size", max_size, "detection: ... unless the long side would exceed this (0 = no bound)");
    v("image_width", image_width, "classification: output width");
    v("image_height", image_height, "classification: output height");
    v("mean", mean, "per-channel RGB mean for normalisation");
    v("std", std, "per-channel RGB standard deviation for normalisation");
    v("normalize", normalize, "subtract mean and divide by std");
    v("cache", cache, "keep decoded images in memory after their first use: auto or none");
    v("cache_mb", cache_mb,
      "memory budget of the image cache in MiB (0 = a quarter of the available memory)");
    v("cache_min_size", cache_min_size,
      "detection: cached training images shrunk to this short side (0 = no)");
    v("cache_max_size", cache_max_size, "detection: ... and this long side at most (0 = no bound)");
    v("shard_rank", shard_rank, "data-parallel training: the shard this process reads");
    v("shard_count", shard_count, "data-parallel training: the number of shards (processes)");
  }
  void validate() const;
  /// The preprocessing part of these options, as a model file records it: classification keeps the image
  /// size, detection the transform's min/max size.
  PreprocessOptions preprocess(bool detection) const;
};

struct Batch {
  std::vector<int> indices;               ///< dataset sample indices, in batch order
  torch::Tensor images;                   ///< classification: [B, 3, H, W] float, RGB
  std::vector<torch::Tensor> image_list;  ///< detection: each [3, H, W] float in 0..1 (or normalised), RGB
  std::vector<torch::Tensor> boxes;       ///< detection: each [N, 4] float x1 y1 x2 y2 in pixels
  std::vector<torch::Tensor> labels;      ///< detection: each [N] int64, class_id + 1 (0 = background)
  torch::Tensor targets;                  ///< classification: [B] int64 class ids
  size_t size() const { return indices.size(); }
};

/// Iterates a subset of a dataset in batches. `ds` must outlive the loader. A sample whose image cannot be
/// decoded is skipped with a warning naming the file and counted in skipped(); its batch is one smaller.
/// The per-sample random stream is seeded from (seed, epoch, sample index), so the same options give the same
/// batches for any number of threads.
class DataLoader {
 public:
  /// `indices` are positions in ds.samples (e.g. one split); `images` maps a sample to its file.
  DataLoader(const Dataset& ds, ImageSource images, std::vector<int> indices, LoaderOptions o,
             DetectionAugmentOptions da = {}, ClassificationAugmentOptions ca = {});
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  /// Starts (or restarts, abandoning the rest of the current one) an epoch: reshuffles and begins decoding.
  void start_epoch(int epoch);
  /// The next batch of the epoch, or nullopt at its end. Starts epoch 0 when no epoch was started.
  /// Rethrows an unexpected error raised in a worker.
  std::optional<Batch> next();
  size_t batches_per_epoch() const;
  /// Samples skipped because their image could not be used, over the loader's life.
  size_t skipped() const;
  /// Images in the decode-once cache and their bytes.
  std::pair<size_t, size_t> cached() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Shard `rank` of `count` of an epoch's `order`, with torch's DistributedSampler semantics: the order is
/// padded to a multiple of `count` by repeating its start, and shard r takes positions r, r + count, ...
/// So consecutive global batches of B = count * b samples are split across the shards' batches of b.
std::vector<int> shard_of(const std::vector<int>& order, int rank, int count);
/// The length of every shard of `n` items (shard_of()): n rounded up to a multiple of `count`, divided by it.
size_t shard_size(size_t n, int count);

/// An 8-bit BGR image as the loader hands it to models: RGB float [3, H, W] on 0..1, normalised with
/// o.mean / o.std when o.normalize (no resizing).
torch::Tensor image_to_tensor(const cv::Mat& bgr, const PreprocessOptions& o);

/// A classifier's input exactly as the loader makes it without augmentation (validation): the whole image
/// resized (bilinear) to o.width x o.height, then image_to_tensor(). `vigil predict` uses it so training and
/// prediction see the same pixels.
torch::Tensor classification_input(const cv::Mat& bgr, const PreprocessOptions& o);

}  // namespace vigil::data
