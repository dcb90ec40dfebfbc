#include "vigil/monitor/embedding_drift.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>

#include "vigil/core/error.h"

namespace vigil::monitor {

namespace {

using Rows = std::vector<std::vector<double>>;

/// Draws of every bootstrap (Evidently's N_BOOTSTRAP).
constexpr int kDraws = 100;
/// Rows the mmd method's kernels run over at most (see the header).
constexpr size_t kMaxKernelReference = 1000;
constexpr size_t kMaxKernelCurrent = 2000;

/// Uniform in [0, 1) from 53 bits of mt19937_64 (std's distributions differ between standard libraries).
double uniform01(std::mt19937_64& bits) {
  return static_cast<double>(bits() >> 11) * 0x1.0p-53;
}

/// Uniform index in [0, n).
size_t index_below(std::mt19937_64& bits, size_t n) {
  return static_cast<size_t>(uniform01(bits) * static_cast<double>(n));
}

/// At most `cap` rows, evenly spread (all of them when there are fewer).
Rows spread(const Rows& rows, size_t cap) {
  if (rows.size() <= cap) return rows;
  Rows out;
  out.reserve(cap);
  for (size_t k = 0; k < cap; ++k) out.push_back(rows[k * rows.size() / cap]);
  return out;
}

std::vector<double> mean_of(const Rows& rows, const std::vector<size_t>* pick = nullptr) {
  std::vector<double> m(rows.front().size(), 0.0);
  const size_t n = pick ? pick->size() : rows.size();
  for (size_t i = 0; i < n; ++i) {
    const auto& r = rows[pick ? (*pick)[i] : i];
    for (size_t d = 0; d < m.size(); ++d) m[d] += r[d];
  }
  for (double& v : m) v /= static_cast<double>(n);
  return m;
}

double squared_distance(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t d = 0; d < a.size(); ++d) s += (a[d] - b[d]) * (a[d] - b[d]);
  return s;
}

double euclidean(const std::vector<double>& a, const std::vector<double>& b) {
  return std::sqrt(squared_distance(a, b));
}

/// Evidently's bootstrap under no drift: kDraws pairs of resamples of the reference's `rows` (with
/// replacement, of `a_size` and `b_size` rows; draw i seeded with i), `stat` of each pair, and the
/// `quantile` of those.
double bootstrap_threshold(
    size_t rows, size_t a_size, size_t b_size, double quantile,
    const std::function<double(const std::vector<size_t>&, const std::vector<size_t>&)>& stat) {
  std::vector<double> null;
  for (int draw = 0; draw < kDraws; ++draw) {
    std::mt19937_64 bits(static_cast<uint64_t>(draw));
    std::vector<size_t> a(a_size), b(b_size);
    for (size_t& i : a) i = index_below(bits, rows);
    for (size_t& i : b) i = index_below(bits, rows);
    null.push_back(stat(a, b));
  }
  return percentile(std::move(null), quantile);
}

double median(std::vector<double> v) {
  const size_t n = v.size();
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n / 2), v.end());
  const double hi = v[n / 2];
  if (n % 2 == 1) return hi;
  return (*std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n / 2)) + hi) / 2;
}

/// gamma = 1 / median(|a - b|)^2 over the pairs of a and b (a zero median gives 1: every row equal).
double kernel_gamma(const Rows& a, const Rows& b) {
  std::vector<double> d;
  d.reserve(a.size() * b.size());
  for (const auto& x : a)
    for (const auto& y : b) d.push_back(std::sqrt(squared_distance(x, y)));
  const double m = median(std::move(d));
  return m > 0 ? 1.0 / (m * m) : 1.0;
}

