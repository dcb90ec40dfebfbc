// Hand-built cases with the arithmetic in comments. Every expected value was also cross-checked against
// scikit-learn 1.2 by gen_classification_expected.py beside this file (same cases, same names).
#include "vigil/eval/classification_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "vigil/core/error.h"

namespace vigil::eval {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr double kTol = 1e-12;

std::vector<ClassificationSample> binary_case() {
  // p = P(pos). Predictions (arg-max): pos, pos, pos, neg, neg, neg.
  return {{1, {0.1, 0.9}}, {0, {0.2, 0.8}}, {0, {0.3, 0.7}},
          {1, {0.6, 0.4}}, {0, {0.6, 0.4}}, {0, {0.8, 0.2}}};
}

std::vector<ClassificationSample> three_class_case() {
  // Predictions: cat, dog, dog, bird, bird, dog, cat.
  return {{0, {0.7, 0.2, 0.1}}, {0, {0.3, 0.6, 0.1}}, {1, {0.2, 0.5, 0.3}}, {1, {0.3, 0.1, 0.6}},
          {2, {0.2, 0.2, 0.6}}, {2, {0.2, 0.5, 0.3}}, {0, {0.8, 0.1, 0.1}}};
}

const std::vector<std::string> kBinary = {"neg", "pos"};
const std::vector<std::string> kThree = {"cat", "dog", "bird"};

TEST(ClassificationMetrics, BinaryCountsAndAverages) {
  auto m = compute_classification_metrics(binary_case(), kBinary);
  // Confusion [true][pred]: neg -> {neg: samples 5,6; pos: 2,3}; pos -> {neg: 4; pos: 1}.
  EXPECT_EQ(m.confusion, (std::vector<std::vector<int64_t>>{{2, 2}, {1, 1}}));
  EXPECT_EQ(m.samples, 6);
  EXPECT_NEAR(m.accuracy, 3.0 / 6, kTol);  // samples 1, 5, 6
  // pos: tp 1, fp 2, fn 1 -> P 1/3, R 1/2, F1 2tp/(2tp+fp+fn) = 2/5.
  EXPECT_NEAR(m.per_class[1].prf.precision, 1.0 / 3, kTol);
  EXPECT_NEAR(m.per_class[1].prf.recall, 0.5, kTol);
  EXPECT_NEAR(m.per_class[1].prf.f1, 0.4, kTol);
  // neg: tp 2, fp 1, fn 2 -> P 2/3, R 2/4, F1 4/7.
  EXPECT_NEAR(m.per_class[0].prf.precision, 2.0 / 3, kTol);
  EXPECT_NEAR(m.per_class[0].prf.recall, 0.5, kTol);
  EXPECT_NEAR(m.per_class[0].prf.f1, 4.0 / 7, kTol);
  EXPECT_EQ(m.per_class[0].support, 4);
  EXPECT_EQ(m.per_class[1].support, 2);
  // macro: P (2/3 + 1/3)/2 = 0.5, R 0.5, F1 (4/7 + 2/5)/2 = 17/35.
  EXPECT_NEAR(m.macro.precision, 0.5, kTol);
  EXPECT_NEAR(m.macro.recall, 0.5, kTol);
  EXPECT_NEAR(m.macro.f1, 17.0 / 35, kTol);
  // weighted by support 4:2: P (4*2/3 + 2*1/3)/6 = 5/9, R 0.5, F1 (4*4/7 + 2*2/5)/6 = 18/35.
  EXPECT_NEAR(m.weighted.precision, 5.0 / 9, kTol);
  EXPECT_NEAR(m.weighted.recall, 0.5, kTol);
  EXPECT_NEAR(m.weighted.f1, 18.0 / 35, kTol);
  EXPECT_EQ(m.top_k, 0) << "top-k is only reported beyond 2 classes";
  // -mean ln p_true = -(ln .9 + ln .2 + ln .3 + ln .4 + ln .6 + ln .8)/6.
  double ll =
      -(std::log(0.9) + std::log(0.2) + std::log(0.3) + std::log(0.4) + std::log(0.6) + std::log(0.8)) / 6;
  EXPECT_NEAR(m.log_loss, ll, kTol);
  EXPECT_NEAR(m.log_loss, 0.7615051898953696, 1e-12);
}

TEST(ClassificationMetrics, BinaryRocWithTiedScores) {
  auto m = compute_classification_metrics(binary_case(), kBinary);
  ASSERT_EQ(m.roc.size(), 1u);
  const auto& r = m.roc[0];
  EXPECT_EQ(r.name, "pos");
  // Scores high to low: .9 P, .8 N, .7 N, .4 P + .4 N (tied: one threshold), .2 N; 2 positives, 4 negatives.
  EXPECT_TRUE(std::isinf(r.thresholds[0]));
  EXPECT_THAT(std::vector<double>(r.thresholds.begin() + 1, r.thresholds.end()),
              ElementsAre(0.9, 0.8, 0.7, 0.4, 0.2));
  EXPECT_THAT(r.tpr, ElementsAre(0, 0.5, 0.5, 0.5, 1, 1));
  EXPECT_THAT(r.fpr, ElementsAre(0, 0, 0.25, 0.5, 0.75, 1));
  // Trapezoids: .25*.5 + .25*.5 + .25*(.5+1)/2 + .25*1 = 0.6875; by pairs: (4 + 1 + 0.5 tie) / 8.
  EXPECT_NEAR(r.auc, 0.6875, kTol);
  EXPECT_NEAR(m.per_class[1].auc, 0.6875, kTol);
  // Class 0 from its own probability (1 - p) ranks the same pairs the other way round: same AUC.
  EXPECT_NEAR(m.per_class[0].auc, 0.6875, kTol);
  auto j = m.to_json();
  EXPECT_NEAR(j["auc"].get<double>(), 0.6875, kTol);
  EXPECT_NEAR(j["auc/pos"].get<double>(), 0.6875, kTol);
  EXPECT_FALSE(j.contains("auc/macro"));
  EXPECT_FALSE(j.contains("top5_accuracy"));
}

TEST(ClassificationMetrics, ThreeClass) {
  auto m = compute_classification_metrics(three_class_case(), kThree);
  EXPECT_EQ(m.confusion, (std::vector<std::vector<int64_t>>{{2, 1, 0}, {0, 1, 1}, {0, 1, 1}}));
  EXPECT_NEAR(m.accuracy, 4.0 / 7, kTol);
  // cat: tp 2, fp 0, fn 1 -> P 1, R 2/3, F1 4/5.  dog: tp 1, fp 2, fn 1 -> 1/3, 1/2, 2/5.
  // bird: tp 1, fp 1, fn 1 -> 1/2, 1/2, 1/2.
  EXPECT_NEAR(m.per_class[0].prf.f1, 0.8, kTol);
  EXPECT_NEAR(m.per_class[1].prf.precision, 1.0 / 3, kTol);
  EXPECT_NEAR(m.per_class[2].prf.recall, 0.5, kTol);
  // macro P (1 + 1/3 + 1/2)/3 = 11/18, R (2/3 + 1/2 + 1/2)/3 = 5/9, F1 (.8 + .4 + .5)/3 = 17/30.
  EXPECT_NEAR(m.macro.precision, 11.0 / 18, kTol);
  EXPECT_NEAR(m.macro.recall, 5.0 / 9, kTol);
  EXPECT_NEAR(m.macro.f1, 17.0 / 30, kTol);
  // weighted (supports 3, 2, 2): P (3 + 2/3 + 1)/7 = 2/3, R = accuracy 4/7, F1 (2.4 + .8 + 1)/7 = 0.6.
  EXPECT_NEAR(m.weighted.precision, 2.0 / 3, kTol);
  EXPECT_NEAR(m.weighted.recall, 4.0 / 7, kTol);
  EXPECT_NEAR(m.weighted.f1, 0.6, kTol);
  // Top-5 with 3 classes is clamped to top-3: always right.
  EXPECT_EQ(m.top_k, 5);
  EXPECT_NEAR(m.top_k_accuracy, 1.0, kTol);
  // ln of p_true: .7, .3, .5, .1, .6, .3, .8.
  double ll =
      -(std::log(0.7) + 2 * std::log(0.3) + std::log(0.5) + std::log(0.1) + std::log(0.6) + std::log(0.8)) /
      7;
  EXPECT_NEAR(m.log_loss, ll, kTol);
}

TEST(ClassificationMetrics, TopKCountsTheTrueClassRank) {
  ClassificationOptions o;
  o.top_k = 2;
  auto m = compute_classification_metrics(three_class_case(), kThree, o);
  // Only sample 4 (dog, probs .3 .1 .6) has its true class third: 6/7.
  EXPECT_NEAR(m.top_k_accuracy, 6.0 / 7, kTol);
  EXPECT_TRUE(m.to_json().contains("top2_accuracy"));
  o.top_k = 1;
  EXPECT_NEAR(compute_classification_metrics(three_class_case(), kThree, o).top_k_accuracy, 4.0 / 7, kTol);
}

TEST(ClassificationMetrics, ThreeClassOneVsRestAuc) {
  auto m = compute_classification_metrics(three_class_case(), kThree);
  ASSERT_EQ(m.roc.size(), 3u);
  // cat: positives .7 .3 .8, negatives .2 .3 .2 .2: (4 + 4 + 3 + 0.5 tie) / 12 = 23/24.
  EXPECT_NEAR(m.roc[0].auc, 23.0 / 24, kTol);
  // Curve: thresholds .8 .7 .3 .2 -> tp 1 2 3 3, fp 0 0 1 4.
  EXPECT_THAT(m.roc[0].tpr, ElementsAre(0, 1.0 / 3, 2.0 / 3, 1, 1));
  EXPECT_THAT(m.roc[0].fpr, ElementsAre(0, 0, 0, 0.25, 1));
  // dog: positives .5 .1, negatives .2 .6 .2 .5 .1: (3 + 0.5) + (0 + 0.5) = 4 of 10.
  EXPECT_NEAR(m.roc[1].auc, 0.4, kTol);
  // bird: positives .6 .3, negatives .1 .1 .3 .6 .1: (4 + 0.5) + (3 + 0.5) = 8 of 10.
  EXPECT_NEAR(m.roc[2].auc, 0.8, kTol);
  // macro (23/24 + 0.4 + 0.8) / 3 = 259/360.
  EXPECT_NEAR(m.macro_auc, 259.0 / 360, kTol);
  auto j = m.to_json();
  EXPECT_NEAR(j["auc/macro"].get<double>(), 259.0 / 360, kTol);
  EXPECT_NEAR(j["auc/dog"].get<double>(), 0.4, kTol);
  EXPECT_FALSE(j.contains("auc"));
}

TEST(ClassificationMetrics, PerfectPredictions) {
  std::vector<ClassificationSample> s = {
      {0, {1, 0, 0}}, {1, {0, 1, 0}}, {2, {0, 0, 1}}, {1, {0.1, 0.8, 0.1}}};
  auto m = compute_classification_metrics(s, kThree);
  EXPECT_EQ(m.accuracy, 1.0);
  for (const auto& c : m.per_class) {
    EXPECT_EQ(c.prf.precision, 1.0) << c.name;
    EXPECT_EQ(c.prf.recall, 1.0) << c.name;
    EXPECT_EQ(c.prf.f1, 1.0) << c.name;
    EXPECT_EQ(c.auc, 1.0) << c.name;
  }
  EXPECT_EQ(m.macro_auc, 1.0);
  EXPECT_EQ(m.confusion_matrix(true), (std::vector<std::vector<double>>{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}));
  // Bins: three samples at confidence 1 (bin 14, (14/15, 1], accuracy 1), one at .8 (bin 11, accuracy 1):
  // ECE = (0 * 3 + |1 - .8| * 1) / 4 = 0.05.
  EXPECT_NEAR(m.ece, 0.05, kTol);
  // p_true 1 is clipped to 1 - 1e-15, so three terms are ~1e-15; the fourth is -ln .8.
  EXPECT_NEAR(m.log_loss, -std::log(0.8) / 4, 1e-14);
}

TEST(ClassificationMetrics, AllWrong) {
  std::vector<ClassificationSample> s = {{0, {0, 1}}, {1, {1, 0}}, {0, {0.1, 0.9}}};
  auto m = compute_classification_metrics(s, kBinary);
  EXPECT_EQ(m.accuracy, 0.0);
  for (const auto& c : m.per_class) {
    EXPECT_EQ(c.prf.precision, 0.0);
    EXPECT_EQ(c.prf.recall, 0.0);
    EXPECT_EQ(c.prf.f1, 0.0);
  }
  // Every positive scores below every negative.
  EXPECT_EQ(m.roc[0].auc, 0.0);
  EXPECT_EQ(m.confusion, (std::vector<std::vector<int64_t>>{{0, 2}, {1, 0}}));
  // Confidences 1, 1, .9, all wrong: ECE = (1 * 2 + .9) / 3.
  EXPECT_NEAR(m.ece, 2.9 / 3, kTol);
  // Two p_true of 0 clipped to 1e-15, one of .1.
  EXPECT_NEAR(m.log_loss, (2 * -std::log(1e-15) - std::log(0.1)) / 3, 1e-9);
}

TEST(ClassificationMetrics, ClassAbsentFromTruth) {
  // bird is never true but predicted once (sample 2).
  std::vector<ClassificationSample> s = {
      {0, {0.8, 0.1, 0.1}}, {0, {0.2, 0.2, 0.6}}, {1, {0.3, 0.6, 0.1}}, {1, {0.6, 0.3, 0.1}}};
  auto m = compute_classification_metrics(s, kThree);
  // bird: tp 0, fp 1, fn 0 -> P 0/1, R 0/0 -> 0 (zero_division), F1 0/(0+1+0) = 0; support 0.
  EXPECT_EQ(m.per_class[2].prf.precision, 0.0);
  EXPECT_EQ(m.per_class[2].prf.recall, 0.0);
  EXPECT_EQ(m.per_class[2].prf.f1, 0.0);
  EXPECT_EQ(m.per_class[2].support, 0);
  // It still counts in the macro mean: R (1/2 + 1/2 + 0)/3 = 1/3; cat 1/2 1/2 1/2, dog 1 1/2 2/3.
  EXPECT_NEAR(m.macro.recall, 1.0 / 3, kTol);
  EXPECT_NEAR(m.macro.f1, (0.5 + 2.0 / 3) / 3, kTol);
  // ... but not in the weighted one: P (2 * 1/2 + 2 * 1) / 4 = 3/4.
  EXPECT_NEAR(m.weighted.precision, 0.75, kTol);
  // No positives: AUC undefined, null in JSON, left out of the macro AUC.
  EXPECT_TRUE(std::isnan(m.per_class[2].auc));
  EXPECT_TRUE(std::isnan(m.roc[2].auc));
  // cat: positives .8 .2 vs negatives .3 .6 -> 2/4; dog: positives .6 .3 vs .1 .2 -> 4/4.
  EXPECT_NEAR(m.macro_auc, (0.5 + 1.0) / 2, kTol);
  auto j = m.to_json();
  EXPECT_TRUE(j["auc/bird"].is_null());
  EXPECT_NEAR(j["auc/macro"].get<double>(), 0.75, kTol);
  EXPECT_EQ(j["support/bird"].get<int64_t>(), 0);
  // The normalised confusion row of a class without samples stays zero instead of 0/0.
  EXPECT_EQ(m.confusion_matrix(true)[2], (std::vector<double>{0, 0, 0}));
  // NaN and +inf must not leak into the JSON text (they would make it unparsable).
  auto reparsed = nlohmann::json::parse(m.to_detailed_json().dump());
  EXPECT_TRUE(reparsed["metrics"]["auc/bird"].is_null());
}

TEST(ClassificationMetrics, ClassNeverPredictedHasZeroPrecision) {
  std::vector<ClassificationSample> s = {{0, {0.6, 0.3, 0.1}}, {1, {0.2, 0.7, 0.1}}, {2, {0.5, 0.1, 0.4}}};
  auto m = compute_classification_metrics(s, kThree);
  // bird: tp 0, fp 0 -> precision 0/0 -> 0; fn 1 -> recall 0. cat: tp 1, fp 1 -> P 1/2, R 1, F1 2/3.
  EXPECT_EQ(m.per_class[2].prf.precision, 0.0);
  EXPECT_EQ(m.per_class[2].prf.recall, 0.0);
  EXPECT_NEAR(m.per_class[0].prf.f1, 2.0 / 3, kTol);
}

TEST(ClassificationMetrics, ExpectedCalibrationErrorFourSamples) {
  // Confidences (top-1 probability) and correctness: .9 right, .9 wrong, .55 right, .7 wrong.
  std::vector<ClassificationSample> s = {
      {1, {0.1, 0.9}}, {0, {0.1, 0.9}}, {0, {0.55, 0.45}}, {1, {0.7, 0.3}}};
  auto m = compute_classification_metrics(s, kBinary);
  ASSERT_EQ(m.reliability.size(), 15u);
  // .9 -> bin 13 (13/15, 14/15]: n 2, accuracy .5, confidence .9 -> |.5 - .9| * 2/4 = .2
  // .55 -> bin 8 (8/15, 9/15]:   n 1, accuracy 1,  confidence .55 -> .45 * 1/4 = .1125
  // .7 -> bin 10 (10/15, 11/15]: n 1, accuracy 0,  confidence .7 -> .7 * 1/4 = .175
  EXPECT_EQ(m.reliability[13].count, 2);
  EXPECT_NEAR(m.reliability[13].accuracy, 0.5, kTol);
  EXPECT_NEAR(m.reliability[13].confidence, 0.9, kTol);
  EXPECT_EQ(m.reliability[8].count, 1);
  EXPECT_EQ(m.reliability[10].count, 1);
  EXPECT_EQ(m.reliability[0].count, 0);
  EXPECT_NEAR(m.reliability[8].lower, 8.0 / 15, kTol);
  EXPECT_NEAR(m.reliability[8].upper, 9.0 / 15, kTol);
  EXPECT_NEAR(m.ece, 0.4875, kTol);
  EXPECT_NEAR(m.to_json()["ece"].get<double>(), 0.4875, kTol);
}

TEST(ClassificationMetrics, CalibrationBinEdgesAreUpperInclusive) {
  // Bin b is (b/15, (b+1)/15]. 11/15 is bin 10's top; the next double above it belongs to bin 11 although
  // it times 15 rounds to exactly 11.0 (a plain ceil(c * 15) - 1 would say bin 10). 0.8 is bin 11's top.
  const double edge = 11.0 / 15, above = std::nextafter(edge, 1.0);
  std::vector<ClassificationSample> s = {{0, {edge, 1 - edge}}, {0, {above, 1 - above}}, {0, {0.8, 0.2}}};
  auto m = compute_classification_metrics(s, kBinary);
  EXPECT_EQ(m.reliability[10].count, 1);
  EXPECT_EQ(m.reliability[11].count, 2);
  EXPECT_EQ(m.reliability[12].count, 0);
}

TEST(ClassificationMetrics, ThreeClassEceAndJsonKeys) {
  auto m = compute_classification_metrics(three_class_case(), kThree);
  // .5: samples 3 right, 6 wrong (bin 7) -> gap 0; .6: samples 2, 4 wrong, 5 right (bin 8, upper edge)
  // -> |1/3 - .6| * 3; .7 right (bin 10) -> .3; .8 right (bin 11, upper edge) -> .2. ECE = 1.3 / 7.
  EXPECT_NEAR(m.ece, 1.3 / 7, kTol);
  auto j = m.to_json();
  for (const char* key : {"samples", "accuracy", "top5_accuracy", "precision/cat", "recall/dog", "f1/bird",
                          "support/cat", "macro/precision", "macro/recall", "macro/f1", "weighted/precision",
                          "weighted/recall", "weighted/f1", "auc/cat", "auc/macro", "ece", "log_loss"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  auto d = m.to_detailed_json();
  EXPECT_EQ(d["classes"].size(), 3u);
  EXPECT_EQ(d["confusion_matrix"][0][0].get<int>(), 2);
  EXPECT_TRUE(d["roc"][0]["thresholds"][0].is_null());  // +inf
  EXPECT_EQ(d["reliability"].size(), 15u);
}

TEST(RocCurve, AllScoresTiedIsTheDiagonal) {
  auto r = roc_curve({0.5, 0.5, 0.5, 0.5}, {true, false, true, false});
  EXPECT_THAT(r.fpr, ElementsAre(0, 1));
  EXPECT_THAT(r.tpr, ElementsAre(0, 1));
  EXPECT_NEAR(r.auc, 0.5, kTol);
}

TEST(RocCurve, UndefinedWithoutNegatives) {
  auto r = roc_curve({0.9, 0.1}, {true, true});
  EXPECT_TRUE(std::isnan(r.auc));
  EXPECT_TRUE(std::isnan(r.fpr[1]));
  EXPECT_THAT(r.tpr, ElementsAre(0, 0.5, 1));
  EXPECT_THROW(roc_curve({0.1}, {true, false}), InvalidArgument);
  EXPECT_THROW(roc_curve({NAN}, {true}), InvalidArgument);
}

void expect_invalid(const std::vector<ClassificationSample>& s, const std::vector<std::string>& classes,
                    const std::string& fragment, const ClassificationOptions& o = {}) {
  try {
    (void)compute_classification_metrics(s, classes, o);
    ADD_FAILURE() << "expected InvalidArgument containing '" << fragment << "'";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr(fragment));
    EXPECT_THAT(e.what(), HasSubstr("expected"));
  }
}

TEST(ClassificationMetrics, BadInputIsRejected) {
  expect_invalid({}, kBinary, "got none");
  expect_invalid({{0, {0.5, 0.3, 0.2}}}, kBinary,
                 "expected 2 probabilities (one per class) for sample 0, got 3");
  expect_invalid({{0, {0.5, 0.5}}, {2, {0.5, 0.5}}}, kBinary, "true class id in [0, 2) for sample 1, got 2");
  expect_invalid({{-1, {0.5, 0.5}}}, kBinary, "got -1");
  expect_invalid({{0, {2.5, -1.5}}}, kBinary, "logits");
  expect_invalid({{0, {NAN, 0.5}}}, kBinary, "[0, 1]");
  expect_invalid({{0, {1.0}}}, {"only"}, "at least 2 class names");
  expect_invalid({{0, {0.5, 0.5}}}, {"a", "a"}, "unique class names");
  ClassificationOptions o;
  o.top_k = 0;
  expect_invalid({{0, {0.5, 0.5}}}, kBinary, "top_k", o);
  o = {};
  o.calibration_bins = 0;
  expect_invalid({{0, {0.5, 0.5}}}, kBinary, "calibration_bins", o);
}

}  // namespace
}  // namespace vigil::eval
