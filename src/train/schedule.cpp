#include "vigil/train/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "vigil/core/error.h"

namespace vigil::train {

const std::vector<std::string>& schedule_names() {
  static const std::vector<std::string> kNames = {"constant", "step", "cosine"};
  return kNames;
}

void ScheduleOptions::validate() const {
  const auto& names = schedule_names();
  VIGIL_CHECK(std::find(names.begin(), names.end(), name) != names.end(),
              "expected schedule.name to be one of constant, step, cosine, got '{}'", name);
  VIGIL_CHECK(warmup_iters >= 0, "expected schedule.warmup_iters >= 0, got {}", warmup_iters);
  VIGIL_CHECK(warmup_factor > 0 && warmup_factor <= 1, "expected schedule.warmup_factor in (0, 1], got {}",
              warmup_factor);
  VIGIL_CHECK(step_size >= 1, "expected schedule.step_size >= 1, got {}", step_size);
  VIGIL_CHECK(gamma > 0 && gamma <= 1, "expected schedule.gamma in (0, 1], got {}", gamma);
  VIGIL_CHECK(min_lr_ratio >= 0 && min_lr_ratio <= 1, "expected schedule.min_lr_ratio in [0, 1], got {}",
              min_lr_ratio);
}

LrSchedule::LrSchedule(ScheduleOptions options, double base_lr, int64_t total_iters, int64_t iters_per_epoch)
    : options_(std::move(options)),
      base_lr_(base_lr),
      total_iters_(total_iters),
      iters_per_epoch_(iters_per_epoch) {
  options_.validate();
  VIGIL_CHECK(std::isfinite(base_lr) && base_lr > 0, "expected a base learning rate > 0, got {}", base_lr);
  VIGIL_CHECK(total_iters >= 1, "expected total_iters >= 1, got {}", total_iters);
  VIGIL_CHECK(iters_per_epoch >= 1, "expected iters_per_epoch >= 1, got {}", iters_per_epoch);
}

double LrSchedule::lr_at(int64_t iter) const {
  VIGIL_CHECK(iter >= 0, "expected an iteration >= 0, got {}", iter);
  double main = 1.0;
  if (options_.name == "step") {
    const int64_t epoch = iter / iters_per_epoch_;
    main = std::pow(options_.gamma, static_cast<double>(epoch / options_.step_size));
  } else if (options_.name == "cosine") {
    const double t = static_cast<double>(std::min(iter, total_iters_)) / static_cast<double>(total_iters_);
    const double r = options_.min_lr_ratio;
    main = r + (1.0 - r) * 0.5 * (1.0 + std::cos(std::numbers::pi * t));
  }
  double warmup = 1.0;
  if (iter < options_.warmup_iters) {
    const double alpha = static_cast<double>(iter) / options_.warmup_iters;
    warmup = options_.warmup_factor + (1.0 - options_.warmup_factor) * alpha;
  }
  return base_lr_ * main * warmup;
}

}  // namespace vigil::train