/// Solves A x = b (n x n, row-major) by Gaussian elimination with partial pivoting.
std::vector<double> solve(std::vector<double> a, std::vector<double> b) {
  const size_t n = b.size();
  for (size_t c = 0; c < n; ++c) {
    size_t pivot = c;
    for (size_t r = c + 1; r < n; ++r)
      if (std::abs(a[r * n + c]) > std::abs(a[pivot * n + c])) pivot = r;
    if (pivot != c) {
      for (size_t k = 0; k < n; ++k) std::swap(a[c * n + k], a[pivot * n + k]);
      std::swap(b[c], b[pivot]);
    }
    const double p = a[c * n + c];
    if (std::abs(p) < 1e-300) continue;  // singular direction: leave it (the step is 0 there)
    for (size_t r = c + 1; r < n; ++r) {
      const double f = a[r * n + c] / p;
      if (f == 0) continue;
      for (size_t k = c; k < n; ++k) a[r * n + k] -= f * a[c * n + k];
      b[r] -= f * b[c];
    }
  }
  std::vector<double> x(n, 0.0);
  for (size_t c = n; c-- > 0;) {
    const double p = a[c * n + c];
    if (std::abs(p) < 1e-300) continue;
    double s = b[c];
    for (size_t k = c + 1; k < n; ++k) s -= a[c * n + k] * x[k];
    x[c] = s / p;
  }
  return x;
}

double sigmoid(double z) {
  return z >= 0 ? 1 / (1 + std::exp(-z)) : std::exp(z) / (1 + std::exp(z));
}

/// L2-regularised logistic regression (SGDClassifier's objective: mean log loss + alpha/2 |w|^2, the
/// intercept unpenalised) fitted by Newton's method; x already standardised, with a trailing 1 per row.
std::vector<double> fit_logistic(const Rows& x, const std::vector<bool>& y, double alpha) {
  const size_t p = x.front().size();
  const double n = static_cast<double>(x.size());
  std::vector<double> w(p, 0.0);
  for (int iter = 0; iter < 100; ++iter) {
    std::vector<double> g(p, 0.0), h(p * p, 0.0);
    for (size_t i = 0; i < x.size(); ++i) {
      double z = 0;
      for (size_t k = 0; k < p; ++k) z += w[k] * x[i][k];
      const double pr = sigmoid(z);
      const double r = pr - (y[i] ? 1.0 : 0.0), s = pr * (1 - pr);
      for (size_t a = 0; a < p; ++a) {
        g[a] += r * x[i][a];
        for (size_t b = a; b < p; ++b) h[a * p + b] += s * x[i][a] * x[i][b];
      }
    }
    for (size_t a = 0; a < p; ++a) {
      g[a] /= n;
      for (size_t b = a; b < p; ++b) h[b * p + a] = h[a * p + b] /= n;
    }
    for (size_t a = 0; a + 1 < p; ++a) {  // the intercept (last) is not penalised
      g[a] += alpha * w[a];
      h[a * p + a] += alpha;
    }
    h[p * p - 1] += 1e-12;
    const std::vector<double> step = solve(h, g);
    double largest = 0;
    for (size_t k = 0; k < p; ++k) {
      w[k] -= step[k];
      largest = std::max(largest, std::abs(step[k]));
    }
    if (largest < 1e-10) break;
  }
  return w;
}

