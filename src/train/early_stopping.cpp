#include "vigil/train/early_stopping.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>

#include "vigil/core/error.h"

namespace vigil::train {

EarlyStopping::EarlyStopping(int patience, double min_delta, bool maximize)
    : patience_(patience), min_delta_(min_delta), maximize_(maximize) {
  VIGIL_CHECK(std::isfinite(min_delta) && min_delta >= 0, "expected early stopping min_delta >= 0, got {}",
              min_delta);
}

bool EarlyStopping::update(double metric, int epoch) {
  last_epoch_ = epoch;
  if (std::isnan(metric)) return false;
  const bool improved = !has_best_ || (maximize_ ? metric > best_ + min_delta_ : metric < best_ - min_delta_);
  if (improved) {
    has_best_ = true;
    best_ = metric;
    best_epoch_ = epoch;
  }
  return improved;
}

bool EarlyStopping::should_stop() const {
  if (patience_ <= 0 || last_epoch_ < 0) return false;
  // With no finite metric yet, count from "before epoch 0" so a run of NaNs still stops.
  const int since = has_best_ ? last_epoch_ - best_epoch_ : last_epoch_ + 1;
  return since >= patience_;
}

double EarlyStopping::best() const {
  return has_best_ ? best_ : std::numeric_limits<double>::quiet_NaN();
}

std::string EarlyStopping::to_json() const {
  nlohmann::json j = {{"patience", patience_}, {"min_delta", min_delta_},   {"maximize", maximize_},
                      {"has_best", has_best_}, {"best_epoch", best_epoch_}, {"last_epoch", last_epoch_}};
  // JSON has no infinities; a best of +-inf (possible for a loss) is kept as a string.
  if (has_best_)
    j["best"] = std::isfinite(best_) ? nlohmann::json(best_) : nlohmann::json(fmt::format("{}", best_));
  return j.dump();
}

EarlyStopping EarlyStopping::from_json(const std::string& text) {
  try {
    const auto j = nlohmann::json::parse(text);
    EarlyStopping s(j.at("patience").get<int>(), j.at("min_delta").get<double>(),
                    j.at("maximize").get<bool>());
    s.has_best_ = j.at("has_best").get<bool>();
    s.best_epoch_ = j.at("best_epoch").get<int>();
    s.last_epoch_ = j.at("last_epoch").get<int>();
    if (s.has_best_) {
      const auto& b = j.at("best");
      s.best_ = b.is_string() ? std::stod(b.get<std::string>()) : b.get<double>();
    }
    return s;
  } catch (const nlohmann::json::exception& e) {
    throw DataError(
        fmt::format("expected an early-stopping state in JSON, got an unreadable one: {}", e.what()));
  } catch (const std::logic_error& e) {  // std::stod on a bad string
    throw DataError(
        fmt::format("expected an early-stopping state in JSON, got a bad best value: {}", e.what()));
  }
}

}  // namespace vigil::train
