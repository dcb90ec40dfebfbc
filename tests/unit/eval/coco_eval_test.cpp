// COCO metrics on hand-built cases (tests/unit/eval/coco_cases.json, written by gen_coco_expected.py). Every
// expected number is derived in the comments from pycocotools' rules:
//  - per (image, category) detections are sorted by score (stable), ground truth ignore-last; each detection
//    takes the best still-free ground truth with IoU >= t (crowd regions may be taken again; once a regular
//    match is held the scan stops at the first ignored one); a match to an ignored/crowd ground truth makes
//    the detection ignored; unmatched detections outside the area range are ignored;
//  - per category all images' detections are merged in image-id order and stably sorted by score;
//    tp/fp are cumulated over the non-ignored ones, rc = tp / npig, pr = tp / (fp + tp + eps),
//    pr made monotone from the right, and for each of the 101 recall thresholds r/100 the precision at
//    the first point with rc >= r/100 is taken (0 when the curve never gets there);
//  - AP is the mean over thresholds, recall points and the categories that have ground truth.
// "1" below is 1 / (1 + eps) in pycocotools, within 3e-16 of 1.

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <string>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/eval/coco_eval.h"
#include "vigil/eval/coco_json.h"

namespace {

namespace fs = std::filesystem;
using namespace vigil::eval;
using nlohmann::json;

constexpr double kTol = 1e-9;
const fs::path kDir = fs::path(VIGIL_SOURCE_DIR) / "tests" / "unit" / "eval";

const json& cases() {
  static const json doc = json::parse(vigil::read_file(kDir / "coco_cases.json"));
  return doc.at("cases");
}

DetectionData load_case(const std::string& name) {
  for (const auto& c : cases()) {
    if (c.at("name") != name) continue;
    DetectionData data = parse_coco_ground_truth(c.at("gt"), name);
    data.detections = parse_coco_results(c.at("results"), data, name);
    return data;
  }
  throw std::runtime_error("no case " + name);
}

void expect_stats(const CocoEvalResult& r, const std::array<double, kCocoStatCount>& want) {
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(r.stats[i], want[i], kTol) << coco_stat_names()[i];
}

TEST(CocoEval, ThresholdsAreNumpys) {
  const auto& t = coco_iou_thresholds();
  ASSERT_EQ(t.size(), 10u);
  EXPECT_EQ(t[0], 0.5);
  EXPECT_EQ(t[5], 0.75);                // summarize() finds AP75 by exact equality
  EXPECT_EQ(t[8], 0.8999999999999999);  // numpy's linspace value, not 0.9
  EXPECT_EQ(t[9], 0.95);
  const auto& r = coco_recall_thresholds();
  ASSERT_EQ(r.size(), 101u);
  EXPECT_EQ(r[0], 0.0);
  EXPECT_EQ(r[50], 0.5);
  EXPECT_EQ(r[100], 1.0);
  EXPECT_EQ(coco_area_ranges()[1][1], 1024.0);
  EXPECT_EQ(coco_area_ranges()[2][0], 1024.0);
  EXPECT_EQ(coco_area_ranges()[3][1], 1e10);
}

TEST(CocoEval, BoxIouIsMaskApis) {
  // No +1: [0,0,10,10] and [10,0,10,10] touch and do not overlap.
  EXPECT_EQ(coco_box_iou({0, 0, 10, 0, 10, 10, 1}, {0, 0, 0, 0, 10, 10, 100}), 0.0);
  // [0,0,10,10] vs [5,0,10,10]: intersection 5*10 = 50, union 100 + 100 - 50 = 150.
  EXPECT_DOUBLE_EQ(coco_box_iou({0, 0, 5, 0, 10, 10, 1}, {0, 0, 0, 0, 10, 10, 100}), 50.0 / 150.0);
  // Crowd: intersection over the detection's area, 50 / 100.
  GtBox crowd{0, 0, 0, 0, 10, 10, 100, true};
  EXPECT_DOUBLE_EQ(coco_box_iou({0, 0, 5, 0, 10, 10, 1}, crowd), 0.5);
  // A detection inside a large crowd region: 25 / 25.
  GtBox big{0, 0, 0, 0, 100, 100, 10000, true};
  EXPECT_DOUBLE_EQ(coco_box_iou({0, 0, 10, 10, 5, 5, 1}, big), 1.0);
}

// multiclass: cat (1), dog (2), bird (3, no ground truth anywhere); images 1..4.
//   image 1: GT cat 100x100 (area 10000, large), GT dog 50x50 (2500, medium);
//            det cat on the cat (0.9, IoU 1), det dog on the dog (0.8, IoU 1), det dog on the cat box (0.95,
//            IoU 0 with the dog, area 10000)
//   image 2: GT cat 20x20 (400, small), no detection;  image 3: no GT, det cat 10x10 (0.7), det bird (0.9);
//   image 4: nothing.
// IoUs are 1 or 0, so every threshold gives the same numbers.
//   cat, all: npig 2; order 0.9 TP, 0.7 FP: rc [.5, .5], pr [1, .5] (already monotone);
//        r = 0..50 -> index 0 -> 1; r = 51..100 -> past the end -> 0.  AP = 51/101.  recall .5
//   dog, all: npig 1; order 0.95 FP, 0.8 TP: rc [0, 1], pr [0, .5] -> monotone [.5, .5]; every r -> .5.
//        AP = .5, recall 1
//   bird: npig 0 -> -1, left out of every mean.
//   AP = AP50 = AP75 = (51/101 + .5) / 2.
//   small: cat GTs 400 (in) and 10000 (ignored); the 0.9 det matches the ignored GT -> ignored; the 0.7 det
//        (area 100, in range) is a FP: tp [0, 0], pr [0, 0] -> APs(cat) 0; dog's GT 2500 is not small -> -1.
//        APs = 0, ARs = 0
//   medium: cat has no GT in range -> -1; dog GT in; the 0.95 det (area 10000, unmatched, out of range) is
//        ignored, 0.8 TP: AP 1.  APm = 1, ARm = 1
//   large: cat GT 10000 in, 400 ignored; 0.9 TP; 0.7 det (area 100, unmatched, out of range) ignored: AP 1;
//        dog GT not large -> -1.  APl = 1, ARl = 1
//   AR1: top-1 per image: cat 0.9 TP (img 1), 0.7 FP (img 3) -> 1/2; dog 0.95 FP -> 0.  AR1 = .25
//   AR10 = AR100 = (.5 + 1) / 2 = .75
TEST(CocoEval, MulticlassWithEmptyImagesAndAClassWithoutGroundTruth) {
  const CocoEvalResult r = coco_evaluate(load_case("multiclass"));
  const double ap = (51.0 / 101 + 0.5) / 2;
  expect_stats(r, {ap, ap, ap, 0, 1, 1, 0.25, 0.75, 0.75, 0, 1, 1});
  ASSERT_EQ(r.K(), 3u);
  EXPECT_EQ(r.category_names[2], "bird");
  EXPECT_NEAR(r.ap_per_class[0], 51.0 / 101, kTol);
  EXPECT_NEAR(r.ap_per_class[1], 0.5, kTol);
  EXPECT_EQ(r.ap_per_class[2], -1);
  EXPECT_NEAR(r.ap50_per_class[0], 51.0 / 101, kTol);
  EXPECT_EQ(r.ap50_per_class[2], -1);
  // The arrays behind the numbers: cat, area all, maxDet 100, IoU .5.
  EXPECT_NEAR(r.precision[r.precision_index(0, 50, 0, 0, 2)], 1, kTol);
  EXPECT_EQ(r.precision[r.precision_index(0, 51, 0, 0, 2)], 0);
  EXPECT_EQ(r.scores[r.precision_index(0, 50, 0, 0, 2)], 0.9);
  EXPECT_EQ(r.recall[r.recall_index(0, 0, 0, 2)], 0.5);
  EXPECT_EQ(r.precision[r.precision_index(0, 0, 2, 0, 2)], -1);  // bird
  EXPECT_EQ(r.recall[r.recall_index(9, 2, 0, 2)], -1);
}

// crowd: GT0 [0,0,10,10] (area 100), crowd GT1 [20,0,40,40]; detections by score:
//   0.95 [20,0,10,10]  inside the crowd: IoU = 100 / det area 100 = 1 -> matches the crowd -> ignored
//   0.90 [30,10,10,10] inside the crowd again: crowds can be matched repeatedly -> ignored
//   0.80 [0,0,10,10]   GT0, IoU 1 -> TP
//   0.70 [0,0,10,10]   GT0 already taken, no crowd overlap -> FP
//   0.60 [15,0,10,10]  crowd IoU 50/100 = .5: ignored at t = .5, FP above; GT0 no overlap
// all: npig 1; tp [0,0,1,1,1], fp [0,0,0,1,1], rc [0,0,1,1,1], pr [0,0,1,.5,.5] -> monotone [1,1,1,.5,.5];
//   r = 0 -> index 0 -> 1; r >= .01 -> index 2 -> 1.  AP = 1 at every threshold.
//   (Were the crowd matched once only, the 0.90 det would be a FP before the TP: pr at the TP = 1/2, AP = .5;
//   were it a regular GT, IoU 100/1600 -> two FPs first, AP = 1/3.)
// small: GT0 in, crowd ignored anyway, detections all area 100 -> same as all: APs = 1.
// medium / large: no GT in range -> -1.
// AR1: the top detection is the ignored 0.95 one: tp 0 -> 0.  AR10 = AR100 = ARs = 1.
TEST(CocoEval, CrowdRegionsAreIgnoredAndMatchedRepeatedly) {
  const CocoEvalResult r = coco_evaluate(load_case("crowd"));
  expect_stats(r, {1, 1, 1, 1, -1, -1, 0, 1, 1, 1, -1, -1});
}

// ties: images listed [7, 3]; image 3: GT [0,0,10,10], det p on it (0.5); image 7: GT [0,0,10,10], results in
// order q [50,50,10,10] (0.5, IoU 0) then r on the GT (0.5). All scores tie.
//   image 7 sorted stably keeps q before r: q FP, r TP.
//   merged in image-id order (3 before 7) and sorted stably: p TP, q FP, r TP.
//   npig 2: tp [1,1,2], fp [0,1,1], rc [.5,.5,1], pr [1, 1/2, 2/3] -> monotone [1, 2/3, 2/3];
//   r = 0..50 -> index 0 -> 1; r = 51..100 -> index 2 -> 2/3.  AP = (51 + 50 * 2/3) / 101 = 253/303.
//   (Another tie order, p r q, would give AP 1; q r p would give 2/3.)
// AR1: top-1 per image: p TP, q (first of the tie) FP -> 1/2.  AR10 = AR100 = 1.  All boxes are small.
TEST(CocoEval, TiedScoresKeepImageThenResultOrder) {
  const CocoEvalResult r = coco_evaluate(load_case("ties"));
  const double ap = 253.0 / 303;
  expect_stats(r, {ap, ap, ap, ap, -1, -1, 0.5, 1, 1, 1, -1, -1});
  EXPECT_NEAR(r.precision[r.precision_index(0, 50, 0, 0, 2)], 1, kTol);
  EXPECT_NEAR(r.precision[r.precision_index(0, 51, 0, 0, 2)], 2.0 / 3, kTol);
  EXPECT_EQ(r.scores[r.precision_index(0, 100, 0, 0, 2)], 0.5);
}

// area_boundary: GT a 32x32 area 1024, GT b 96x96 area 9216, GT c 33x33 area 1089 (never detected);
// det on a (0.9), det on b (0.8), IoU 1. Ranges are inclusive at both ends: 1024 is small AND medium, 9216 is
// medium AND large.
//   all: npig 3; tp [1,2], fp [0,0], rc [1/3, 2/3], pr [1,1]; r = 0..66 -> 1 (.66 < 2/3), r = 67..100 -> past
//        the end -> 0.  AP = 67/101 at every threshold; recall 2/3.
//   small: a in, b and c out (ignored); det b matches the ignored b -> ignored; npig 1, AP 1, recall 1.
//   medium: a, b, c all in -> as "all": AP 67/101, recall 2/3.
//   large: b in, a and c out; det a matches the ignored a -> ignored; AP 1, recall 1.
//   AR1: the top detection of the image is det a -> 1/3.
TEST(CocoEval, AreaBoundariesBelongToBothRanges) {
  const CocoEvalResult r = coco_evaluate(load_case("area_boundary"));
  const double ap = 67.0 / 101;
  expect_stats(r, {ap, ap, ap, 1, ap, 1, 1.0 / 3, 2.0 / 3, 2.0 / 3, 1, 2.0 / 3, 1});
}

// many_dets: one image, GT a and b (10x10), 105 detections with distinct scores; rank 50 hits a, rank 102
// would hit b but only the top maxDets = 100 are matched at all.
//   all: npig 2; 50 FPs, the TP (tp 1, fp 50: pr 1/51), 49 FPs. rc rises to .5 at index 50 only.
//   monotone pr at index 0..50 = 1/51; r = 0 -> index 0 -> 1/51; r = 1..50 -> index 50 -> 1/51;
//   r = 51..100 -> 0.  AP = 51 * (1/51) / 101 = 1/101 at every threshold.
//   AR1, AR10: the top 1 / 10 are FPs -> 0.  AR100 = 1/2 (b is lost with rank 102).
//   Everything is area 100: small as all; medium and large -1.
TEST(CocoEval, MoreThanMaxDetsPerImageAreTruncated) {
  const DetectionData data = load_case("many_dets");
  ASSERT_EQ(data.detections.size(), 105u);
  const CocoEvalResult r = coco_evaluate(data);
  const double ap = 1.0 / 101;
  expect_stats(r, {ap, ap, ap, ap, -1, -1, 0, 0, 0.5, 0.5, -1, -1});
}

// empty: no ground truth at all: every setting is -1, so is every summary number.
TEST(CocoEval, NothingDefinedGivesMinusOne) {
  const CocoEvalResult r = coco_evaluate(load_case("empty"));
  expect_stats(r, {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1});
  EXPECT_EQ(r.ap_per_class, (std::vector<double>{-1, -1}));
  DetectionData none;
  none.categories = {{1, "a"}};
  expect_stats(coco_evaluate(none), {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1});
}

// One image, GT0 [0,0,10,10] regular, GT1 crowd [0,0,100,100]; one detection [0,0,10,8] (0.9):
// IoU with GT0 = 80/100 = .8, with the crowd = 80/80 = 1. The regular GT is scanned first (ignore-last) and
// taken at t <= .8 (7 thresholds: .5 ... .8); the crowd's better IoU does not steal it because the scan
// stops at the first ignored GT once a regular match is held. At t = .85, .9, .95 GT0 fails and the crowd
// matches -> ignored.
//   per threshold t <= .8: npig 1, one TP -> AP 1;  t > .8: only an ignored detection -> tp 0 -> AP 0.
//   AP = 7/10, AP50 = AP75 = 1; recall 1 for 7 thresholds, 0 for 3 -> AR = .7.
TEST(CocoEval, RegularMatchIsKeptOverABetterCrowdMatch) {
  DetectionData d;
  d.image_ids = {1};
  d.categories = {{1, "a"}};
  d.ground_truth = {{1, 1, 0, 0, 10, 10, 100, false}, {1, 1, 0, 0, 100, 100, 10000, true}};
  d.detections = {{1, 1, 0, 0, 10, 8, 0.9}};
  const CocoEvalResult r = coco_evaluate(d);
  EXPECT_NEAR(r.stats[kAP], 0.7, kTol);
  EXPECT_NEAR(r.stats[kAP50], 1, kTol);
  EXPECT_NEAR(r.stats[kAP75], 1, kTol);
  EXPECT_NEAR(r.stats[kAR100], 0.7, kTol);
}

// Two GTs with the same box and one detection on them: equal IoUs, pycocotools keeps the later GT (only a
// strictly lower IoU is skipped). A second detection then takes the first GT. Both are TPs: AP 1. With the
// first GT marked ignore (GtBox::ignore, one-to-one unlike a crowd), it sorts last: the first detection takes
// the regular GT, the second the ignored one (ignored): npig 1, AP 1, and nothing counts as a FP.
TEST(CocoEval, EqualIoUsAndTheIgnoreFlag) {
  DetectionData d;
  d.image_ids = {1};
  d.categories = {{1, "a"}};
  d.ground_truth = {{1, 1, 0, 0, 10, 10, 100}, {1, 1, 0, 0, 10, 10, 100}};
  d.detections = {{1, 1, 0, 0, 10, 10, 0.9}, {1, 1, 0, 0, 10, 10, 0.8}};
  EXPECT_NEAR(coco_evaluate(d).stats[kAP], 1, kTol);
  d.ground_truth[0].ignore = true;
  const CocoEvalResult r = coco_evaluate(d);
  EXPECT_NEAR(r.stats[kAP], 1, kTol);
  EXPECT_NEAR(r.stats[kAR100], 1, kTol);
  // Only the ignored GT left: nothing defined.
  d.ground_truth.pop_back();
  EXPECT_EQ(coco_evaluate(d).stats[kAP], -1);
}

DetectionData random_data(uint64_t seed, int images, int dets_per_image) {
  std::mt19937_64 rng(seed);
  auto u = [&](double lo, double hi) {
    return lo + (hi - lo) * static_cast<double>(rng() >> 11) * 0x1.0p-53;
  };
  DetectionData d;
  d.categories = {{1, "a"}, {2, "b"}, {5, "c"}};
  for (int i = 0; i < images; ++i) {
    d.image_ids.push_back(i * 3);
    for (int g = 0; g < 4; ++g) {
      const double w = u(4, 120), h = u(4, 120);
      d.ground_truth.push_back({i * 3, d.categories[g % 3].id, u(0, 200), u(0, 200), w, h, w * h, g == 3});
    }
    for (int k = 0; k < dets_per_image; ++k) {
      const GtBox& g = d.ground_truth[d.ground_truth.size() - 1 - k % 4];
      d.detections.push_back({i * 3, d.categories[k % 3].id, g.x + u(-5, 5), g.y + u(-5, 5),
                              g.w + u(-5, 5) + 5, g.h + u(-5, 5) + 5,
                              std::round(u(0, 1) * 20) / 20});  // many tied scores
    }
  }
  return d;
}

TEST(CocoEval, SameResultForAnyThreadCount) {
  const DetectionData d = random_data(7, 300, 120);
  CocoEvalOptions one, many;
  one.threads = 1;
  many.threads = 3;
  const CocoEvalResult a = coco_evaluate(d, one), b = coco_evaluate(d, many);
  EXPECT_EQ(a.precision, b.precision);
  EXPECT_EQ(a.recall, b.recall);
  EXPECT_EQ(a.scores, b.scores);
  EXPECT_EQ(a.stats, b.stats);
  EXPECT_GT(a.stats[kAP], 0);
}

TEST(CocoEval, ValidatesItsInput) {
  DetectionData d;
  d.image_ids = {1, 2};
  d.categories = {{1, "a"}};
  d.detections = {{3, 1, 0, 0, 1, 1, 0.5}};
  try {
    coco_evaluate(d);
    FAIL() << "expected InvalidArgument";
  } catch (const vigil::InvalidArgument& e) {
    EXPECT_STREQ(e.what(), "detections[0]: expected an image id from image_ids, got 3");
  }
  d.detections = {{1, 1, 0, 0, -1, 1, 0.5}};
  EXPECT_THROW(coco_evaluate(d), vigil::InvalidArgument);
  d.detections = {{1, 1, 0, 0, 1, 1, std::nan("")}};
  EXPECT_THROW(coco_evaluate(d), vigil::InvalidArgument);
  d.detections.clear();
  d.ground_truth = {{1, 9, 0, 0, 1, 1, 1}};
  EXPECT_THROW(coco_evaluate(d), vigil::InvalidArgument);
  d.ground_truth.clear();
  d.image_ids = {1, 1};
  EXPECT_THROW(coco_evaluate(d), vigil::InvalidArgument);
  d.image_ids = {1};
  CocoEvalOptions bad;
  bad.max_dets = {10, 10, 100};
  EXPECT_THROW(coco_evaluate(d, bad), vigil::InvalidArgument);
}

TEST(CocoEval, GroundTruthFromADataset) {
  vigil::data::Dataset ds;
  ds.classes = {"gun", "knife"};
  vigil::data::Sample s0, s1, s2;
  s0.boxes = {{10, 20, 40, 60, 1}};
  s1.boxes = {{0, 0, 32, 32, 0}, {5, 5, 15, 15, 0, false, false, true}};
  ds.samples = {s0, s1, s2};
  const DetectionData d = detection_data_from_dataset(ds, {1, 2});
  EXPECT_EQ(d.image_ids, (std::vector<int64_t>{1, 2}));
  ASSERT_EQ(d.categories.size(), 2u);
  EXPECT_EQ(d.categories[0].id, 1);  // class id + 1, as torchvision labels and `vigil predict --format coco`
  EXPECT_EQ(d.categories[1].name, "knife");
  ASSERT_EQ(d.ground_truth.size(), 2u);
  EXPECT_EQ(d.ground_truth[0].category_id, 1);
  EXPECT_EQ(d.ground_truth[0].area, 1024);
  EXPECT_TRUE(d.ground_truth[1].iscrowd);
  EXPECT_EQ(d.ground_truth[1].w, 10);
  const DetectionData all = detection_data_from_dataset(ds);
  EXPECT_EQ(all.image_ids.size(), 3u);
  EXPECT_EQ(all.ground_truth[0].x, 10);
  EXPECT_EQ(all.ground_truth[0].h, 40);
  EXPECT_EQ(all.ground_truth[0].category_id, 2);
  EXPECT_THROW(detection_data_from_dataset(ds, {3}), vigil::InvalidArgument);
}

// pycocotools' own numbers for every case, when gen_coco_expected.py could produce them.
TEST(CocoEval, MatchesPycocotoolsExpectedFile) {
  const fs::path expected_path = kDir / "coco_cases_expected.json";
  if (!fs::exists(expected_path)) {
    GTEST_SKIP() << expected_path.string()
                 << " is absent (pycocotools was not importable where gen_coco_expected.py last ran); the "
                    "hand-derived values above still apply";
  }
  const json expected = json::parse(vigil::read_file(expected_path));
  for (const auto& c : cases()) {
    const std::string name = c.at("name");
    SCOPED_TRACE(name);
    ASSERT_TRUE(expected.contains(name));
    const CocoEvalResult r = coco_evaluate(load_case(name));
    const auto stats = expected[name].at("stats").get<std::vector<double>>();
    ASSERT_EQ(stats.size(), r.stats.size());
    for (size_t i = 0; i < stats.size(); ++i) EXPECT_NEAR(r.stats[i], stats[i], 1e-6) << coco_stat_names()[i];
    const auto per_class = expected[name].at("ap_per_class").get<std::vector<double>>();
    ASSERT_EQ(per_class.size(), r.ap_per_class.size());
    for (size_t k = 0; k < per_class.size(); ++k) EXPECT_NEAR(r.ap_per_class[k], per_class[k], 1e-6);
  }
}

}  // namespace
