#pragma once
/// The constant-velocity Kalman filter of SORT, DeepSORT and ByteTrack, written out for 8 states.
///
/// State: box centre (cx, cy), aspect ratio a = w / h, height h, and the velocities of all four (per frame).
/// The box (cx, cy, a, h) is observed directly. Noise scales with the box height, so a near object (tall
/// box) may move more pixels per frame than a far one; the weights are ByteTrack's (1/20 and 1/160).

#include <array>

#include "vigil/video/geometry.h"

namespace vigil::video {

/// Runs the filter's steps on an Estimate the caller owns (one per track); the filter holds only weights.
class KalmanFilter {
 public:
  using State = std::array<double, 8>;
  using Covariance = std::array<double, 64>;  ///< 8x8, row-major
  using Measurement = std::array<double, 4>;  ///< cx, cy, a, h

  /// Mean and covariance of one track's state.
  struct Estimate {
    State mean{};
    Covariance covariance{};
  };

  /// std_weight_position and std_weight_velocity scale the noise with the box height (both > 0).
  explicit KalmanFilter(double std_weight_position = 1.0 / 20, double std_weight_velocity = 1.0 / 160);

  /// A new track from its first box: zero velocity, wide velocity uncertainty.
  Estimate initiate(const Measurement& z) const;
  /// One frame ahead: x += v, covariance grown by the motion noise.
  void predict(Estimate& e) const;
  /// Folds in a measured box (the standard Kalman correction, via a Cholesky solve of the 4x4 innovation).
  void update(Estimate& e, const Measurement& z) const;

  /// (x1, y1, x2, y2) -> (cx, cy, w / h, h).
  static Measurement to_measurement(const Box& box);
  /// The box a state's first four entries describe.
  static Box to_box(const State& mean);

 private:
  double weight_position_;
  double weight_velocity_;
};

}  // namespace vigil::video
