#include "vigil/monitor/drift_tests.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <set>

#include "vigil/core/error.h"
#include "vigil/core/strings.h"

namespace vigil::monitor {

namespace {

constexpr size_t kExactKsMax = 10000;  // scipy's MAX_AUTO_N: exact up to here, asymptotic beyond

struct TestInfo {
  StatTest test;
  std::string_view name;
  bool p_value;
  double threshold;
};
constexpr TestInfo kTests[] = {
    {StatTest::kKs, "ks", true, 0.05},
    {StatTest::kWasserstein, "wasserstein", false, 0.1},
    {StatTest::kChiSquare, "chisquare", true, 0.05},
    {StatTest::kZ, "z", true, 0.05},
    {StatTest::kJensenShannon, "jensenshannon", false, 0.1},
    {StatTest::kPsi, "psi", false, 0.1},
};

const TestInfo& info(StatTest test) {
  for (const auto& t : kTests)
    if (t.test == test) return t;
  VIGIL_ASSERT(false, "unknown StatTest {}", static_cast<int>(test));
  return kTests[0];
}

std::vector<double> sorted_finite(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return std::isnan(x); }), v.end());
  std::sort(v.begin(), v.end());
  return v;
}

size_t count_distinct(const std::vector<double>& sorted) {
  size_t n = 0;
  for (size_t i = 0; i < sorted.size(); ++i)
    if (i == 0 || sorted[i] != sorted[i - 1]) ++n;
  return n;
}

/// The share of monotone lattice paths from (0,0) to (m,n) that stay strictly inside |x n - y m| < bound.
/// Each cell holds the share of paths reaching it that stayed inside, so values stay in [0, 1] (no binomial
/// coefficients to overflow); a path reaches (x, y) from (x-1, y) in x / (x+y) of the cases.
double ks_inside_share(int64_t m, int64_t n, int64_t bound) {
  std::vector<double> col(static_cast<size_t>(n) + 1, 0.0);
  for (int64_t y = 0; y <= n; ++y) {
    const bool inside = std::llabs(0 * n - y * m) < bound;
    col[static_cast<size_t>(y)] = inside && (y == 0 || col[static_cast<size_t>(y - 1)] > 0) ? 1.0 : 0.0;
  }
  for (int64_t x = 1; x <= m; ++x) {
    for (int64_t y = 0; y <= n; ++y) {
      const auto yi = static_cast<size_t>(y);
      if (std::llabs(x * n - y * m) >= bound) {
        col[yi] = 0;
        continue;
      }
      const double from_left = col[yi];                     // (x-1, y), not yet overwritten
      const double from_below = y > 0 ? col[yi - 1] : 0.0;  // (x, y-1), already this column's
      col[yi] = (static_cast<double>(x) * from_left + static_cast<double>(y) * from_below) /
                static_cast<double>(x + y);
    }
  }
  return col[static_cast<size_t>(n)];
}

/// Kolmogorov's limiting survival function Q(t) = 2 sum (-1)^(k-1) exp(-2 k^2 t^2).
double kolmogorov_sf(double t) {
  if (t <= 0) return 1;
  if (t < 0.2) return 1;  // the series converges slowly there and the value is 1 to double precision
  double sum = 0;
  for (int k = 1; k <= 100; ++k) {
    const double term = std::exp(-2.0 * k * k * t * t);
    sum += (k % 2 ? 1 : -1) * term;
    if (term < 1e-18) break;
  }
  return std::clamp(2 * sum, 0.0, 1.0);
}

/// numpy.histogram_bin_edges(values, bins="sturges"), the same floating-point steps.
std::vector<double> sturges_edges(const std::vector<double>& all_sorted) {
  double first = all_sorted.front(), last = all_sorted.back();
  size_t bins = 1;
  const double ptp = last - first;
  if (ptp == 0) {
    first -= 0.5;
    last += 0.5;
  } else {
    const double width = ptp / (std::log2(static_cast<double>(all_sorted.size())) + 1.0);
    bins = static_cast<size_t>(std::ceil((last - first) / width));
  }
  std::vector<double> edges(bins + 1);
  const double step = (last - first) / static_cast<double>(bins);
  for (size_t i = 0; i < bins; ++i) edges[i] = static_cast<double>(i) * step + first;
  edges[bins] = last;
  return edges;
}

