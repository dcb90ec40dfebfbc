#pragma once
/// Two-sample drift tests with Evidently's definitions, defaults and automatic choice, computed as scipy does
/// (ks_2samp, wasserstein_distance, chisquare, scipy.spatial.distance.jensenshannon) and checked against it
/// (tests/unit/monitor/drift_tests_test.cpp, golden values from gen_drift_expected.py beside it).
///
/// Evidently's automatic choice (evidently.calculations.stattests.registry), by the reference sample's size:
///   reference <= 1000: numerical with more than 5 distinct values -> Kolmogorov-Smirnov (drift: p < 0.05);
///                      otherwise chi-square (more than 2 distinct values) or the two-proportion Z-test (p <
///                      0.05);
///   reference  > 1000: numerical with more than 5 distinct values -> Wasserstein distance normed by the
///                      reference's standard deviation (drift: >= 0.1); otherwise Jensen-Shannon distance (>=
///                      0.1).
/// PSI (>= 0.1) and Jensen-Shannon can be asked for by name.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::monitor {

enum class StatTest { kKs, kWasserstein, kChiSquare, kZ, kJensenShannon, kPsi };

/// "ks", "wasserstein", "chisquare", "z", "jensenshannon", "psi" (Evidently's names).
std::string_view to_string(StatTest test);
/// The test of that name; an unknown name's error lists the valid ones.
StatTest stattest_from_string(std::string_view name);
/// True when the test's score is a p-value (drift below the threshold), false for a distance (drift at or
/// above).
bool is_p_value(StatTest test);
/// Evidently's default threshold: 0.05 for p-values, 0.1 for distances.
double default_threshold(StatTest test);

enum class ColumnKind { kNumerical, kCategorical };

/// Evidently's automatic choice for a column (see the file comment). `distinct` counts the distinct values
/// of reference and current together.
StatTest default_stattest(ColumnKind kind, size_t reference_size, size_t distinct);

struct KsResult {
  double statistic = 0;  ///< the largest distance between the two empirical distribution functions
  double p_value = 1;    ///< two-sided
};
/// scipy.stats.ks_2samp(a, b) (method "auto"): the exact distribution when both samples have at most 10,000
/// values (lattice paths, as scipy counts them), Kolmogorov's limit with Stephens' correction beyond.
KsResult ks_2samp(std::vector<double> a, std::vector<double> b);

/// scipy.stats.wasserstein_distance(u, v): the area between the two empirical distribution functions.
double wasserstein_distance(std::vector<double> u, std::vector<double> v);

/// Wasserstein distance divided by the reference's population standard deviation (at least 0.001).
double wasserstein_normed(const std::vector<double>& reference, const std::vector<double>& current);

/// The reference's and the current sample's shares per bin, as Evidently bins them: numerical values with
/// more than 20 distinct reference values go into numpy's "sturges" bins over both samples; anything else is
/// counted per distinct value. With `fill_zeroes`, empty bins get a small share (1e-4, or the smallest share
/// / 1e6).
struct BinnedShares {
  std::vector<double> reference, current;
  std::vector<std::string> labels;  ///< bin "[lo, hi)" or the value
};
BinnedShares bin_numerical(const std::vector<double>& reference, const std::vector<double>& current,
                           bool fill_zeroes);
BinnedShares bin_categorical(const std::vector<std::string>& reference,
                             const std::vector<std::string>& current, bool fill_zeroes);

/// scipy.spatial.distance.jensenshannon(p, q, base=2).
double jensen_shannon_distance(std::vector<double> p, std::vector<double> q);
/// Population stability index: sum over bins of (r - c) ln(r / c).
double population_stability_index(const std::vector<double>& reference, const std::vector<double>& current);
/// scipy.stats.chisquare(observed, expected): the p-value with k - 1 degrees of freedom.
double chi_square_p_value(const std::vector<double>& observed, const std::vector<double>& expected);

/// Upper regularised incomplete gamma Q(a, x) (the chi-square survival function is Q(k/2, x/2)).
double gamma_q(double a, double x);

/// One column's outcome.
struct ColumnDrift {
  std::string column;
  ColumnKind kind = ColumnKind::kNumerical;
  StatTest test = StatTest::kKs;
  double score = 0;      ///< a p-value or a distance (is_p_value(test))
  double threshold = 0;  ///< what it was compared with
  bool drifted = false;
  size_t reference_size = 0, current_size = 0;
  BinnedShares shares;  ///< both distributions, for plots
};

/// Options of one column's test: the test (empty: Evidently's automatic choice) and its threshold (empty: the
/// test's default).
struct ColumnTestOptions {
  std::optional<StatTest> test;
  std::optional<double> threshold;
};

/// Tests one numerical column; values that are NaN are dropped first (as Evidently does). Empty samples are
/// an error naming the column.
ColumnDrift test_numerical(const std::string& column, const std::vector<double>& reference,
                           const std::vector<double>& current, const ColumnTestOptions& options = {});
/// Tests one categorical column (labels, classes).
ColumnDrift test_categorical(const std::string& column, const std::vector<std::string>& reference,
                             const std::vector<std::string>& current, const ColumnTestOptions& options = {});

/// Evidently's dataset drift: drift when the share of drifted columns is at least `drift_share` (0.5).
struct DatasetDrift {
  std::vector<ColumnDrift> columns;
  size_t drifted_columns = 0;
  double share = 0;
  double drift_share = 0.5;
  bool drifted = false;
};
DatasetDrift dataset_drift(std::vector<ColumnDrift> columns, double drift_share = 0.5);

}  // namespace vigil::monitor
