#pragma once
/// Anchors fitted to a dataset's boxes (train: model.fit_anchors). A detector trained from scratch on small
/// data learns faster when its anchors look like its objects: torchvision's defaults (32-512 px, ratios
/// 0.5-2) are COCO's, and most of them never match a gun in a 225 px photograph or a shape in a 320x240
/// frame.
///
/// Sizes are quantiles of sqrt(width x height) of the training boxes after the model's own resize (the test
/// size, short side min_size capped by max_size), one per anchor size the architecture has: MobileNetV3's
/// five on every map, ResNet-50 FPN's one per map, smallest first. Aspect ratios (height / width) are the
/// 1/6, 1/2 and 5/6 quantiles, rounded to 0.05 and merged when equal. Quantiles rather than k-means: the same
/// boxes always give the same anchors, and a few outliers cannot pull a whole anchor away from the bulk.

#include <vector>

#include "vigil/data/dataset.h"

namespace vigil::train {

struct FittedAnchors {
  std::vector<double> sizes;   ///< pixels of the resized image, ascending
  std::vector<double> ratios;  ///< height / width, ascending, distinct
  size_t boxes = 0;            ///< boxes they were fitted to
};

/// Fits `num_sizes` sizes and up to three ratios to the boxes of `samples[i]` for i in `indices`, each image
/// resized as a detector resizes it (short side to `min_size`, long side capped at `max_size`, 0 = no cap).
/// `one_per_map` (ResNet-50 FPN) keeps all num_sizes values even when two round to the same pixel; otherwise
/// (one list shared by every map) repeats are dropped. Crowd boxes and boxes without area are left out.
/// Throws InvalidArgument when no box is left (nothing to fit), or on num_sizes < 1 or min_size < 1.
FittedAnchors fit_anchors(const std::vector<data::Sample>& samples, const std::vector<int>& indices,
                          int num_sizes, bool one_per_map, int min_size, int max_size);

}  // namespace vigil::train