/// numpy.histogram's counts for explicit edges: [e_i, e_i+1), the last bin closed.
std::vector<double> histogram_shares(const std::vector<double>& sorted, const std::vector<double>& edges) {
  std::vector<double> shares(edges.size() - 1, 0.0);
  for (size_t i = 0; i + 1 < edges.size(); ++i) {
    const bool last = i + 2 == edges.size();
    const auto lo = std::lower_bound(sorted.begin(), sorted.end(), edges[i]);
    const auto hi = last ? std::upper_bound(sorted.begin(), sorted.end(), edges[i + 1])
                         : std::lower_bound(sorted.begin(), sorted.end(), edges[i + 1]);
    shares[i] = static_cast<double>(hi - lo) / static_cast<double>(sorted.size());
  }
  return shares;
}

/// Evidently's feel_zeroes: an empty bin gets 1e-4, or the smallest non-zero share / 1e6 when that is
/// smaller.
void fill_zero_shares(std::vector<double>& shares) {
  double smallest = std::numeric_limits<double>::infinity();
  for (double s : shares)
    if (s != 0) smallest = std::min(smallest, s);
  if (!std::isfinite(smallest)) return;
  const double fill = smallest <= 1e-4 ? smallest / 1e6 : 1e-4;
  for (double& s : shares)
    if (s == 0) s = fill;
}

std::map<std::string, size_t> value_counts(const std::vector<std::string>& values) {
  std::map<std::string, size_t> counts;
  for (const auto& v : values) ++counts[v];
  return counts;
}

/// The two-proportion Z-test of Evidently: the first value in sorted order against the rest.
double z_test_p_value(const std::vector<std::string>& reference, const std::vector<std::string>& current) {
  std::set<std::string> keys(reference.begin(), reference.end());
  keys.insert(current.begin(), current.end());
  if (keys.size() == 1) return 1;
  const std::string& first = *keys.begin();
  const auto share_other = [&](const std::vector<std::string>& v) {
    return static_cast<double>(std::count_if(v.begin(), v.end(), [&](const auto& x) { return x != first; })) /
           static_cast<double>(v.size());
  };
  const double n1 = static_cast<double>(reference.size()), n2 = static_cast<double>(current.size());
  const double p1 = share_other(reference), p2 = share_other(current);
  const double pooled = (p1 * n1 + p2 * n2) / (n1 + n2);
  const double z = (p1 - p2) / std::sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  return std::erfc(std::fabs(z) / std::sqrt(2.0));  // 2 (1 - Phi(|z|)), without the cancellation
}

std::string number_label(double v) {
  return fmt::format("{}", v);
}

ColumnDrift finish(ColumnDrift d, const ColumnTestOptions& options) {
  d.threshold = options.threshold.value_or(default_threshold(d.test));
  d.drifted = is_p_value(d.test) ? d.score < d.threshold : d.score >= d.threshold;
  return d;
}

}  // namespace

std::string_view to_string(StatTest test) {
  return info(test).name;
}

StatTest stattest_from_string(std::string_view name) {
  std::vector<std::string> names;
  for (const auto& t : kTests) {
    if (t.name == name) return t.test;
    names.emplace_back(t.name);
  }
  throw InvalidArgument(fmt::format("expected a drift test ({}), got '{}'", join(names, ", "), name));
}

bool is_p_value(StatTest test) {
  return info(test).p_value;
}

double default_threshold(StatTest test) {
  return info(test).threshold;
}

StatTest default_stattest(ColumnKind kind, size_t reference_size, size_t distinct) {
  const bool few_values = kind == ColumnKind::kCategorical || distinct <= 5;
  if (reference_size <= 1000) {
    if (!few_values) return StatTest::kKs;
    return distinct > 2 ? StatTest::kChiSquare : StatTest::kZ;
  }
  return few_values ? StatTest::kJensenShannon : StatTest::kWasserstein;
}

