#pragma once
/// The clip classifiers' data loader: batches of windows (data/clips.h) as [B, T, 3, H, W] tensors, with the
/// guarantees of DataLoader (loader.h): worker threads, at most `prefetch_batches` batches in flight, and the
/// same batches for any thread count, since every window's random stream is seeded from (seed, epoch,
/// window index).
///
/// Augmentation is drawn once per window and applied to each of its T frames alike (the same crop, flip,
/// rotation and brightness), as torchvision's video transforms treat a clip's frames as one batch: motion
/// between frames is the signal a clip model learns, and per-frame jitter would add motion that is not there.
///
/// Frames are decoded once and kept resized to the output size in a FrameCache shared by the run's loaders,
/// while the cache's byte budget allows: overlapping windows (stride < T) and later epochs reuse them. The
/// geometric augmentation then runs on that small frame rather than the full-size image, which is the cost
/// that matters at CCTV resolutions; a batch is the same whether its frames came from the cache or not.

#include <torch/types.h>
#include <opencv2/core.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vigil/data/augment.h"
#include "vigil/data/clips.h"
#include "vigil/data/dataset.h"
#include "vigil/data/formats.h"
#include "vigil/data/loader.h"

namespace vigil::data {

/// Decoded frames, resized to one output size, by sample index; thread-safe. A frame is stored only while
/// the total stays within the byte budget (first come, first kept), so memory is bounded whatever the
/// dataset's size.
class FrameCache {
 public:
  /// `budget_bytes` 0 disables caching (every lookup misses).
  explicit FrameCache(size_t budget_bytes);
  ~FrameCache();
  FrameCache(const FrameCache&) = delete;
  FrameCache& operator=(const FrameCache&) = delete;

  /// The cached frame of `sample` at `size`, or an empty Mat. The returned Mat shares the cached pixels:
  /// callers must not write into it.
  cv::Mat get(int sample, cv::Size size) const;
  /// Keeps `frame` (8-bit BGR, already resized) for `sample` when it fits the budget; true when kept.
  bool put(int sample, const cv::Mat& frame);

  struct Stats {
    size_t frames = 0, bytes = 0, budget = 0;
    size_t hits = 0, misses = 0;
    size_t refused = 0;  ///< frames that did not fit the budget
  };
  Stats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Iterates windows of a ClipGrouping in batches. `ds` and `grouping` must outlive the loader.
/// Batch::images is [B, T, 3, H, W] float (normalised when LoaderOptions::normalize), Batch::targets the
/// windows' labels and Batch::indices the window indices (into grouping.windows), in batch order.
/// LoaderOptions' detection fields are ignored. A window with a frame that cannot be decoded is skipped with
/// a warning naming the file and counted in skipped(); its batch is one smaller.
class ClipLoader {
 public:
  /// `windows` are indices into grouping.windows (e.g. those of one split); `cache` may be null (no
  /// caching) and may be shared with other loaders of the same dataset.
  ClipLoader(const Dataset& ds, ImageSource images, const ClipGrouping& grouping, std::vector<int> windows,
             LoaderOptions o, ClassificationAugmentOptions ca = {}, std::shared_ptr<FrameCache> cache = {});
  ~ClipLoader();
  ClipLoader(const ClipLoader&) = delete;
  ClipLoader& operator=(const ClipLoader&) = delete;

  /// Starts (or restarts, abandoning the rest of the current one) an epoch: reshuffles and begins decoding.
  void start_epoch(int epoch);
  /// The next batch of the epoch, or nullopt at its end. Starts epoch 0 when no epoch was started.
  /// Rethrows an unexpected error raised in a worker.
  std::optional<Batch> next();
  size_t batches_per_epoch() const;
  /// Windows skipped because one of their frames could not be used, over the loader's life.
  size_t skipped() const;
  /// The first few "file: reason" entries of the frames behind skipped windows (for an error message).
  std::vector<std::string> skipped_frames() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil::data
