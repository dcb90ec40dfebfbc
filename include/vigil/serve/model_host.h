#pragma once
/// The served model and its hot reload: a new model is loaded and warmed up beside the old one, then swapped
/// in atomically; requests already holding the old one finish on it, and it is freed with its last user.

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "vigil/core/blas.h"
#include "vigil/model/predict.h"

namespace vigil::serve {

/// Where a model comes from (what `vigil predict` accepts).
struct ModelSource {
  std::string path;     ///< a vigil model file, or a torchvision .pth / TorchScript file with `arch`
  std::string arch;     ///< required for .pth files
  int num_classes = 0;  ///< .pth: classes of the head (0 = the file's)
  std::vector<std::string> class_names;  ///< .pth: names (detectors: without the background)
  std::string name;                      ///< served name (default: the file's stem)
  /// Workspace whose registry resolves a `path` that is not a file ("guns@production", "guns/3"): every
  /// load resolves it again, so moving the alias and reloading switches the version.
  std::string workspace;
};

/// One loaded model, immutable once published except for its Predictor, which only the inference worker
/// touches.
struct ServedModel {
  std::string name, version, source;
  model::ModelInfo info;                                    ///< after the server's threshold overrides
  nn::PostprocessOptions defaults;                          ///< detection thresholds requests start from
  std::unique_ptr<model::Predictor> predictor;              ///< instance 0; also preprocesses (thread-safe)
  std::vector<std::unique_ptr<model::Predictor>> replicas;  ///< instances 1..N-1 (own weights, own state)
  /// The Predictor of inference worker `i`.
  model::Predictor& instance(int i) { return i == 0 ? *predictor : *replicas.at(static_cast<size_t>(i - 1)); }
  double load_ms = 0;
  BlasChoice blas;  ///< the OpenBLAS thread count chosen for it, and the timings (ModelHost::load)
  std::string loaded_at;
  int64_t parameters = 0;
  bool is_detector() const { return predictor->is_detector(); }
  /// Class names without a detector's background.
  std::vector<std::string> classes() const;
};

class ModelHost {
 public:
  /// `instances` copies of the model are loaded, one per inference worker. `blas_threads` > 0 fixes
  /// OpenBLAS's thread count; 0 lets each load choose it by timing (see load()).
  ModelHost(ModelSource source, model::PredictOptions options, int instances = 1, int blas_threads = 0);

  /// Loads `path` (empty: the current source's path) with the current source's arch and class count,
  /// warms it up with one inference and publishes it. On any failure the previous model stays published
  /// and the error propagates (NotFound, DataError, InvalidArgument, ...). Loads are serialised.
  /// Unless fixed, OpenBLAS's thread count (process-wide) is chosen for the model on a batch of 4
  /// (choose_model_blas_threads).
  std::shared_ptr<ServedModel> load(const std::string& path = "");

  /// The published model, or null before the first successful load.
  std::shared_ptr<ServedModel> current() const;
  const ModelSource& source() const { return source_; }
  /// Successful and failed loads so far.
  int loads() const { return loads_; }

 private:
  void choose_blas(ServedModel& model, const torch::Tensor& input, int width, int height, double warm_ms);

  ModelSource source_;
  model::PredictOptions options_;
  std::mutex load_mutex_;  ///< one load at a time
  mutable std::mutex current_mutex_;
  std::shared_ptr<ServedModel> current_;
  int loads_ = 0;
  int instances_ = 1;
  int blas_threads_ = 0;
};

}  // namespace vigil::serve