/// Evidently's model method: reference rows are the positives (target 1), current rows the negatives; half
/// of the rows (shuffled) train the classifier, the other half give its ROC AUC.
void model_method(const Rows& reference, const Rows& current, bool bootstrap, double quantile,
                  double threshold, EmbeddingDrift& out) {
  Rows rows = reference;
  rows.insert(rows.end(), current.begin(), current.end());
  std::vector<bool> target(rows.size(), false);
  std::fill(target.begin(), target.begin() + static_cast<std::ptrdiff_t>(reference.size()), true);
  std::vector<size_t> order(rows.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 bits(42);  // scikit-learn's train_test_split(random_state=42, shuffle=True)
  for (size_t i = order.size(); i-- > 1;) std::swap(order[i], order[index_below(bits, i + 1)]);
  const size_t n_test = (order.size() + 1) / 2;  // test_size 0.5, rounded up as scikit-learn does
  std::vector<size_t> test(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n_test));
  std::vector<size_t> train(order.begin() + static_cast<std::ptrdiff_t>(n_test), order.end());
  auto has_both = [&](const std::vector<size_t>& idx) {
    bool pos = false, neg = false;
    for (size_t i : idx) (target[i] ? pos : neg) = true;
    return pos && neg;
  };
  out.threshold = threshold;
  if (!has_both(train) || !has_both(test)) {  // too few rows to split both ways: no evidence of drift
    out.score = 0.5;
    out.drifted = false;
    return;
  }
  // Standardised with the training half's mean and deviation, and a trailing 1 for the intercept.
  const size_t dims = rows.front().size();
  std::vector<double> mu(dims, 0.0), sd(dims, 0.0);
  for (size_t i : train)
    for (size_t d = 0; d < dims; ++d) mu[d] += rows[i][d];
  for (double& v : mu) v /= static_cast<double>(train.size());
  for (size_t i : train)
    for (size_t d = 0; d < dims; ++d) sd[d] += (rows[i][d] - mu[d]) * (rows[i][d] - mu[d]);
  for (double& v : sd) v = v > 0 ? std::sqrt(v / static_cast<double>(train.size())) : 1.0;
  auto features = [&](size_t i) {
    std::vector<double> f(dims + 1, 1.0);
    for (size_t d = 0; d < dims; ++d) f[d] = (rows[i][d] - mu[d]) / sd[d];
    return f;
  };
  Rows x_train;
  std::vector<bool> y_train, y_test;
  for (size_t i : train) {
    x_train.push_back(features(i));
    y_train.push_back(target[i]);
  }
  const std::vector<double> w = fit_logistic(x_train, y_train, 1e-4);
  std::vector<double> scores;
  for (size_t i : test) {
    const std::vector<double> f = features(i);
    scores.push_back(std::inner_product(f.begin(), f.end(), w.begin(), 0.0));
    y_test.push_back(target[i]);
  }
  out.score = roc_auc(scores, y_test);
  if (bootstrap) {
    std::vector<double> random_auc;
    for (int draw = 0; draw < kDraws; ++draw) {
      std::mt19937_64 r(static_cast<uint64_t>(draw));
      std::vector<double> guess(y_test.size());
      for (double& g : guess) g = uniform01(r);
      random_auc.push_back(roc_auc(guess, y_test));
    }
    out.threshold = percentile(std::move(random_auc), quantile);
  }
  out.drifted = out.score > out.threshold;
}

void distance_method(const Rows& reference, const Rows& current, bool bootstrap, double quantile,
                     double threshold, EmbeddingDrift& out) {
  out.score = euclidean(out.reference_mean, out.current_mean);
  out.threshold = threshold;
  if (bootstrap) {
    const double m = static_cast<double>(reference.size()), n = static_cast<double>(current.size());
    const auto ref_size = std::max<size_t>(1, static_cast<size_t>(m * m / (m + n)));
    const auto cur_size = std::max<size_t>(1, static_cast<size_t>(n * m / (m + n)));
    out.threshold = bootstrap_threshold(reference.size(), ref_size, cur_size, quantile,
                                        [&](const std::vector<size_t>& a, const std::vector<size_t>& b) {
                                          return euclidean(mean_of(reference, &a), mean_of(reference, &b));
                                        });
  }
  out.drifted = out.score > out.threshold;
}

/// MMD2u over index lists into one kernel matrix `k` (n x n, row-major): positions, not values, are skipped
/// on the diagonal, so a row drawn twice pairs with itself (as Evidently's MMD2u_bstrp does).
double mmd2_indexed(const std::vector<double>& k, size_t n, const std::vector<size_t>& x,
                    const std::vector<size_t>& y) {
  double kx = 0, ky = 0, kxy = 0;
  for (size_t a = 0; a < x.size(); ++a)
    for (size_t b = 0; b < x.size(); ++b)
      if (a != b) kx += k[x[a] * n + x[b]];
  for (size_t a = 0; a < y.size(); ++a)
    for (size_t b = 0; b < y.size(); ++b)
      if (a != b) ky += k[y[a] * n + y[b]];
  for (size_t xa : x)
    for (size_t yb : y) kxy += k[xa * n + yb];
  const double m = static_cast<double>(x.size()), q = static_cast<double>(y.size());
  return kx / (m * (m - 1)) + ky / (q * (q - 1)) - 2 * kxy / (m * q);
}