KsResult ks_2samp(std::vector<double> a, std::vector<double> b) {
  a = sorted_finite(std::move(a));
  b = sorted_finite(std::move(b));
  VIGIL_CHECK(!a.empty() && !b.empty(), "expected two non-empty samples, got {} and {} values", a.size(),
              b.size());
  // The largest gap between the two step functions, evaluated at every value (searchsorted "right").
  double d = 0;
  size_t i = 0, j = 0;
  const double na = static_cast<double>(a.size()), nb = static_cast<double>(b.size());
  while (i < a.size() || j < b.size()) {
    const double v = j >= b.size() || (i < a.size() && a[i] <= b[j]) ? a[i] : b[j];
    while (i < a.size() && a[i] <= v) ++i;
    while (j < b.size() && b[j] <= v) ++j;
    d = std::max(d, std::fabs(static_cast<double>(i) / na - static_cast<double>(j) / nb));
  }
  const auto n1 = static_cast<int64_t>(a.size()), n2 = static_cast<int64_t>(b.size());
  KsResult r{d, 1};
  if (std::max(a.size(), b.size()) <= kExactKsMax) {
    const int64_t g = std::gcd(n1, n2);
    const int64_t lcm = (n1 / g) * n2;
    const auto h = static_cast<int64_t>(std::nearbyint(d * static_cast<double>(lcm)));
    r.statistic = static_cast<double>(h) / static_cast<double>(lcm);
    if (h == 0) return r;
    r.p_value = std::clamp(1.0 - ks_inside_share(n1, n2, h * g), 0.0, 1.0);
    return r;
  }
  const double en = std::nearbyint(na * nb / (na + nb));
  const double sqrt_en = std::sqrt(en);
  r.p_value = kolmogorov_sf((sqrt_en + 0.12 + 0.11 / sqrt_en) * d);
  return r;
}

double wasserstein_distance(std::vector<double> u, std::vector<double> v) {
  u = sorted_finite(std::move(u));
  v = sorted_finite(std::move(v));
  VIGIL_CHECK(!u.empty() && !v.empty(), "expected two non-empty samples, got {} and {} values", u.size(),
              v.size());
  std::vector<double> all(u);
  all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  double sum = 0;
  for (size_t k = 0; k + 1 < all.size(); ++k) {
    const double delta = all[k + 1] - all[k];
    if (delta == 0) continue;
    const double cu = static_cast<double>(std::upper_bound(u.begin(), u.end(), all[k]) - u.begin()) /
                      static_cast<double>(u.size());
    const double cv = static_cast<double>(std::upper_bound(v.begin(), v.end(), all[k]) - v.begin()) /
                      static_cast<double>(v.size());
    sum += std::fabs(cu - cv) * delta;
  }
  return sum;
}

double wasserstein_normed(const std::vector<double>& reference, const std::vector<double>& current) {
  const std::vector<double> ref = sorted_finite(reference);
  VIGIL_CHECK(!ref.empty(), "expected a non-empty reference sample");
  const double mean = std::accumulate(ref.begin(), ref.end(), 0.0) / static_cast<double>(ref.size());
  double var = 0;
  for (double x : ref) var += (x - mean) * (x - mean);
  const double sd = std::sqrt(var / static_cast<double>(ref.size()));
  return wasserstein_distance(ref, current) / std::max(sd, 0.001);
}

BinnedShares bin_numerical(const std::vector<double>& reference, const std::vector<double>& current,
                           bool fill_zeroes) {
  const std::vector<double> ref = sorted_finite(reference), cur = sorted_finite(current);
  VIGIL_CHECK(!ref.empty() && !cur.empty(), "expected two non-empty samples, got {} and {} values",
              ref.size(), cur.size());
  BinnedShares out;
  if (count_distinct(ref) > 20) {
    std::vector<double> all(ref);
    all.insert(all.end(), cur.begin(), cur.end());
    std::sort(all.begin(), all.end());
    const std::vector<double> edges = sturges_edges(all);
    out.reference = histogram_shares(ref, edges);
    out.current = histogram_shares(cur, edges);
    for (size_t k = 0; k + 1 < edges.size(); ++k)
      out.labels.push_back(
          fmt::format("[{:.4g}, {:.4g}{}", edges[k], edges[k + 1], k + 2 == edges.size() ? "]" : ")"));
  } else {
    std::vector<std::string> r, c;
    for (double x : ref) r.push_back(number_label(x));
    for (double x : cur) c.push_back(number_label(x));
    return bin_categorical(r, c, fill_zeroes);
  }
  if (fill_zeroes) {
    fill_zero_shares(out.reference);
    fill_zero_shares(out.current);
  }
  return out;
}

