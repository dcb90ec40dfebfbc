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
struct ScheduleOptions {
  std::string name = "cosine";   ///< constant | step | cosine
  int warmup_iters = 0;          ///< iterations of linear warm-up; 0 disables it
  double warmup_factor = 0.001;  ///< learning-rate multiplier at iteration 0 of the warm-up
  int step_size = 10;            ///< step: epochs between decays
  double gamma = 0.1;            ///< step: decay factor
  double min_lr_ratio = 0.01;    ///< cosine: final learning rate as a fraction of the base one

  template <class V>
  void visit(V& v) {
    v("name", name, "learning-rate schedule: constant, step or cosine");
    v("warmup_iters", warmup_iters, "iterations of linear warm-up (0 = none)");
    v("warmup_factor", warmup_factor, "warm-up start multiplier");
    v("step_size", step_size, "step schedule: epochs between decays");
    v("gamma", gamma, "step schedule: decay factor");
    v("min_lr_ratio", min_lr_ratio, "cosine schedule: final lr / base lr");
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
///   cosine:   main = r + (1 - r) * (1 + cos(pi * min(i, total_iters) / total_iters)) / 2, r = min_lr_ratio.
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

}  // namespace vigil::train