void mmd_method(const Rows& reference, const Rows& current, bool bootstrap, double quantile, double threshold,
                EmbeddingDrift& out) {
  const Rows x = spread(reference, kMaxKernelReference);
  const Rows y = spread(current, kMaxKernelCurrent);
  const double mmd = mmd2_unbiased(x, y, kernel_gamma(x, spread(y, kMaxKernelReference)));
  out.score = std::max(mmd, 0.0);
  out.threshold = threshold;
  if (bootstrap) {
    const size_t m = x.size();
    const double gamma = kernel_gamma(x, x);
    std::vector<double> k(m * m);
    for (size_t a = 0; a < m; ++a)
      for (size_t b = a; b < m; ++b)
        k[a * m + b] = k[b * m + a] = std::exp(-gamma * squared_distance(x[a], x[b]));
    const double md = static_cast<double>(m), nd = static_cast<double>(y.size());
    const auto x_size = std::max<size_t>(2, static_cast<size_t>(md * md / (md + nd)));
    const auto y_size = std::max<size_t>(2, static_cast<size_t>(md * nd / (md + nd)));
    out.threshold = bootstrap_threshold(
        m, x_size, y_size, quantile,
        [&](const std::vector<size_t>& a, const std::vector<size_t>& b) { return mmd2_indexed(k, m, a, b); });
  }
  out.drifted = mmd > out.threshold;
}

void ratio_method(const Rows& reference, const Rows& current, double threshold, EmbeddingDrift& out) {
  size_t drifted = 0;
  for (size_t d = 0; d < out.dims; ++d) {
    std::vector<double> a, b;
    a.reserve(reference.size());
    b.reserve(current.size());
    for (const auto& r : reference) a.push_back(r[d]);
    for (const auto& r : current) b.push_back(r[d]);
    ColumnDrift c = test_numerical(fmt::format("embedding[{}]", d), a, b, {StatTest::kWasserstein, 0.1});
    if (c.drifted) ++drifted;
    out.components.push_back(std::move(c));
  }
  out.score = static_cast<double>(drifted) / static_cast<double>(out.dims);
  out.threshold = threshold;
  out.drifted = out.score > threshold;
}

void check_rows(const Rows& rows, const char* side, size_t dims) {
  VIGIL_CHECK(rows.size() >= 2, "embedding drift: expected at least 2 {} embeddings, got {}", side,
              rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    VIGIL_CHECK(rows[i].size() == dims, "embedding drift: {} row {} has {} numbers, expected {}", side, i,
                rows[i].size(), dims);
    for (double v : rows[i])
      VIGIL_CHECK(std::isfinite(v), "embedding drift: {} row {} holds a non-finite value", side, i);
  }
}

}  // namespace

std::string_view to_string(EmbeddingMethod method) {
  switch (method) {
    case EmbeddingMethod::kModel:
      return "model";
    case EmbeddingMethod::kRatio:
      return "ratio";
    case EmbeddingMethod::kDistance:
      return "distance";
    case EmbeddingMethod::kMmd:
      return "mmd";
  }
  return "model";
}

EmbeddingMethod embedding_method_from_string(std::string_view name) {
  for (auto m :
       {EmbeddingMethod::kModel, EmbeddingMethod::kRatio, EmbeddingMethod::kDistance, EmbeddingMethod::kMmd})
    if (name == to_string(m)) return m;
  throw InvalidArgument(
      fmt::format("unknown embedding drift method '{}' (expected model, ratio, distance or mmd)", name));
}

double default_threshold(EmbeddingMethod method) {
  switch (method) {
    case EmbeddingMethod::kModel:
      return 0.55;
    case EmbeddingMethod::kRatio:
      return 0.2;
    case EmbeddingMethod::kDistance:
      return 0.2;
    case EmbeddingMethod::kMmd:
      return 0.015;
  }
  return 0.55;
}

void EmbeddingDriftOptions::validate() const {
  if (threshold)
    VIGIL_CHECK(std::isfinite(*threshold) && *threshold >= 0, "embedding threshold: expected >= 0, got {}",
                *threshold);
  if (quantile)
    VIGIL_CHECK(*quantile > 0 && *quantile < 1, "embedding quantile: expected in (0, 1), got {}", *quantile);
}