BinnedShares bin_categorical(const std::vector<std::string>& reference,
                             const std::vector<std::string>& current, bool fill_zeroes) {
  VIGIL_CHECK(!reference.empty() && !current.empty(), "expected two non-empty samples, got {} and {} values",
              reference.size(), current.size());
  const auto rc = value_counts(reference), cc = value_counts(current);
  std::set<std::string> keys;
  for (const auto& [k, _] : rc) keys.insert(k);
  for (const auto& [k, _] : cc) keys.insert(k);
  BinnedShares out;
  for (const auto& k : keys) {
    const auto r = rc.find(k), c = cc.find(k);
    out.labels.push_back(k);
    out.reference.push_back(
        r == rc.end() ? 0.0 : static_cast<double>(r->second) / static_cast<double>(reference.size()));
    out.current.push_back(
        c == cc.end() ? 0.0 : static_cast<double>(c->second) / static_cast<double>(current.size()));
  }
  if (fill_zeroes) {
    fill_zero_shares(out.reference);
    fill_zero_shares(out.current);
  }
  return out;
}

double jensen_shannon_distance(std::vector<double> p, std::vector<double> q) {
  VIGIL_CHECK(p.size() == q.size() && !p.empty(),
              "expected two distributions of the same length, got {} and {}", p.size(), q.size());
  const double sp = std::accumulate(p.begin(), p.end(), 0.0), sq = std::accumulate(q.begin(), q.end(), 0.0);
  double js = 0;
  for (size_t k = 0; k < p.size(); ++k) {
    const double a = p[k] / sp, b = q[k] / sq, m = (a + b) / 2;
    if (a > 0) js += a * std::log(a / m);
    if (b > 0) js += b * std::log(b / m);
  }
  return std::sqrt(std::max(0.0, js / 2 / std::log(2.0)));
}

double population_stability_index(const std::vector<double>& reference, const std::vector<double>& current) {
  VIGIL_CHECK(reference.size() == current.size(),
              "expected two distributions of the same length, got {} and {}", reference.size(),
              current.size());
  double psi = 0;
  for (size_t k = 0; k < reference.size(); ++k)
    psi += (reference[k] - current[k]) * std::log(reference[k] / current[k]);
  return psi;
}

double gamma_q(double a, double x) {
  VIGIL_CHECK(a > 0 && x >= 0, "expected a > 0 and x >= 0, got a={} x={}", a, x);
  if (x == 0) return 1;
  if (std::isinf(x)) return 0;
  const double log_prefix = a * std::log(x) - x - std::lgamma(a);
  if (x < a + 1) {  // the series for P(a, x) converges fast here
    double term = 1 / a, sum = term;
    for (int n = 1; n < 10000; ++n) {
      term *= x / (a + n);
      sum += term;
      if (std::fabs(term) < std::fabs(sum) * 1e-16) break;
    }
    return std::clamp(1 - sum * std::exp(log_prefix), 0.0, 1.0);
  }
  // Continued fraction for Q(a, x) (modified Lentz).
  constexpr double kTiny = 1e-300;
  double b = x + 1 - a, c = 1 / kTiny, d = 1 / b, h = d;
  for (int i = 1; i < 10000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = b + an / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1) < 1e-16) break;
  }
  return std::clamp(std::exp(log_prefix) * h, 0.0, 1.0);
}

double chi_square_p_value(const std::vector<double>& observed, const std::vector<double>& expected) {
  VIGIL_CHECK(observed.size() == expected.size() && observed.size() >= 2,
              "expected at least two categories with observed and expected counts, got {} and {}",
              observed.size(), expected.size());
  double stat = 0;
  for (size_t k = 0; k < observed.size(); ++k) {
    if (expected[k] == 0) {
      if (observed[k] != 0) return 0;  // a category the reference never had: infinitely unlikely
      continue;
    }
    stat += (observed[k] - expected[k]) * (observed[k] - expected[k]) / expected[k];
  }
  return gamma_q(static_cast<double>(observed.size() - 1) / 2, stat / 2);
}

