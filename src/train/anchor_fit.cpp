#include "vigil/train/anchor_fit.h"

#include <algorithm>
#include <cmath>

#include "vigil/core/error.h"

namespace vigil::train {

namespace {

/// The q-quantile of sorted `v` with linear interpolation (numpy's default).
double quantile(const std::vector<double>& v, double q) {
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

std::vector<double> distinct_sorted(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

}  // namespace

FittedAnchors fit_anchors(const std::vector<data::Sample>& samples, const std::vector<int>& indices,
                          int num_sizes, bool one_per_map, int min_size, int max_size) {
  VIGIL_CHECK(num_sizes >= 1, "expected at least one anchor size to fit, got {}", num_sizes);
  VIGIL_CHECK(min_size >= 1, "expected the detector's min_size >= 1, got {}", min_size);
  std::vector<double> sizes, ratios;
  for (const int i : indices) {
    const auto& s = samples.at(static_cast<size_t>(i));
    if (s.width <= 0 || s.height <= 0) continue;
    // GeneralizedRCNNTransform's scale: short side to min_size unless the long side would pass max_size.
    double scale = static_cast<double>(min_size) / std::min(s.width, s.height);
    if (max_size > 0) scale = std::min(scale, static_cast<double>(max_size) / std::max(s.width, s.height));
    for (const auto& b : s.boxes) {
      if (b.crowd || b.width() <= 0 || b.height() <= 0) continue;
      sizes.push_back(std::sqrt(static_cast<double>(b.width()) * b.height()) * scale);
      ratios.push_back(static_cast<double>(b.height()) / b.width());
    }
  }
  VIGIL_CHECK(!sizes.empty(),
              "expected training boxes to fit anchors to (model.fit_anchors), got none in {} training images",
              indices.size());
  std::sort(sizes.begin(), sizes.end());
  std::sort(ratios.begin(), ratios.end());
  FittedAnchors out;
  out.boxes = sizes.size();
  std::vector<double> fitted;
  for (int k = 0; k < num_sizes; ++k) {
    // Whole pixels, at least 2, so a list printed in config.yaml reads back as the same anchors.
    fitted.push_back(std::max(2.0, std::round(quantile(sizes, (k + 0.5) / num_sizes))));
  }
  // One size per feature map keeps every value (the count is the maps'); one shared list drops repeats, which
  // would only be identical anchors.
  out.sizes = one_per_map ? fitted : distinct_sorted(fitted);
  std::vector<double> r;
  for (const double q : {1.0 / 6, 0.5, 5.0 / 6})
    r.push_back(std::max(0.05, std::round(quantile(ratios, q) * 20) / 20));
  out.ratios = distinct_sorted(r);
  return out;
}

}  // namespace vigil::train
