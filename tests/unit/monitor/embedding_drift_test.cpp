// Embedding drift equals Evidently's methods re-stated with numpy/scipy on the cases of
// embedding_cases.json (written by gen_embedding_expected.py beside this file): the distance between mean
// embeddings, the unbiased MMD^2 with the median-distance kernel, the drifted share of the ratio method, ROC
// AUC with ties and numpy's percentile, to 1e-9. And the verdicts behave: embeddings of one distribution do
// not drift under any method (bootstrapped as Evidently does for small references), shifted ones drift
// under every method, and bad input is refused with a message.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <random>

#include "tests_util.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/monitor/embedding_drift.h"

namespace vigil::monitor {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;
namespace fs = std::filesystem;
using Rows = std::vector<std::vector<double>>;

const json& cases() {
  static const json doc = json::parse(
      vigil::read_file(fs::path(VIGIL_SOURCE_DIR) / "tests" / "unit" / "monitor" / "embedding_cases.json"));
  return doc;
}

void expect_close(double actual, double expected, const std::string& what) {
  EXPECT_NEAR(actual, expected, std::max(1e-12, 1e-9 * std::fabs(expected))) << what;
}

EmbeddingDriftOptions method(EmbeddingMethod m, std::optional<bool> bootstrap = false) {
  EmbeddingDriftOptions o;
  o.method = m;
  o.bootstrap = bootstrap;
  return o;
}

TEST(EmbeddingDrift, StatisticsMatchNumpyAndScipy) {
  ASSERT_GE(cases()["cases"].size(), 4U);
  for (const auto& c : cases()["cases"]) {
    const std::string name = c["name"];
    const auto ref = c["reference"].get<Rows>();
    const auto cur = c["current"].get<Rows>();
    const EmbeddingDrift d = embedding_drift(ref, cur, method(EmbeddingMethod::kDistance));
    expect_close(d.score, c["distance"], name + " distance");
    EXPECT_EQ(d.drifted, d.score > 0.2) << name;
    expect_close(mmd2_unbiased(ref, cur, c["gamma"].get<double>()), c["mmd2u"], name + " mmd2u");
    const EmbeddingDrift m = embedding_drift(ref, cur, method(EmbeddingMethod::kMmd));
    expect_close(m.score, std::max(0.0, c["mmd2u"].get<double>()), name + " mmd method");
    const EmbeddingDrift r = embedding_drift(ref, cur, method(EmbeddingMethod::kRatio));
    expect_close(r.score, c["ratio"], name + " ratio");
    EXPECT_EQ(r.components.size(), 16U);
    EXPECT_EQ(r.drifted, r.score > 0.2) << name;
  }
}

TEST(EmbeddingDrift, RocAucAndPercentileMatchNumpy) {
  const json& a = cases()["auc"];
  std::vector<bool> labels;
  for (int l : a["labels"]) labels.push_back(l == 1);
  expect_close(roc_auc(a["scores"].get<std::vector<double>>(), labels), a["expected"], "auc");
  const json& p = cases()["percentile"];
  for (size_t i = 0; i < p["q"].size(); ++i)
    expect_close(percentile(p["values"].get<std::vector<double>>(), p["q"][i]), p["expected"][i],
                 "percentile " + p["q"][i].dump());
  EXPECT_THAT(
      [] {
        roc_auc({0.1, 0.2}, {true, true});
      },
      ThrowsMessage<InvalidArgument>(HasSubstr("expected both classes")));
}

Rows gaussian(size_t n, double shift, uint64_t seed) {
  std::mt19937_64 bits(seed);
  Rows rows(n, std::vector<double>(16));
  for (auto& r : rows)
    for (size_t d = 0; d < r.size(); ++d) {
      // Box-Muller from two uniforms (std::normal_distribution differs between standard libraries).
      const double u1 = (static_cast<double>(bits() >> 11) + 1) * 0x1.0p-53;
      const double u2 = static_cast<double>(bits() >> 11) * 0x1.0p-53;
      r[d] = 2.0 + 0.1 * static_cast<double>(d) + shift +
             std::sqrt(-2 * std::log(u1)) * std::cos(2 * 3.14159265358979 * u2);
    }
  return rows;
}

TEST(EmbeddingDrift, OneDistributionDoesNotDriftAndAShiftDriftsUnderEveryMethod) {
  const Rows reference = gaussian(400, 0, 1), same = gaussian(300, 0, 2), shifted = gaussian(300, 0.5, 3);
  for (auto m : {EmbeddingMethod::kModel, EmbeddingMethod::kDistance, EmbeddingMethod::kMmd}) {
    // Evidently's defaults: 400 reference rows <= 1000, so the threshold is bootstrapped.
    EmbeddingDriftOptions o;
    o.method = m;
    const EmbeddingDrift a = embedding_drift(reference, same, o);
    const EmbeddingDrift b = embedding_drift(reference, shifted, o);
    EXPECT_TRUE(a.bootstrap && b.bootstrap);
    EXPECT_FALSE(a.drifted) << to_string(m) << " score " << a.score << " threshold " << a.threshold;
    EXPECT_TRUE(b.drifted) << to_string(m) << " score " << b.score << " threshold " << b.threshold;
    EXPECT_GT(b.score, a.score) << to_string(m);
  }
  // The classifier separates a 0.5 shift in 16 dimensions clearly, and guesses on one distribution.
  const EmbeddingDrift model_same = embedding_drift(reference, same);
  const EmbeddingDrift model_shift = embedding_drift(reference, shifted);
  EXPECT_LT(model_same.score, 0.6);
  EXPECT_GT(model_shift.score, 0.9);
  // Without bootstrap the fixed thresholds apply: 0.55 (model), 0.2 (distance).
  const EmbeddingDrift fixed = embedding_drift(reference, shifted, method(EmbeddingMethod::kModel));
  EXPECT_FALSE(fixed.bootstrap);
  EXPECT_DOUBLE_EQ(fixed.threshold, 0.55);
  EXPECT_TRUE(fixed.drifted);
  // The same rows give the same answer: every draw is seeded.
  EXPECT_DOUBLE_EQ(embedding_drift(reference, shifted).threshold, model_shift.threshold);
}

TEST(EmbeddingDrift, BadInputIsRefusedWithAMessage) {
  const Rows ok = gaussian(5, 0, 4);
  EXPECT_THAT([&] { embedding_drift(ok, Rows{ok[0]}); },
              ThrowsMessage<InvalidArgument>(HasSubstr("at least 2 current embeddings")));
  Rows narrow = ok;
  narrow[3].pop_back();
  EXPECT_THAT([&] { embedding_drift(ok, narrow); },
              ThrowsMessage<InvalidArgument>(HasSubstr("current row 3 has 15 numbers, expected 16")));
  Rows bad = ok;
  bad[1][2] = std::nan("");
  EXPECT_THAT([&] { embedding_drift(bad, ok); },
              ThrowsMessage<InvalidArgument>(HasSubstr("reference row 1 holds a non-finite value")));
  EXPECT_THAT([] { embedding_method_from_string("pca"); },
              ThrowsMessage<InvalidArgument>(HasSubstr("expected model, ratio, distance or mmd")));
}

}  // namespace
}  // namespace vigil::monitor
