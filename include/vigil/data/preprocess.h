#pragma once
/// The preprocessing contract between training and inference: what turns a decoded image into the tensor a
/// model was trained on. It is stored in the model file (model::ModelInfo) and held by the predictor, so
/// serving and watching reproduce the training loader's validation input exactly. The loader's other
/// options (batch size, shuffling, seed, augmentation) are training's business and stay out of it.

#include <vector>

namespace vigil::data {

struct PreprocessOptions {
  /// Classification: the whole image is resized (bilinear) to width x height. 0 for detectors, which take
  /// the image at its own size and resize inside (torchvision's GeneralizedRCNNTransform).
  int width = 0, height = 0;
  /// Detection: the transform's short-side target and long-side cap (0 = unbounded). 0 for classifiers.
  int min_size = 0, max_size = 0;
  /// Per-channel RGB statistics on 0..1 values. Empty when unknown (then normalize must be false).
  std::vector<double> mean, std;
  /// Normalise with mean/std before the model (classifiers); detectors normalise inside.
  bool normalize = false;

  /// Throws InvalidArgument naming the field: negative sizes, mean/std not 3 values when normalising, a std
  /// value <= 0.
  void validate() const;
};

}  // namespace vigil::data
