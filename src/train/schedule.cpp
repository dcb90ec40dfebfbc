#include "vigil/train/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include <nlohmann/json.hpp>

#include "vigil/core/error.h"

namespace vigil::train {

const std::vector<std::string>& schedule_names() {
  static const std::vector<std::string> kNames = {"constant", "step", "cosine", "plateau"};
  return kNames;
}

void ScheduleOptions::validate() const {
  const auto& names = schedule_names();
  VIGIL_CHECK(std::find(names.begin(), names.end(), name) != names.end(),
              "expected schedule.name to be one of constant, step, cosine, plateau, got '{}'", name);
  VIGIL_CHECK(warmup_iters >= 0, "expected schedule.warmup_iters >= 0, got {}", warmup_iters);
  VIGIL_CHECK(warmup_factor > 0 && warmup_factor <= 1, "expected schedule.warmup_factor in (0, 1], got {}",
              warmup_factor);
  VIGIL_CHECK(step_size >= 1, "expected schedule.step_size >= 1, got {}", step_size);
  VIGIL_CHECK(gamma > 0 && gamma <= 1, "expected schedule.gamma in (0, 1], got {}", gamma);
  VIGIL_CHECK(min_lr_ratio >= 0 && min_lr_ratio <= 1, "expected schedule.min_lr_ratio in [0, 1], got {}",
              min_lr_ratio);
  VIGIL_CHECK(factor > 0 && factor < 1, "expected schedule.factor in (0, 1), got {}", factor);
  VIGIL_CHECK(patience >= 0, "expected schedule.patience >= 0, got {}", patience);
  VIGIL_CHECK(threshold >= 0, "expected schedule.threshold >= 0, got {}", threshold);
  VIGIL_CHECK(threshold_mode == "rel" || threshold_mode == "abs",
              "expected schedule.threshold_mode to be rel or abs, got '{}'", threshold_mode);
  VIGIL_CHECK(cooldown >= 0, "expected schedule.cooldown >= 0, got {}", cooldown);
  VIGIL_CHECK(min_lr >= 0, "expected schedule.min_lr >= 0, got {}", min_lr);
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

PlateauReducer::PlateauReducer(const ScheduleOptions& options, double base_lr, bool maximize)
    : factor_(options.factor),
      patience_(options.patience),
      threshold_(options.threshold),
      relative_(options.threshold_mode == "rel"),
      cooldown_(options.cooldown),
      min_lr_(options.min_lr),
      maximize_(maximize),
      base_lr_(base_lr),
      lr_(base_lr) {
  options.validate();
  VIGIL_CHECK(std::isfinite(base_lr) && base_lr > 0, "expected a base learning rate > 0, got {}", base_lr);
}

bool PlateauReducer::better(double a) const {
  if (std::isnan(a)) return false;
  if (!has_best_) return true;  // PyTorch starts from best = +-inf
  if (maximize_) return relative_ ? a > best_ * (1.0 + threshold_) : a > best_ + threshold_;
  return relative_ ? a < best_ * (1.0 - threshold_) : a < best_ - threshold_;
}

bool PlateauReducer::step(double metric) {
  if (better(metric)) {
    best_ = metric;
    has_best_ = true;
    num_bad_epochs_ = 0;
  } else {
    ++num_bad_epochs_;
  }
  if (cooldown_counter_ > 0) {  // bad epochs right after a reduction do not count
    --cooldown_counter_;
    num_bad_epochs_ = 0;
  }
  if (num_bad_epochs_ <= patience_) return false;
  cooldown_counter_ = cooldown_;
  num_bad_epochs_ = 0;
  const double reduced = std::max(lr_ * factor_, min_lr_);
  if (lr_ - reduced <= 1e-8) return false;  // PyTorch's eps: at min_lr already
  lr_ = reduced;
  ++reductions_;
  return true;
}

std::string PlateauReducer::to_json() const {
  nlohmann::json j = {{"factor", factor_},
                      {"patience", patience_},
                      {"threshold", threshold_},
                      {"relative", relative_},
                      {"cooldown", cooldown_},
                      {"min_lr", min_lr_},
                      {"maximize", maximize_},
                      {"base_lr", base_lr_},
                      {"lr", lr_},
                      {"has_best", has_best_},
                      {"best", best_},
                      {"num_bad_epochs", num_bad_epochs_},
                      {"cooldown_counter", cooldown_counter_},
                      {"reductions", reductions_}};
  return j.dump();
}

PlateauReducer PlateauReducer::from_json(const std::string& text) {
  try {
    const auto j = nlohmann::json::parse(text);
    PlateauReducer r;
    r.factor_ = j.at("factor").get<double>();
    r.patience_ = j.at("patience").get<int>();
    r.threshold_ = j.at("threshold").get<double>();
    r.relative_ = j.at("relative").get<bool>();
    r.cooldown_ = j.at("cooldown").get<int>();
    r.min_lr_ = j.at("min_lr").get<double>();
    r.maximize_ = j.at("maximize").get<bool>();
    r.base_lr_ = j.at("base_lr").get<double>();
    r.lr_ = j.at("lr").get<double>();
    r.has_best_ = j.at("has_best").get<bool>();
    r.best_ = j.at("best").get<double>();
    r.num_bad_epochs_ = j.at("num_bad_epochs").get<int>();
    r.cooldown_counter_ = j.at("cooldown_counter").get<int>();
    r.reductions_ = j.at("reductions").get<int>();
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw DataError(fmt::format("malformed plateau schedule state: {}", e.what()));
  }
}

}  // namespace vigil::train