ColumnDrift test_numerical(const std::string& column, const std::vector<double>& reference,
                           const std::vector<double>& current, const ColumnTestOptions& options) {
  const std::vector<double> ref = sorted_finite(reference), cur = sorted_finite(current);
  VIGIL_CHECK(!ref.empty() && !cur.empty(),
              "column '{}': expected reference and current values, got {} and {}", column, ref.size(),
              cur.size());
  std::vector<double> all(ref);
  all.insert(all.end(), cur.begin(), cur.end());
  std::sort(all.begin(), all.end());
  ColumnDrift d;
  d.column = column;
  d.kind = ColumnKind::kNumerical;
  d.reference_size = ref.size();
  d.current_size = cur.size();
  d.test = options.test.value_or(default_stattest(ColumnKind::kNumerical, ref.size(), count_distinct(all)));
  switch (d.test) {
    case StatTest::kKs:
      d.score = ks_2samp(ref, cur).p_value;
      break;
    case StatTest::kWasserstein:
      d.score = wasserstein_normed(ref, cur);
      break;
    case StatTest::kChiSquare:
    case StatTest::kZ: {
      // Few distinct numbers: Evidently tests them as categories.
      std::vector<std::string> r, c;
      for (double x : ref) r.push_back(number_label(x));
      for (double x : cur) c.push_back(number_label(x));
      ColumnDrift cat = test_categorical(column, r, c, options);
      cat.kind = ColumnKind::kNumerical;
      return cat;
    }
    case StatTest::kJensenShannon: {
      const BinnedShares s = bin_numerical(ref, cur, false);
      d.score = jensen_shannon_distance(s.reference, s.current);
      break;
    }
    case StatTest::kPsi: {
      const BinnedShares s = bin_numerical(ref, cur, true);
      d.score = population_stability_index(s.reference, s.current);
      break;
    }
  }
  d.shares = bin_numerical(ref, cur, false);
  return finish(std::move(d), options);
}

ColumnDrift test_categorical(const std::string& column, const std::vector<std::string>& reference,
                             const std::vector<std::string>& current, const ColumnTestOptions& options) {
  VIGIL_CHECK(!reference.empty() && !current.empty(),
              "column '{}': expected reference and current values, got {} and {}", column, reference.size(),
              current.size());
  ColumnDrift d;
  d.column = column;
  d.kind = ColumnKind::kCategorical;
  d.reference_size = reference.size();
  d.current_size = current.size();
  d.shares = bin_categorical(reference, current, false);
  d.test = options.test.value_or(
      default_stattest(ColumnKind::kCategorical, reference.size(), d.shares.labels.size()));
  switch (d.test) {
    case StatTest::kChiSquare: {
      // Expected counts: the reference's shares scaled to the current sample's size.
      std::vector<double> observed, expected;
      const double n = static_cast<double>(current.size());
      for (size_t k = 0; k < d.shares.labels.size(); ++k) {
        observed.push_back(std::round(d.shares.current[k] * n));
        expected.push_back(d.shares.reference[k] * n);
      }
      d.score = chi_square_p_value(observed, expected);
      break;
    }
    case StatTest::kZ:
      d.score = z_test_p_value(reference, current);
      break;
    case StatTest::kJensenShannon:
      d.score = jensen_shannon_distance(d.shares.reference, d.shares.current);
      break;
    case StatTest::kPsi: {
      const BinnedShares s = bin_categorical(reference, current, true);
      d.score = population_stability_index(s.reference, s.current);
      break;
    }
    case StatTest::kKs:
    case StatTest::kWasserstein:
      throw InvalidArgument(
          fmt::format("column '{}': {} needs numbers; a categorical column takes chisquare, z, "
                      "jensenshannon or psi",
                      column, to_string(d.test)));
  }
  return finish(std::move(d), options);
}

DatasetDrift dataset_drift(std::vector<ColumnDrift> columns, double drift_share) {
  VIGIL_CHECK(drift_share > 0 && drift_share <= 1, "expected a drift share in (0, 1], got {}", drift_share);
  DatasetDrift out;
  out.drift_share = drift_share;
  out.columns = std::move(columns);
  for (const auto& c : out.columns) out.drifted_columns += c.drifted ? 1 : 0;
  out.share = out.columns.empty() ? 0 : static_cast<double>(out.drifted_columns) / out.columns.size();
  out.drifted = !out.columns.empty() && out.share >= drift_share;
  return out;
}

}  // namespace vigil::monitor