double roc_auc(const std::vector<double>& scores, const std::vector<bool>& labels) {
  VIGIL_CHECK(scores.size() == labels.size(), "roc_auc: {} scores for {} labels", scores.size(),
              labels.size());
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double positive_rank_sum = 0;
  size_t positives = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) ++j;
    const double rank =
        (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;  // ties share the mean rank
    for (size_t k = i; k < j; ++k)
      if (labels[order[k]]) {
        positive_rank_sum += rank;
        ++positives;
      }
    i = j;
  }
  const size_t negatives = labels.size() - positives;
  VIGIL_CHECK(positives > 0 && negatives > 0,
              "roc_auc: expected both classes, got {} positives and {} negatives", positives, negatives);
  const double p = static_cast<double>(positives);
  return (positive_rank_sum - p * (p + 1) / 2) / (p * static_cast<double>(negatives));
}

double percentile(std::vector<double> values, double q) {
  VIGIL_CHECK(!values.empty(), "percentile of no values");
  std::sort(values.begin(), values.end());
  const double pos = q * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  const double t = pos - static_cast<double>(lo);
  // numpy's _lerp: from the nearer end, so q = 1 gives the largest value exactly.
  return t >= 0.5 ? values[hi] - (values[hi] - values[lo]) * (1 - t)
                  : values[lo] + (values[hi] - values[lo]) * t;
}

double mmd2_unbiased(const Rows& x, const Rows& y, double gamma) {
  VIGIL_CHECK(x.size() >= 2 && y.size() >= 2, "mmd: expected at least 2 rows on each side, got {} and {}",
              x.size(), y.size());
  auto k = [gamma](const std::vector<double>& a, const std::vector<double>& b) {
    return std::exp(-gamma * squared_distance(a, b));
  };
  double kx = 0, ky = 0, kxy = 0;
  for (size_t a = 0; a < x.size(); ++a)
    for (size_t b = a + 1; b < x.size(); ++b) kx += 2 * k(x[a], x[b]);
  for (size_t a = 0; a < y.size(); ++a)
    for (size_t b = a + 1; b < y.size(); ++b) ky += 2 * k(y[a], y[b]);
  for (const auto& a : x)
    for (const auto& b : y) kxy += k(a, b);
  const double m = static_cast<double>(x.size()), n = static_cast<double>(y.size());
  return kx / (m * (m - 1)) + ky / (n * (n - 1)) - 2 * kxy / (m * n);
}

EmbeddingDrift embedding_drift(const Rows& reference, const Rows& current,
                               const EmbeddingDriftOptions& options) {
  options.validate();
  VIGIL_CHECK(!reference.empty() && !reference.front().empty(),
              "embedding drift: expected reference embeddings, got none");
  EmbeddingDrift out;
  out.method = options.method;
  out.dims = reference.front().size();
  check_rows(reference, "reference", out.dims);
  check_rows(current, "current", out.dims);
  out.reference_size = reference.size();
  out.current_size = current.size();
  out.reference_mean = mean_of(reference);
  out.current_mean = mean_of(current);
  out.bootstrap =
      options.method != EmbeddingMethod::kRatio && options.bootstrap.value_or(reference.size() <= 1000);
  const double threshold = options.threshold.value_or(default_threshold(options.method));
  const double quantile = options.quantile.value_or(0.95);
  switch (options.method) {
    case EmbeddingMethod::kModel:
      model_method(reference, current, out.bootstrap, quantile, threshold, out);
      break;
    case EmbeddingMethod::kRatio:
      ratio_method(reference, current, threshold, out);
      break;
    case EmbeddingMethod::kDistance:
      distance_method(reference, current, out.bootstrap, quantile, threshold, out);
      break;
    case EmbeddingMethod::kMmd:
      mmd_method(reference, current, out.bootstrap, quantile, threshold, out);
      break;
  }
  return out;
}

nlohmann::json to_json(const EmbeddingDrift& d) {
  nlohmann::json components = nlohmann::json::array();
  for (const auto& c : d.components)
    components.push_back({{"column", c.column}, {"score", c.score}, {"drifted", c.drifted}});
  return {{"method", std::string(to_string(d.method))},
          {"score", d.score},
          {"threshold", d.threshold},
          {"bootstrap", d.bootstrap},
          {"drifted", d.drifted},
          {"dims", d.dims},
          {"reference_size", d.reference_size},
          {"current_size", d.current_size},
          {"reference_mean", d.reference_mean},
          {"current_mean", d.current_mean},
          {"components", std::move(components)}};
}

}  // namespace vigil::monitor
