#pragma once
/// Early stopping on a validation metric (Ultralytics' EarlyStopping: stop once `patience` epochs have passed
/// without improvement), with its state kept in checkpoints so a resumed run stops when the original would.

#include <string>

namespace vigil::train {

/// Tracks the best value of a metric and the epoch it was reached.
class EarlyStopping {
 public:
  /// `patience` <= 0 disables stopping (the best value is still tracked). An improvement must beat the best
  /// by more than `min_delta` (>= 0); `maximize` is true for mAP/accuracy, false for losses.
  explicit EarlyStopping(int patience = 50, double min_delta = 0.0, bool maximize = true);

  /// Records the metric of `epoch`; returns true when it is a new best. NaN never improves.
  bool update(double metric, int epoch);
  /// True once `patience` epochs have passed since the best one.
  bool should_stop() const;
  /// The best metric so far (NaN before the first update with a number).
  double best() const;
  /// The epoch of the best metric, -1 before the first.
  int best_epoch() const { return best_epoch_; }
  /// The epoch of the last update, -1 before the first.
  int last_epoch() const { return last_epoch_; }

  /// The whole state as a JSON object (settings included), for model::Checkpoint::extra_json.
  std::string to_json() const;
  /// Restores a state written by to_json(). Malformed text -> DataError.
  static EarlyStopping from_json(const std::string& json);

 private:
  int patience_;
  double min_delta_;
  bool maximize_;
  bool has_best_ = false;
  double best_ = 0.0;
  int best_epoch_ = -1;
  int last_epoch_ = -1;
};

}  // namespace vigil::train
