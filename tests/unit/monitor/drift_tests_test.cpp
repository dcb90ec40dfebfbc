// Drift tests equal scipy's numbers, and Evidently's choices and thresholds, on the cases of drift_cases.json
// (written by gen_drift_expected.py beside this file from scipy 1.10 and numpy): Kolmogorov-Smirnov statistic
// and exact p-value, Wasserstein distance (raw and normed), Jensen-Shannon distance and PSI over Evidently's
// bins, chi-square and Z-test p-values, and which test Evidently picks for each sample.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>

#include "tests_util.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/monitor/drift_tests.h"

namespace vigil::monitor {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

const json& cases() {
  static const json doc = json::parse(
      vigil::read_file(fs::path(VIGIL_SOURCE_DIR) / "tests" / "unit" / "monitor" / "drift_cases.json"));
  return doc;
}

/// Equal to 1e-9 relative, or 1e-12 absolute for values near zero (p-values of 1e-27 are compared
/// relatively).
void expect_close(double actual, double expected, const std::string& what) {
  const double tol = std::max(1e-12, 1e-9 * std::fabs(expected));
  EXPECT_NEAR(actual, expected, tol) << what;
}

TEST(DriftTests, NumericalColumnsMatchScipy) {
  int checked = 0;
  for (const auto& c : cases()["cases"]) {
    if (c["kind"] != "numerical") continue;
    const std::string name = c["name"];
    const auto ref = c["reference"].get<std::vector<double>>();
    const auto cur = c["current"].get<std::vector<double>>();
    const KsResult ks = ks_2samp(ref, cur);
    expect_close(ks.statistic, c["ks_statistic"], name + " ks statistic");
    expect_close(ks.p_value, c["ks_p"], name + " ks p");
    expect_close(wasserstein_distance(ref, cur), c["wasserstein"], name + " wasserstein");
    expect_close(wasserstein_normed(ref, cur), c["wasserstein_normed"], name + " wasserstein normed");
    const BinnedShares plain = bin_numerical(ref, cur, false);
    EXPECT_EQ(plain.reference.size(), c["bins"].get<size_t>()) << name;
    expect_close(jensen_shannon_distance(plain.reference, plain.current), c["jensenshannon"], name + " js");
    const BinnedShares filled = bin_numerical(ref, cur, true);
    expect_close(population_stability_index(filled.reference, filled.current), c["psi"], name + " psi");
    EXPECT_EQ(to_string(test_numerical(name, ref, cur).test), c["default_test"].get<std::string>()) << name;
    ++checked;
  }
  EXPECT_EQ(checked, 9);
}

TEST(DriftTests, CategoricalColumnsMatchScipy) {
  int checked = 0;
  for (const auto& c : cases()["cases"]) {
    if (c["kind"] != "categorical") continue;
    const std::string name = c["name"];
    const auto ref = c["reference"].get<std::vector<std::string>>();
    const auto cur = c["current"].get<std::vector<std::string>>();
    expect_close(test_categorical(name, ref, cur, {StatTest::kChiSquare, {}}).score, c["chisquare_p"],
                 name + " chi-square");
    expect_close(test_categorical(name, ref, cur, {StatTest::kZ, {}}).score, c["z_p"], name + " z");
    expect_close(test_categorical(name, ref, cur, {StatTest::kJensenShannon, {}}).score, c["jensenshannon"],
                 name + " js");
    expect_close(test_categorical(name, ref, cur, {StatTest::kPsi, {}}).score, c["psi"], name + " psi");
    EXPECT_EQ(to_string(test_categorical(name, ref, cur).test), c["default_test"].get<std::string>()) << name;
    ++checked;
  }
  EXPECT_EQ(checked, 4);
}

TEST(DriftTests, IncompleteGammaMatchesTheChiSquareSurvivalFunction) {
  for (const auto& g : cases()["gamma_q"])
    expect_close(gamma_q(g["a"], g["x"]), g["q"],
                 fmt::format("Q({}, {})", g["a"].get<double>(), g["x"].get<double>()));
}

TEST(DriftTests, DriftFollowsEachTestsDirectionAndThreshold) {
  const auto& all = cases()["cases"];
  const auto find = [&](const std::string& name) {
    for (const auto& c : all)
      if (c["name"] == name) return c;
    throw std::runtime_error(name);
  };
  const json shifted = find("brightness_darker"), same = find("normal_same_equal_sizes");
  // A p-value drifts below 0.05 ...
  const ColumnDrift d = test_numerical("brightness", shifted["reference"], shifted["current"]);
  EXPECT_EQ(d.test, StatTest::kKs);
  EXPECT_DOUBLE_EQ(d.threshold, 0.05);
  EXPECT_TRUE(d.drifted);
  EXPECT_FALSE(test_numerical("x", same["reference"], same["current"]).drifted);
  // ... a distance at or above 0.1; a given threshold wins.
  const json large = find("large_reference_wasserstein");
  const ColumnDrift w = test_numerical("x", large["reference"], large["current"]);
  EXPECT_EQ(w.test, StatTest::kWasserstein);
  EXPECT_DOUBLE_EQ(w.threshold, 0.1);
  EXPECT_TRUE(w.drifted) << w.score;
  EXPECT_FALSE(test_numerical("x", large["reference"], large["current"], {{}, 0.2}).drifted);
  // Shares for the report's plot: both samples over the same bins, each summing to 1.
  double sum_ref = 0, sum_cur = 0;
  for (double s : d.shares.reference) sum_ref += s;
  for (double s : d.shares.current) sum_cur += s;
  EXPECT_NEAR(sum_ref, 1, 1e-12);
  EXPECT_NEAR(sum_cur, 1, 1e-12);
  EXPECT_EQ(d.shares.labels.size(), d.shares.reference.size());
}

TEST(DriftTests, DatasetDriftIsTheShareOfDriftedColumns) {
  std::vector<ColumnDrift> cols(4);
  cols[0].drifted = cols[1].drifted = true;
  DatasetDrift d = dataset_drift(cols);
  EXPECT_DOUBLE_EQ(d.share, 0.5);
  EXPECT_TRUE(d.drifted) << "Evidently: drift when the share reaches 0.5";
  EXPECT_FALSE(dataset_drift(cols, 0.75).drifted);
  EXPECT_FALSE(dataset_drift({}).drifted);
}

TEST(DriftTests, BadInputIsRefusedWithAMessage) {
  EXPECT_THROW(ks_2samp({}, {1.0}), InvalidArgument);
  try {
    test_numerical("brightness", {}, {1.0, 2.0});
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("column 'brightness'"));
  }
  try {
    stattest_from_string("kolmogorov");
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("ks, wasserstein, chisquare, z, jensenshannon, psi"));
  }
  EXPECT_THROW(test_categorical("label", {"a"}, {"b"}, {StatTest::kKs, {}}), InvalidArgument);
  // NaN values are dropped, as Evidently drops missing values.
  EXPECT_EQ(test_numerical("x", {1, 2, NAN, 3}, {1, 2, 3}).reference_size, 3u);
}

}  // namespace
}  // namespace vigil::monitor
