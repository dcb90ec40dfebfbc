#pragma once
/// Learning-rate schedules as pure functions of the iteration number. Nothing is stepped and nothing is
/// stored: a resumed run needs only the iteration it stopped at (model::Checkpoint::iteration) to get the
/// same learning rates as an uninterrupted one.

#include <cstdint>
#include <string>
#include <vector>

namespace vigil::train {

/// Schedule shape plus an optional linear warm-up, as in torchvision's detection reference (LinearLR from
/// `warmup_factor` to 1 over `warmup_iters`, multiplied into the main schedule).
///
/// `plateau` is PyTorch's ReduceLROnPlateau (the mask seed's Keras callback): the learning rate is
/// multiplied by `factor` once a validation metric has not improved for more than `patience` epochs. Unlike
/// the others it depends on the metrics, so its state (PlateauReducer) travels in the checkpoint.
struct ScheduleOptions {
  std::string name = "cosine";         ///< constant | step | cosine | plateau
  int warmup_iters = 0;                ///< iterations of linear warm-up; 0 disables it
  double warmup_factor = 0.001;        ///< learning-rate multiplier at iteration 0 of the warm-up
  int step_size = 10;                  ///< step: epochs between decays
  double gamma = 0.1;                  ///< step: decay factor
  double min_lr_ratio = 0.01;          ///< cosine: final learning rate as a fraction of the base one
  std::string metric;                  ///< plateau: the watched metric ('' = the early-stopping metric)
  double factor = 0.1;                 ///< plateau: multiplier at each reduction, in (0, 1)
  int patience = 10;                   ///< plateau: epochs without improvement tolerated before reducing
  double threshold = 1e-4;             ///< plateau: what counts as an improvement (see threshold_mode)
  std::string threshold_mode = "rel";  ///< plateau: rel (best * (1 -/+ threshold)) | abs (best -/+ threshold)
  int cooldown = 0;     ///< plateau: epochs after a reduction during which bad epochs are not counted
  double min_lr = 0.0;  ///< plateau: the learning rate never goes below this

  template <class V>
  void visit(V& v) {
    v("name", name, "learning-rate schedule: constant, step or cosine");
    v("warmup_iters", warmup_iters, "iterations of linear warm-up (0 = none)");
    v("warmup_factor", warmup_factor, "warm-up start multiplier");
    v("step_size", step_size, "step schedule: epochs between decays");
    v("gamma", gamma, "step schedule: decay factor");
    v("min_lr_ratio", min_lr_ratio, "cosine schedule: final lr / base lr");
    v("metric", metric, "plateau schedule: metric to watch ('' = the early-stopping metric)");
    v("factor", factor, "plateau schedule: lr multiplier at each reduction");
    v("patience", patience, "plateau schedule: epochs without improvement before reducing");
    v("threshold", threshold, "plateau schedule: minimum improvement");
    v("threshold_mode", threshold_mode, "plateau schedule: rel or abs");
    v("cooldown", cooldown, "plateau schedule: epochs to wait after a reduction");
    v("min_lr", min_lr, "plateau schedule: lower bound of the learning rate");
  }
  /// Range checks; throws InvalidArgument ("expected ..., got ...").
  void validate() const;
};

/// The schedule names ScheduleOptions accepts.
const std::vector<std::string>& schedule_names();

/// lr(iter) = base_lr * main(iter) * warmup(iter), where
///   warmup(i) = warmup_factor + (1 - warmup_factor) * i / warmup_iters for i < warmup_iters, else 1;
///   constant: main = 1;
///   step:     main = gamma ^ floor(epoch / step_size), epoch = floor(i / iters_per_epoch);
///   cosine:   main = r + (1 - r) * (1 + cos(pi * min(i, total_iters) / total_iters)) / 2, r = min_lr_ratio;
///   plateau:  main = 1 (the trainer multiplies in PlateauReducer::scale()).
class LrSchedule {
 public:
  /// `total_iters` is the whole run (epochs * iters_per_epoch). Throws InvalidArgument on bad values.
  LrSchedule(ScheduleOptions options, double base_lr, int64_t total_iters, int64_t iters_per_epoch = 1);

  /// The learning rate for iteration `iter` (0-based, counted across epochs). Iterations past the end keep
  /// the final value.
  double lr_at(int64_t iter) const;

  const ScheduleOptions& options() const { return options_; }
  double base_lr() const { return base_lr_; }
  int64_t total_iters() const { return total_iters_; }
  int64_t iters_per_epoch() const { return iters_per_epoch_; }

 private:
  ScheduleOptions options_;
  double base_lr_;
  int64_t total_iters_;
  int64_t iters_per_epoch_;
};

/// torch.optim.lr_scheduler.ReduceLROnPlateau, stepped once per epoch with the watched metric:
///   better(a) = a < best * (1 - threshold) (rel, minimising), a < best - threshold (abs), mirrored when
///   maximising; a bad epoch counts unless in cooldown; after more than `patience` bad epochs
///   lr = max(lr * factor, min_lr) (skipped when the change is under 1e-8), then cooldown starts.
/// Keras' callback reduces one epoch earlier (after `patience` bad epochs): its patience p is this p - 1.
class PlateauReducer {
 public:
  PlateauReducer() = default;
  /// Throws InvalidArgument on bad options (checked by ScheduleOptions::validate too).
  PlateauReducer(const ScheduleOptions& options, double base_lr, bool maximize);

  /// Records one epoch's metric (NaN is a bad epoch); returns true when the learning rate was reduced.
  bool step(double metric);
  /// The current learning rate over the base one (1 until the first reduction).
  double scale() const { return lr_ / base_lr_; }
  double lr() const { return lr_; }
  int num_bad_epochs() const { return num_bad_epochs_; }
  int reductions() const { return reductions_; }

  /// The state as a JSON object for the checkpoint; from_json restores it (malformed -> DataError).
  std::string to_json() const;
  static PlateauReducer from_json(const std::string& json);

 private:
  bool better(double a) const;

  double factor_ = 0.1;
  int patience_ = 10;
  double threshold_ = 1e-4;
  bool relative_ = true;
  int cooldown_ = 0;
  double min_lr_ = 0.0;
  bool maximize_ = false;
  double base_lr_ = 1.0;
  double lr_ = 1.0;
  bool has_best_ = false;
  double best_ = 0.0;
  int num_bad_epochs_ = 0;
  int cooldown_counter_ = 0;
  int reductions_ = 0;
};

}  // namespace vigil::train
