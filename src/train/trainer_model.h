#pragma once
// Internal to the trainer: the model being trained, behind one interface for classifiers and detectors, and
// the starting weights it is loaded from.

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vigil/data/loader.h"
#include "vigil/eval/coco_eval.h"
#include "vigil/nn/zoo.h"
#include "vigil/train/train_options.h"

namespace vigil::train::detail {

/// Sums over a validation pass; metrics() turns them into results.csv columns.
struct ValSums {
  std::map<std::string, double> loss_sums;  ///< component -> sum over batches (detection) or samples
  double batches = 0, samples = 0, correct = 0;
  eval::DetectionData detections;  ///< detection: every validation image's boxes and predictions
};

/// The model of a run: training losses, validation sums, and the modes its layers should be in.
class TaskModel {
 public:
  virtual ~TaskModel() = default;
  virtual torch::nn::Module& module() = 0;
  virtual std::shared_ptr<torch::nn::Module> module_ptr() = 0;
  /// Training forward pass (train mode): loss name -> scalar; "loss" is the sum that is minimised.
  virtual std::map<std::string, torch::Tensor> train_losses(const data::Batch& batch) = 0;
  /// Adds one validation batch to `sums` (eval mode, no gradients).
  virtual void validate_batch(const data::Batch& batch, ValSums& sums) = 0;
  /// results.csv / TensorBoard metrics of a finished validation pass: val/* and metrics/*.
  virtual std::map<std::string, double> val_metrics(const ValSums& sums) const = 0;
  /// Loss components written as train/<name> (the total, "loss", included last).
  virtual std::vector<std::string> loss_names() const = 0;
  /// Validation columns in order.
  virtual std::vector<std::string> val_names() const = 0;
  /// Train mode, except batch norms whose parameters are all frozen: those keep their running statistics
  /// (Keras' frozen base, which runs in inference mode).
  /// With `frozen_norm_stats` (model.batch_norm: frozen) every batch norm stays in eval mode.
  void set_train_mode();
  bool frozen_norm_stats = false;
  void set_eval_mode() { module().eval(); }
  /// Parameters the optimizer updates (requires_grad).
  std::vector<torch::Tensor> trainable_parameters();
};

/// Builds the model of `options` for `class_names`, seeded by the caller's torch::manual_seed, then loads
/// model.weights (when `load_weights`), freezes stages and moves it to `device`. Classification checks that
/// an input of `input_size` goes through. `class_weights`: per-class loss weights (may be empty).
std::unique_ptr<TaskModel> make_task_model(const TrainOptions& options,
                                           const std::vector<std::string>& class_names, int input_size,
                                           const std::vector<double>& class_weights, torch::Device device,
                                           bool load_weights);

/// model.fit_anchors: replaces options.model.detector's anchor sizes and aspect ratios by ones fitted to the
/// boxes of samples[i], i in `train` (train/anchor_fit.h), logs them, and clears the flag, so the run's
/// config.yaml records the anchors used and a resumed run builds the same model. No-op without the flag.
void fit_detector_anchors(TrainOptions& options, const std::vector<data::Sample>& samples,
                          const std::vector<int>& train);

}  // namespace vigil::train::detail
