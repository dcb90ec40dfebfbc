#include "vigil/video/kalman_filter.h"

#include <algorithm>
#include <cmath>

#include "vigil/core/error.h"

namespace vigil::video {
namespace {

constexpr int kN = 8;  // state size
constexpr int kM = 4;  // measurement size

double& at(KalmanFilter::Covariance& p, int r, int c) {
  return p[static_cast<size_t>(r * kN + c)];
}

// The heights noise is proportional to; a collapsed box would otherwise zero every variance.
double noise_height(const KalmanFilter::State& mean) {
  return std::max(mean[3], 1.0);
}

// Cholesky factor L (lower) of a symmetric positive definite 4x4 matrix, in place.
void cholesky4(std::array<double, kM * kM>& a) {
  for (int j = 0; j < kM; ++j) {
    double d = a[j * kM + j];
    for (int k = 0; k < j; ++k) d -= a[j * kM + k] * a[j * kM + k];
    VIGIL_ASSERT(d > 0, "Kalman innovation covariance is not positive definite");
    const double l = std::sqrt(d);
    a[j * kM + j] = l;
    for (int i = j + 1; i < kM; ++i) {
      double s = a[i * kM + j];
      for (int k = 0; k < j; ++k) s -= a[i * kM + k] * a[j * kM + k];
      a[i * kM + j] = s / l;
    }
    for (int i = 0; i < j; ++i) a[i * kM + j] = 0;
  }
}

// Solves L L^T x = b for one right-hand side.
std::array<double, kM> cholesky_solve(const std::array<double, kM * kM>& l, std::array<double, kM> b) {
  for (int i = 0; i < kM; ++i) {
    for (int k = 0; k < i; ++k) b[i] -= l[i * kM + k] * b[k];
    b[i] /= l[i * kM + i];
  }
  for (int i = kM - 1; i >= 0; --i) {
    for (int k = i + 1; k < kM; ++k) b[i] -= l[k * kM + i] * b[k];
    b[i] /= l[i * kM + i];
  }
  return b;
}

}  // namespace

KalmanFilter::KalmanFilter(double std_weight_position, double std_weight_velocity)
    : weight_position_(std_weight_position), weight_velocity_(std_weight_velocity) {
  VIGIL_CHECK(weight_position_ > 0 && weight_velocity_ > 0,
              "expected positive Kalman noise weights, got position {} and velocity {}", weight_position_,
              weight_velocity_);
}

KalmanFilter::Estimate KalmanFilter::initiate(const Measurement& z) const {
  Estimate e;
  std::copy(z.begin(), z.end(), e.mean.begin());
  const double h = std::max(z[3], 1.0);
  const double p = 2 * weight_position_ * h, v = 10 * weight_velocity_ * h;
  const std::array<double, kN> std_dev{p, p, 1e-2, p, v, v, 1e-5, v};
  for (int i = 0; i < kN; ++i) at(e.covariance, i, i) = std_dev[i] * std_dev[i];
  return e;
}

void KalmanFilter::predict(Estimate& e) const {
  const double h = noise_height(e.mean);
  const double p = weight_position_ * h, v = weight_velocity_ * h;
  const std::array<double, kN> std_dev{p, p, 1e-2, p, v, v, 1e-5, v};
  for (int i = 0; i < kM; ++i) e.mean[i] += e.mean[i + kM];
  // F P F^T with F = [[I, I], [0, I]]: add the velocity rows to the position rows, then the columns.
  Covariance& c = e.covariance;
  for (int i = 0; i < kM; ++i)
    for (int j = 0; j < kN; ++j) at(c, i, j) += at(c, i + kM, j);
  for (int i = 0; i < kN; ++i)
    for (int j = 0; j < kM; ++j) at(c, i, j) += at(c, i, j + kM);
  for (int i = 0; i < kN; ++i) at(c, i, i) += std_dev[i] * std_dev[i];
}

void KalmanFilter::update(Estimate& e, const Measurement& z) const {
  const double h = noise_height(e.mean);
  const double p = weight_position_ * h;
  const std::array<double, kM> r{p * p, p * p, 1e-1 * 1e-1, p * p};
  Covariance& c = e.covariance;
  std::array<double, kM * kM> s{};  // innovation covariance H P H^T + R = top-left block + R
  for (int i = 0; i < kM; ++i)
    for (int j = 0; j < kM; ++j) s[i * kM + j] = at(c, i, j) + (i == j ? r[i] : 0.0);
  cholesky4(s);
  // Gain K = P H^T S^-1 (8x4): row i solves S k_i = (P H^T)_i, S being symmetric.
  std::array<std::array<double, kM>, kN> gain{};
  for (int i = 0; i < kN; ++i)
    gain[i] = cholesky_solve(s, {at(c, i, 0), at(c, i, 1), at(c, i, 2), at(c, i, 3)});
  std::array<double, kM> innovation{};
  for (int j = 0; j < kM; ++j) innovation[j] = z[j] - e.mean[j];
  for (int i = 0; i < kN; ++i)
    for (int j = 0; j < kM; ++j) e.mean[i] += gain[i][j] * innovation[j];
  // P -= K (H P): H P is P's first four rows.
  Covariance next = c;
  for (int i = 0; i < kN; ++i)
    for (int j = 0; j < kN; ++j) {
      double d = 0;
      for (int k = 0; k < kM; ++k) d += gain[i][k] * at(c, k, j);
      at(next, i, j) -= d;
    }
  // Keep it exactly symmetric so rounding never drives the Cholesky above non-positive.
  for (int i = 0; i < kN; ++i)
    for (int j = i + 1; j < kN; ++j)
      at(next, i, j) = at(next, j, i) = 0.5 * (at(next, i, j) + at(next, j, i));
  c = next;
}

KalmanFilter::Measurement KalmanFilter::to_measurement(const Box& box) {
  const double w = box.width(), h = box.height();
  return {box.x1 + 0.5 * w, box.y1 + 0.5 * h, h > 0 ? w / h : 0.0, h};
}

Box KalmanFilter::to_box(const State& mean) {
  const double h = std::max(mean[3], 0.0), w = std::max(mean[2], 0.0) * h;
  return {static_cast<float>(mean[0] - 0.5 * w), static_cast<float>(mean[1] - 0.5 * h),
          static_cast<float>(mean[0] + 0.5 * w), static_cast<float>(mean[1] + 0.5 * h)};
}

}  // namespace vigil::video
