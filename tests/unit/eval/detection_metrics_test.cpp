// The Ultralytics view and the confusion matrix on hand-built cases; expected values are derived in the
// comments from Ultralytics' formulas:
//   recall = tpc / (labels + 1e-16), precision = tpc / (tpc + fpc) over detections by descending score;
//   compute_ap: mrec = [0, recall, 1], mpre = [1, precision, 0], mpre = suffix maximum, then the trapezoid
//   rule over numpy.interp(linspace(0, 1, 101), mrec, mpre) (an x on repeated mrec takes the last point);
//   p/r curves: numpy.interp(-px, -conf, precision or recall at IoU .5, left = 1 or 0), px = linspace(0, 1,
//   1000); the operating point is the first maximum of the box-filtered (101 points) mean F1 curve.

#include <gtest/gtest.h>

#include <cmath>

#include "vigil/core/error.h"
#include "vigil/eval/detection_metrics.h"

namespace {

using namespace vigil::eval;

constexpr double kTol = 1e-9;

GtBox gt(int64_t image, int64_t cat, double x, double y, double w, double h, bool crowd = false) {
  return {image, cat, x, y, w, h, w * h, crowd};
}
DetBox det(int64_t image, int64_t cat, double x, double y, double w, double h, double score) {
  return {image, cat, x, y, w, h, score};
}

TEST(NumpyInterp, FollowsNumpyOnRepeatedPoints) {
  const std::vector<double> xp = {0, 0.5, 0.5, 1}, fp = {1, 1, 0.5, 0};
  EXPECT_EQ(numpy_interp(0.5, xp, fp, 9, 8), 0.5);  // the last of the repeated points
  EXPECT_EQ(numpy_interp(0.25, xp, fp, 9, 8), 1.0);
  EXPECT_DOUBLE_EQ(numpy_interp(0.75, xp, fp, 9, 8), 0.25);
  EXPECT_EQ(numpy_interp(1.0, xp, fp, 9, 8), 0.0);  // x on the last point: its value, not `right`
  EXPECT_EQ(numpy_interp(-1, xp, fp, 9, 8), 9.0);
  EXPECT_EQ(numpy_interp(2, xp, fp, 9, 8), 8.0);
  EXPECT_EQ(numpy_interp(0.3, {0.3}, {7}, 1, 2), 7.0);
  EXPECT_EQ(numpy_interp(0.2, {0.3}, {7}, 1, 2), 1.0);
  EXPECT_EQ(numpy_linspace(0, 1, 1000)[999], 1.0);
}

// One class, two GTs g1 [0,0,10,10], g2 [20,0,10,10]; detections 0.9 on g1 (TP), 0.8 elsewhere (FP),
// 0.7 on g2 (TP); IoUs 1 or 0, so every threshold agrees.
//   recall [.5, .5, 1], precision [1, .5, 2/3]
//   mrec [0, .5, .5, 1, 1], mpre [1, 1, .5, 2/3, 0] -> envelope [1, 1, 2/3, 2/3, 0]
//   interp at x = 0 .. .49: 1; x = .5: the last repeated point, 2/3; x = .51 .. .99: 2/3; x = 1: 0
//   trapezoids: .49 * 1 + .01 * (1 + 2/3) / 2 + .49 * 2/3 + .01 * (2/3 + 0) / 2
//             = (147 + 2.5 + 98 + 1) / 300 = 248.5 / 300
//   curves: conf > .9: p 1, r 0; .8 .. .9: r .5, p from .5 (.8) to 1 (.9), i.e. 1 - 5 (.9 - x);
//           .7 .. .8: r .5 + 5 (.8 - x), p from 2/3 (.7) to .5 (.8); conf <= .7: p 2/3, r 1, F1 = .8.
//   F1 peaks (.8) on the whole plateau conf <= .7, so the smoothed mean peaks first at index 0: conf 0,
//   p 2/3, r 1; tp = round(1 * 2) = 2, fp = round(2 / (2/3) - 2) = 1.
DetectionData one_class_case() {
  DetectionData d;
  d.image_ids = {1};
  d.categories = {{1, "a"}};
  d.ground_truth = {gt(1, 1, 0, 0, 10, 10), gt(1, 1, 20, 0, 10, 10)};
  d.detections = {det(1, 1, 0, 0, 10, 10, 0.9), det(1, 1, 50, 50, 10, 10, 0.8),
                  det(1, 1, 20, 0, 10, 10, 0.7)};
  return d;
}

TEST(Ultralytics, ApCurvesAndOperatingPoint) {
  const UltralyticsMetrics m = ultralytics_metrics(one_class_case());
  ASSERT_EQ(m.classes.size(), 1u);
  const UltralyticsClass& c = m.classes[0];
  EXPECT_EQ(c.labels, 2u);
  EXPECT_EQ(c.predictions, 3u);
  for (double ap : c.ap) EXPECT_NEAR(ap, 248.5 / 300, kTol);
  EXPECT_NEAR(m.map50, 248.5 / 300, kTol);
  EXPECT_NEAR(m.map, 248.5 / 300, kTol);
  EXPECT_EQ(m.best_index, 0u);
  EXPECT_EQ(m.best_conf, 0.0);
  EXPECT_NEAR(m.mp, 2.0 / 3, kTol);
  EXPECT_NEAR(m.mr, 1.0, kTol);
  EXPECT_NEAR(c.f1, 0.8, kTol);
  EXPECT_EQ(c.tp, 2);
  EXPECT_EQ(c.fp, 1);
  ASSERT_EQ(m.px.size(), kCurvePoints);
  // px[j] = j / 999.
  EXPECT_NEAR(c.p_curve[850], 1 - 5 * (0.9 - 850.0 / 999), kTol);
  EXPECT_NEAR(c.r_curve[850], 0.5, kTol);
  EXPECT_NEAR(c.r_curve[750], 0.5 + 5 * (0.8 - 750.0 / 999), kTol);
  EXPECT_EQ(c.r_curve[950], 0.0);
  EXPECT_EQ(c.p_curve[950], 1.0);
  EXPECT_NEAR(c.f1_curve[100], 0.8, kTol);
  // The PR curve reads px as recall: envelope 1 below .5, 2/3 above, 0 at recall 1.
  EXPECT_NEAR(c.pr_curve[400], 1, kTol);
  EXPECT_NEAR(c.pr_curve[600], 2.0 / 3, kTol);
  EXPECT_EQ(c.pr_curve[999], 0.0);
}

// Darknet-style lines at the operating confidence (0 here: every detection): TP 2, FP 1, FN 0. At a given
// confidence .85 only the 0.9 detection counts: TP 1, FP 0, FN 1.
TEST(Ultralytics, ClassLinesAtTheOperatingConfidence) {
  const UltralyticsMetrics m = ultralytics_metrics(one_class_case());
  ASSERT_EQ(m.lines.size(), 1u);
  EXPECT_EQ(m.operating_conf, 0.0);
  EXPECT_EQ(m.lines[0].tp, 2u);
  EXPECT_EQ(m.lines[0].fp, 1u);
  EXPECT_EQ(m.lines[0].fn, 0u);
  EXPECT_NEAR(m.lines[0].ap50, 248.5 / 300, kTol);
  const auto text = format_class_lines(m);
  ASSERT_EQ(text.size(), 4u);
  EXPECT_EQ(text[0], "class_id = 1, name = a, ap = 82.83%   (TP = 2, FP = 1, FN = 0)");
  EXPECT_EQ(text[1], " for conf_thresh = 0.000, precision = 0.67, recall = 1.00, F1-score = 0.80");
  EXPECT_EQ(text[3], " mean average precision (mAP@0.50) = 0.828333");

  UltralyticsOptions opt;
  opt.operating_conf = 0.85;
  const UltralyticsMetrics at = ultralytics_metrics(one_class_case(), opt);
  EXPECT_EQ(at.lines[0].tp, 1u);
  EXPECT_EQ(at.lines[0].fp, 0u);
  EXPECT_EQ(at.lines[0].fn, 1u);
  EXPECT_EQ(at.tp + at.fp + at.fn, 2u);
  opt.operating_conf = std::nan("");
  EXPECT_THROW(ultralytics_metrics(one_class_case(), opt), vigil::InvalidArgument);
}

// Class 1: GT [0,0,10,10], detection [0,0,10,7.2] (0.9): IoU 72 / (100 + 1e-7) just under .72 -> correct at
//   .5 .. .7 (5 thresholds), not from .75. One TP: recall [1], precision [1]; mrec [0, 1, 1],
//   mpre [1, 1, 0]: interp 1 for x < 1 and 0 at x = 1 -> AP = .99 + .01 * (1 + 0) / 2 = .995 (Ultralytics'
//   well-known ceiling). Unmatched: recall [0], precision [0] -> AP 0.
// Class 2: a detection, no ground truth -> not a class of this view (Ultralytics keeps target classes only).
// Class 3: a GT in image 2, no detection -> AP 0 and zero curves, but it counts in the means.
//   map50 = (.995 + 0) / 2; map75 = 0; map = 5 * .995 / 20.
//   F1: class 1 is 1 for conf < .9 (p = r = 1), class 3 is 0 -> mean .5 on a plateau from index 0:
//   mp = (1 + 0) / 2, mr = (1 + 0) / 2.
TEST(Ultralytics, ThresholdsAndClassesWithoutDetectionsOrGroundTruth) {
  DetectionData d;
  d.image_ids = {1, 2};
  d.categories = {{1, "a"}, {2, "b"}, {3, "c"}};
  d.ground_truth = {gt(1, 1, 0, 0, 10, 10), gt(2, 3, 0, 0, 10, 10)};
  d.detections = {det(1, 1, 0, 0, 10, 7.2, 0.9), det(1, 2, 0, 0, 10, 10, 0.8)};
  const UltralyticsMetrics m = ultralytics_metrics(d);
  ASSERT_EQ(m.classes.size(), 2u);
  EXPECT_EQ(m.classes[0].category_id, 1);
  EXPECT_EQ(m.classes[1].category_id, 3);
  for (size_t t = 0; t < kUltralyticsIous; ++t)
    EXPECT_NEAR(m.classes[0].ap[t], t < 5 ? 0.995 : 0.0, kTol) << t;
  EXPECT_NEAR(m.map50, 0.995 / 2, kTol);
  EXPECT_NEAR(m.map75, 0, kTol);
  EXPECT_NEAR(m.map, 5 * 0.995 / 20, kTol);
  EXPECT_NEAR(m.mp, 0.5, kTol);
  EXPECT_NEAR(m.mr, 0.5, kTol);
  EXPECT_NEAR(m.fitness(), 0.1 * m.map50 + 0.9 * m.map, kTol);
  // Lines cover every category: b has no ground truth (ap50 -1) and one FP; c one FN.
  ASSERT_EQ(m.lines.size(), 3u);
  EXPECT_EQ(m.lines[1].ap50, -1);
  EXPECT_EQ(m.lines[1].fp, 1u);
  EXPECT_EQ(m.lines[2].fn, 1u);
  EXPECT_EQ(m.tp, 1u);
  EXPECT_EQ(m.fp, 1u);
  EXPECT_EQ(m.fn, 1u);
}

// match_predictions is not COCO's greedy matching: g1 [2,0,10,10], g2 [4,0,10,10];
//   d1 (0.9) [0,0,10,10]: IoU g1 80/120 = .667, g2 60/140 = .43
//   d2 (0.8) [2.8,0,10,10]: IoU g1 92/108 = .852, g2 88/112 = .786
// At .5 both detections' best label is g1, which goes to the first (highest-scoring) one, d1; d2 does not
// fall back to g2: TP 1, FP 1, FN 1. COCO gives d2 the free g2: recall 1 at IoU .5.
TEST(Ultralytics, MatchingKeepsEachDetectionsBestLabelOnly) {
  DetectionData d;
  d.image_ids = {1};
  d.categories = {{1, "a"}};
  d.ground_truth = {gt(1, 1, 2, 0, 10, 10), gt(1, 1, 4, 0, 10, 10)};
  d.detections = {det(1, 1, 0, 0, 10, 10, 0.9), det(1, 1, 2.8, 0, 10, 10, 0.8)};
  UltralyticsOptions opt;
  opt.operating_conf = 0;
  const UltralyticsMetrics m = ultralytics_metrics(d, opt);
  EXPECT_EQ(m.lines[0].tp, 1u);
  EXPECT_EQ(m.lines[0].fp, 1u);
  EXPECT_EQ(m.lines[0].fn, 1u);
  const CocoEvalResult coco = coco_evaluate(d);
  EXPECT_EQ(coco.recall[coco.recall_index(0, 0, 0, 2)], 1.0);
}

TEST(Ultralytics, NoGroundTruthGivesZeros) {
  DetectionData d;
  d.image_ids = {1};
  d.categories = {{1, "a"}};
  d.detections = {det(1, 1, 0, 0, 10, 10, 0.9)};
  const UltralyticsMetrics m = ultralytics_metrics(d);
  EXPECT_TRUE(m.classes.empty());
  EXPECT_EQ(m.map50, 0.0);
  EXPECT_EQ(m.map, 0.0);
  EXPECT_EQ(m.mp, 0.0);
  EXPECT_EQ(m.fp, 1u);
}

TEST(Ultralytics, SameResultForAnyThreadCount) {
  DetectionData d;
  d.categories = {{1, "a"}, {2, "b"}};
  for (int i = 0; i < 200; ++i) {
    d.image_ids.push_back(i);
    for (int g = 0; g < 3; ++g) d.ground_truth.push_back(gt(i, 1 + g % 2, 20.0 * g, i % 7, 15, 12));
    for (int k = 0; k < 30; ++k) {
      // Boxes drifting over the ground truth with scores in steps of .05: many ties, many partial overlaps.
      d.detections.push_back(det(i, 1 + k % 2, k * 1.7, (i + k) % 5, 15, 12, ((i * 7 + k * 3) % 20) / 20.0));
    }
  }
  UltralyticsOptions one, many;
  one.threads = 1;
  many.threads = 3;
  const UltralyticsMetrics a = ultralytics_metrics(d, one), b = ultralytics_metrics(d, many);
  ASSERT_EQ(a.classes.size(), b.classes.size());
  for (size_t k = 0; k < a.classes.size(); ++k) {
    EXPECT_EQ(a.classes[k].ap, b.classes[k].ap);
    EXPECT_EQ(a.classes[k].f1_curve, b.classes[k].f1_curve);
  }
  EXPECT_EQ(a.best_index, b.best_index);
  EXPECT_GT(a.map50, 0);
}

// Cats (1) and dogs (2), conf .25, IoU .45; layout counts[true][predicted], background index 2.
//   img 1: GT cat A [0,0,10,10], dog B [50,50,10,10]; cat det on A (.9) -> cat/cat; cat det on B (.8) ->
//          dog/cat; dog det far away (.7) -> bg/dog; dog det on A (.2) is under conf.
//   img 2: GT cat C, a dog det far away (.9): C -> cat/bg, the det -> bg/dog (counted although nothing in the
//          image paired up; Ultralytics' `if n:` skips it).
//   img 3: a crowd GT (left out), cat det (.3) -> bg/cat; dog det at exactly .25 is not > conf.
//   img 4: GT dog D [0,0,10,10]; dog det [0,0,10,5] (.6): IoU .5 > .45 -> dog/dog; dog det [0,0,10,4.5] (.5):
//          IoU 45 / (100 + 1e-7) < .45 -> bg/dog.
//   img 5: GT cat E; cat det [0,0,10,9] (.5, IoU .9) and cat det on E (.4, IoU 1): E takes the higher IoU,
//          lower score one -> cat/cat; the other -> bg/cat.
//   rows: cat [2, 0, 1], dog [1, 1, 0], background [2, 3, 0].
TEST(ConfusionMatrixTest, CountsWithBackground) {
  DetectionData d;
  d.image_ids = {1, 2, 3, 4, 5};
  d.categories = {{1, "cat"}, {2, "dog"}};
  d.ground_truth = {gt(1, 1, 0, 0, 10, 10),       gt(1, 2, 50, 50, 10, 10), gt(2, 1, 0, 0, 10, 10),
                    gt(3, 1, 0, 0, 50, 50, true), gt(4, 2, 0, 0, 10, 10),   gt(5, 1, 0, 0, 10, 10)};
  d.detections = {
      det(1, 1, 0, 0, 10, 10, 0.9),  det(1, 1, 50, 50, 10, 10, 0.8),   det(1, 2, 100, 100, 10, 10, 0.7),
      det(1, 2, 0, 0, 10, 10, 0.2),  det(2, 2, 200, 200, 10, 10, 0.9), det(3, 1, 0, 0, 10, 10, 0.3),
      det(3, 2, 0, 0, 10, 10, 0.25), det(4, 2, 0, 0, 10, 5, 0.6),      det(4, 2, 0, 0, 10, 4.5, 0.5),
      det(5, 1, 0, 0, 10, 9, 0.5),   det(5, 1, 0, 0, 10, 10, 0.4)};
  const ConfusionMatrix cm = confusion_matrix(d);
  ASSERT_EQ(cm.size(), 3u);
  EXPECT_EQ(cm.names, (std::vector<std::string>{"cat", "dog", "background"}));
  EXPECT_EQ(cm.counts, (std::vector<int64_t>{2, 0, 1, 1, 1, 0, 2, 3, 0}));
  const std::vector<double> n = cm.normalized();
  EXPECT_NEAR(n[0], 2.0 / 3, kTol);
  EXPECT_NEAR(n[2], 1.0 / 3, kTol);
  EXPECT_NEAR(n[3], 0.5, kTol);
  EXPECT_NEAR(n[6], 0.4, kTol);
  EXPECT_NEAR(n[7], 0.6, kTol);
  EXPECT_EQ(n[8], 0.0);

  // Above every score: each (non-crowd) GT is missed: cats A, C, E; dogs B, D.
  ConfusionMatrixOptions strict;
  strict.conf = 0.95;
  EXPECT_EQ(confusion_matrix(d, strict).counts, (std::vector<int64_t>{0, 0, 3, 0, 0, 2, 0, 0, 0}));
  strict.iou = 1.5;
  EXPECT_THROW(confusion_matrix(d, strict), vigil::InvalidArgument);
}

TEST(ConfusionMatrixTest, EmptyRowsNormaliseToZero) {
  DetectionData d;
  d.image_ids = {1};
  d.categories = {{1, "a"}};
  const ConfusionMatrix cm = confusion_matrix(d);
  EXPECT_EQ(cm.counts, (std::vector<int64_t>{0, 0, 0, 0}));
  EXPECT_EQ(cm.normalized(), (std::vector<double>{0, 0, 0, 0}));
}

}  // namespace
