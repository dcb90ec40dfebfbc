// COCO box evaluation, following pycocotools' cocoeval.py (evaluate, evaluateImg, accumulate, summarize) and
// maskApi.c (bbIou) operation for operation, so the numbers agree to the last bits that matter. The
// structure differs for speed: boxes are grouped by (category, image) with one stable sort, each group's IoUs
// are computed once for all area ranges, and the per-detection outcome at the ten thresholds is kept as two
// bit masks per area range. Groups are matched in parallel, then each category is accumulated in parallel;
// every output slot has one writer, so the result does not depend on the thread count.

#include "vigil/eval/coco_eval.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "vigil/core/error.h"
#include "vigil/core/thread_pool.h"

namespace vigil::eval {

namespace {

constexpr size_t kAreaCount = CocoEvalResult::kAreas;
constexpr size_t kMaxDetCount = 3;
/// numpy's np.spacing(1), the epsilon pycocotools adds to the precision denominator.
constexpr double kSpacing1 = std::numeric_limits<double>::epsilon();

/// Same count formula as pycocotools' Params: int(np.round((stop - start) / step)) + 1.
size_t numpy_count(double start, double stop, double step) {
  return static_cast<size_t>(std::nearbyint((stop - start) / step)) + 1;
}

bool finite(double v) {
  return std::isfinite(v);
}

void check_box(const char* what, size_t i, double x, double y, double w, double h) {
  VIGIL_CHECK(finite(x) && finite(y) && finite(w) && finite(h),
              "{}[{}]: expected a finite bbox, got [{}, {}, {}, {}]", what, i, x, y, w, h);
  VIGIL_CHECK(w >= 0 && h >= 0, "{}[{}]: expected bbox width and height >= 0, got w={}, h={}", what, i, w, h);
}

}  // namespace

std::vector<double> numpy_linspace(double start, double stop, size_t num) {
  VIGIL_CHECK(num >= 2, "expected at least 2 linspace points, got {}", num);
  std::vector<double> y(num);
  const double step = (stop - start) / static_cast<double>(num - 1);
  for (size_t i = 0; i < num; ++i) y[i] = static_cast<double>(i) * step + start;
  y[num - 1] = stop;
  return y;
}

double detection_fitness(const CocoEvalResult& coco) {
  return 0.1 * std::max(0.0, coco.stats[kAP50]) + 0.9 * std::max(0.0, coco.stats[kAP]);
}

const std::array<std::string_view, kCocoStatCount>& coco_stat_names() {
  static const std::array<std::string_view, kCocoStatCount> names = {
      "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"};
  return names;
}

const std::vector<double>& coco_iou_thresholds() {
  static const std::vector<double> thr = numpy_linspace(.5, 0.95, numpy_count(.5, 0.95, .05));
  return thr;
}

const std::vector<double>& coco_recall_thresholds() {
  static const std::vector<double> thr = numpy_linspace(.0, 1.00, numpy_count(.0, 1.00, .01));
  return thr;
}

const std::array<std::array<double, 2>, 4>& coco_area_ranges() {
  static const std::array<std::array<double, 2>, 4> ranges = {
      {{0.0, 1e5 * 1e5}, {0.0, 32.0 * 32.0}, {32.0 * 32.0, 96.0 * 96.0}, {96.0 * 96.0, 1e5 * 1e5}}};
  return ranges;
}

const std::array<std::string_view, 4>& coco_area_names() {
  static const std::array<std::string_view, 4> names = {"all", "small", "medium", "large"};
  return names;
}

void DetectionData::validate() const {
  std::vector<int64_t> images = image_ids;
  std::sort(images.begin(), images.end());
  auto dup = std::adjacent_find(images.begin(), images.end());
  VIGIL_CHECK(dup == images.end(), "expected unique image ids, got image id {} twice",
              dup == images.end() ? 0 : *dup);
  std::vector<int64_t> cats;
  for (const auto& c : categories) cats.push_back(c.id);
  std::sort(cats.begin(), cats.end());
  auto dup_cat = std::adjacent_find(cats.begin(), cats.end());
  VIGIL_CHECK(dup_cat == cats.end(), "expected unique category ids, got category id {} twice",
              dup_cat == cats.end() ? 0 : *dup_cat);
  auto known = [](const std::vector<int64_t>& sorted, int64_t id) {
    return std::binary_search(sorted.begin(), sorted.end(), id);
  };
  for (size_t i = 0; i < ground_truth.size(); ++i) {
    const GtBox& g = ground_truth[i];
    VIGIL_CHECK(known(images, g.image_id), "ground_truth[{}]: expected an image id from image_ids, got {}", i,
                g.image_id);
    VIGIL_CHECK(known(cats, g.category_id),
                "ground_truth[{}]: expected a category id from categories, got {}", i, g.category_id);
    check_box("ground_truth", i, g.x, g.y, g.w, g.h);
    VIGIL_CHECK(finite(g.area) && g.area >= 0, "ground_truth[{}]: expected a finite area >= 0, got {}", i,
                g.area);
  }
  for (size_t i = 0; i < detections.size(); ++i) {
    const DetBox& d = detections[i];
    VIGIL_CHECK(known(images, d.image_id), "detections[{}]: expected an image id from image_ids, got {}", i,
                d.image_id);
    VIGIL_CHECK(known(cats, d.category_id), "detections[{}]: expected a category id from categories, got {}",
                i, d.category_id);
    check_box("detections", i, d.x, d.y, d.w, d.h);
    VIGIL_CHECK(finite(d.score), "detections[{}]: expected a finite score, got {}", i, d.score);
  }
}

DetectionData detection_data_from_dataset(const data::Dataset& ds, const std::vector<int>& samples) {
  VIGIL_CHECK(ds.task == data::Task::kDetection, "expected a detection dataset, got a {} dataset",
              data::task_name(ds.task));
  DetectionData out;
  for (size_t c = 0; c < ds.classes.size(); ++c) {
    out.categories.push_back({static_cast<int64_t>(c) + 1, ds.classes[c]});
  }
  std::vector<int> which = samples;
  if (which.empty()) {
    which.resize(ds.samples.size());
    std::iota(which.begin(), which.end(), 0);
  }
  const int n_classes = static_cast<int>(ds.classes.size());
  for (int s : which) {
    VIGIL_CHECK(s >= 0 && static_cast<size_t>(s) < ds.samples.size(),
                "expected sample indices in [0, {}), got {}", ds.samples.size(), s);
    out.image_ids.push_back(s);
    const data::Sample& sample = ds.samples[s];
    for (const data::Box& b : sample.boxes) {
      VIGIL_CHECK(b.class_id >= 0 && b.class_id < n_classes, "{}: expected a class id in [0, {}), got {}",
                  sample.file, n_classes, b.class_id);
      GtBox g;
      g.image_id = s;
      g.category_id = b.class_id + 1;
      g.x = b.x1;
      g.y = b.y1;
      g.w = static_cast<double>(b.x2) - static_cast<double>(b.x1);
      g.h = static_cast<double>(b.y2) - static_cast<double>(b.y1);
      g.area = g.w * g.h;
      g.iscrowd = b.crowd;
      out.ground_truth.push_back(g);
    }
  }
  return out;
}

void CocoEvalOptions::validate() const {
  VIGIL_CHECK(max_dets[0] > 0 && max_dets[0] < max_dets[1] && max_dets[1] < max_dets[2],
              "expected max_dets positive and strictly ascending, got [{}, {}, {}]", max_dets[0], max_dets[1],
              max_dets[2]);
}

double coco_box_iou(const DetBox& dt, const GtBox& gt) {
  const double w = std::fmin(dt.w + dt.x, gt.w + gt.x) - std::fmax(dt.x, gt.x);
  if (w <= 0) return 0;
  const double h = std::fmin(dt.h + dt.y, gt.h + gt.y) - std::fmax(dt.y, gt.y);
  if (h <= 0) return 0;
  const double inter = w * h;
  const double dt_area = dt.w * dt.h;
  const double uni = gt.iscrowd ? dt_area : dt_area + gt.w * gt.h - inter;
  return inter / uni;
}

namespace {

/// The outcome of one detection (among its image's top maxDet) at every IoU threshold, per area range.
struct DetRecord {
  double score = 0;
  uint32_t rank = 0;                           ///< position among its image's detections by score
  std::array<uint16_t, kAreaCount> matched{};  ///< bit t: matched a ground truth at threshold t
  std::array<uint16_t, kAreaCount> ignored{};  ///< bit t: neither a hit nor a miss at threshold t
};

/// One (category, image) pair with ground truth or detections: ranges into the sorted index arrays.
struct Group {
  uint64_t key = 0;  ///< category position * images + image position
  size_t gt_begin = 0, gt_end = 0, dt_begin = 0, dt_end = 0;
  size_t out_begin = 0;  ///< first DetRecord of this group
};

struct Prepared {
  std::vector<int64_t> images;               ///< sorted
  std::vector<Category> categories;          ///< sorted by id
  std::vector<uint32_t> gt_order, dt_order;  ///< stable-sorted by group key
  std::vector<Group> groups;                 ///< by key
  std::vector<size_t> category_groups;       ///< K + 1 offsets into groups
  size_t n_records = 0;
};

template <class Box>
std::vector<uint32_t> order_by_group(const std::vector<Box>& boxes, const Prepared& p,
                                     std::vector<uint64_t>& keys) {
  const uint64_t n_images = p.images.size();
  keys.resize(boxes.size());
  for (size_t i = 0; i < boxes.size(); ++i) {
    const uint64_t img =
        std::lower_bound(p.images.begin(), p.images.end(), boxes[i].image_id) - p.images.begin();
    const uint64_t cat = std::lower_bound(p.categories.begin(), p.categories.end(), boxes[i].category_id,
                                          [](const Category& c, int64_t id) { return c.id < id; }) -
                         p.categories.begin();
    keys[i] = cat * n_images + img;
  }
  std::vector<uint32_t> order(boxes.size());
  std::iota(order.begin(), order.end(), 0u);
  // Stable: within a group boxes keep their input order, as pycocotools' per-(image, category) lists do.
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return keys[a] < keys[b]; });
  return order;
}

Prepared prepare(const DetectionData& data, int max_det) {
  Prepared p;
  p.images = data.image_ids;
  std::sort(p.images.begin(), p.images.end());
  p.categories = data.categories;
  std::sort(p.categories.begin(), p.categories.end(),
            [](const Category& a, const Category& b) { return a.id < b.id; });
  std::vector<uint64_t> gt_keys, dt_keys;
  p.gt_order = order_by_group(data.ground_truth, p, gt_keys);
  p.dt_order = order_by_group(data.detections, p, dt_keys);
  size_t gi = 0, di = 0;
  const size_t n_gt = p.gt_order.size(), n_dt = p.dt_order.size();
  while (gi < n_gt || di < n_dt) {
    const uint64_t gk = gi < n_gt ? gt_keys[p.gt_order[gi]] : UINT64_MAX;
    const uint64_t dk = di < n_dt ? dt_keys[p.dt_order[di]] : UINT64_MAX;
    Group g;
    g.key = std::min(gk, dk);
    g.gt_begin = gi;
    while (gi < n_gt && gt_keys[p.gt_order[gi]] == g.key) ++gi;
    g.gt_end = gi;
    g.dt_begin = di;
    while (di < n_dt && dt_keys[p.dt_order[di]] == g.key) ++di;
    g.dt_end = di;
    g.out_begin = p.n_records;
    p.n_records += std::min<size_t>(g.dt_end - g.dt_begin, static_cast<size_t>(max_det));
    p.groups.push_back(g);
  }
  const size_t n_images = std::max<size_t>(p.images.size(), 1);
  p.category_groups.assign(p.categories.size() + 1, p.groups.size());
  for (size_t k = 0, j = 0; k < p.categories.size(); ++k) {
    while (j < p.groups.size() && p.groups[j].key / n_images < k) ++j;
    p.category_groups[k] = j;
  }
  return p;
}

struct Scratch {
  std::vector<const DetBox*> dets;
  std::vector<const GtBox*> gts;
  std::vector<double> iou;  ///< [D][G], ground truth in input order
  std::vector<uint32_t> order;
  std::vector<uint8_t> ig_orig, ig, crowd, taken;  ///< ig_orig in input order, the rest in matching order
  DetRecord* records = nullptr;                    ///< every group's output, indexed by Group::out_begin
  uint32_t* npig = nullptr;                        ///< [group][area]
};

/// evaluateImg for one area range, every threshold: greedy matching of the score-sorted detections against
/// ground truth sorted ignore-last, exactly as pycocotools orders its tests (skip taken non-crowd, stop at
/// the first ignored once a regular match is held, keep the last of equal IoUs).
uint32_t match_area(size_t a, Scratch& s, DetRecord* out) {
  const auto& range = coco_area_ranges()[a];
  const size_t D = s.dets.size(), G = s.gts.size();
  std::vector<uint8_t>& ig_orig = s.ig_orig;
  ig_orig.resize(G);
  for (size_t g = 0; g < G; ++g) {
    const GtBox& gt = *s.gts[g];
    ig_orig[g] = gt.iscrowd || gt.ignore || gt.area < range[0] || gt.area > range[1];
  }
  s.order.resize(G);
  std::iota(s.order.begin(), s.order.end(), 0u);
  std::stable_sort(s.order.begin(), s.order.end(),
                   [&](uint32_t x, uint32_t y) { return ig_orig[x] < ig_orig[y]; });
  s.ig.resize(G);
  s.crowd.resize(G);
  uint32_t npig = 0;
  for (size_t gi = 0; gi < G; ++gi) {
    s.ig[gi] = ig_orig[s.order[gi]];
    s.crowd[gi] = s.gts[s.order[gi]]->iscrowd;
    npig += !s.ig[gi];
  }
  const auto& thresholds = coco_iou_thresholds();
  for (size_t d = 0; d < D; ++d) out[d].matched[a] = out[d].ignored[a] = 0;
  for (size_t t = 0; G > 0 && t < thresholds.size(); ++t) {
    const uint16_t bit = static_cast<uint16_t>(1u << t);
    s.taken.assign(G, 0);
    for (size_t d = 0; d < D; ++d) {
      double best = std::min(thresholds[t], 1 - 1e-10);
      int m = -1;
      const double* row = s.iou.data() + d * G;
      for (size_t gi = 0; gi < G; ++gi) {
        if (s.taken[gi] && !s.crowd[gi]) continue;
        if (m > -1 && !s.ig[m] && s.ig[gi]) break;
        const double v = row[s.order[gi]];
        if (v < best) continue;
        best = v;
        m = static_cast<int>(gi);
      }
      if (m == -1) continue;
      out[d].matched[a] |= bit;
      if (s.ig[m]) out[d].ignored[a] |= bit;
      s.taken[m] = 1;
    }
  }
  // Unmatched detections outside the area range are not false positives of this range.
  const uint16_t all = static_cast<uint16_t>((1u << thresholds.size()) - 1);
  for (size_t d = 0; d < D; ++d) {
    const double area = s.dets[d]->w * s.dets[d]->h;
    if (area < range[0] || area > range[1])
      out[d].ignored[a] |= static_cast<uint16_t>(all & ~out[d].matched[a]);
  }
  return npig;
}

/// evaluateImg for group `gi` at every area range, into Scratch::records and Scratch::npig.
void evaluate_group(const DetectionData& data, const Prepared& p, size_t gi, int max_det, Scratch& s) {
  const Group& g = p.groups[gi];
  DetRecord* out = s.records + g.out_begin;
  uint32_t* npig = s.npig + gi * kAreaCount;
  s.dets.clear();
  for (size_t i = g.dt_begin; i < g.dt_end; ++i) s.dets.push_back(&data.detections[p.dt_order[i]]);
  // Highest score first; stable like numpy's mergesort, so ties keep the results' order.
  std::stable_sort(s.dets.begin(), s.dets.end(),
                   [](const DetBox* x, const DetBox* y) { return x->score > y->score; });
  if (s.dets.size() > static_cast<size_t>(max_det)) s.dets.resize(max_det);
  s.gts.clear();
  for (size_t i = g.gt_begin; i < g.gt_end; ++i) s.gts.push_back(&data.ground_truth[p.gt_order[i]]);
  const size_t D = s.dets.size(), G = s.gts.size();
  s.iou.resize(D * G);
  for (size_t d = 0; d < D; ++d) {
    for (size_t j = 0; j < G; ++j) s.iou[d * G + j] = coco_box_iou(*s.dets[d], *s.gts[j]);
  }
  for (size_t d = 0; d < D; ++d) {
    out[d].score = s.dets[d]->score;
    out[d].rank = static_cast<uint32_t>(d);
  }
  for (size_t a = 0; a < kAreaCount; ++a) npig[a] = match_area(a, s, out);
}

/// A category's detections in the one score order that serves every (area, maxDet) setting: a stable sort of
/// the image-ordered records, of which the rank < maxDet subsequence is exactly what pycocotools' per-setting
/// mergesort yields.
struct CategoryOrder {
  std::vector<uint32_t> order;  ///< record indices
  std::vector<double> score;
  std::vector<uint32_t> rank;
  std::array<size_t, kAreaCount> n_pos{};  ///< ground truth not ignored, per area range
};

CategoryOrder order_category(size_t k, const Prepared& p, const std::vector<DetRecord>& records,
                             const std::vector<uint32_t>& npig) {
  CategoryOrder c;
  const size_t g0 = p.category_groups[k], g1 = p.category_groups[k + 1];
  if (g0 == g1) return c;
  for (size_t g = g0; g < g1; ++g) {
    for (size_t a = 0; a < kAreaCount; ++a) c.n_pos[a] += npig[g * kAreaCount + a];
  }
  const size_t rb = p.groups[g0].out_begin;
  const size_t re = g1 < p.groups.size() ? p.groups[g1].out_begin : records.size();
  c.order.resize(re - rb);
  std::iota(c.order.begin(), c.order.end(), static_cast<uint32_t>(rb));
  std::stable_sort(c.order.begin(), c.order.end(),
                   [&](uint32_t x, uint32_t y) { return records[x].score > records[y].score; });
  for (uint32_t i : c.order) {
    c.score.push_back(records[i].score);
    c.rank.push_back(records[i].rank);
  }
  return c;
}

/// accumulate() for one (category, area range): every maxDet and IoU threshold.
struct AreaAccumulator {
  const CategoryOrder& c;
  CocoEvalResult& r;
  size_t k = 0, a = 0;
  std::vector<uint16_t> tp_bits, fp_bits;  ///< per position: counted as a hit / as a false alarm, bit t
  std::vector<uint32_t> sel;               ///< positions kept under the current maxDet
  std::array<std::vector<uint32_t>, 16>
      tp_at;                                ///< per threshold: position (in sel) of the j-th true positive
  std::array<std::vector<double>, 16> env;  ///< per threshold: precision at the j-th true positive, then the
                                            ///< suffix maximum

  void run(const std::vector<DetRecord>& records) {
    if (c.n_pos[a] == 0) return;  // no ground truth: the settings stay -1
    const size_t n = c.order.size();
    const uint16_t all = static_cast<uint16_t>((1u << r.T()) - 1);
    tp_bits.resize(n);
    fp_bits.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const DetRecord& d = records[c.order[i]];
      tp_bits[i] = static_cast<uint16_t>(d.matched[a] & ~d.ignored[a] & all);
      fp_bits[i] = static_cast<uint16_t>(~d.matched[a] & ~d.ignored[a] & all);
    }
    for (size_t m = 0; m < kMaxDetCount; ++m) {
      sel.clear();
      for (size_t i = 0; i < n; ++i) {
        if (c.rank[i] < static_cast<uint32_t>(r.max_dets[m])) sel.push_back(static_cast<uint32_t>(i));
      }
      count();
      for (size_t t = 0; t < r.T(); ++t) setting(t, m, static_cast<double>(c.n_pos[a]));
    }
  }

  /// pycocotools' cumulative TP/FP counts, all thresholds in one pass, kept only at the true positives:
  /// recall rises only there, and between two of them precision only falls. Ignored detections move neither
  /// count.
  void count() {
    for (size_t t = 0; t < r.T(); ++t) {
      tp_at[t].clear();
      env[t].clear();
    }
    std::array<uint32_t, 16> fp{};
    for (size_t i = 0; i < sel.size(); ++i) {
      const uint32_t s = sel[i];
      const unsigned fb = fp_bits[s];
      for (unsigned t = 0; t < 16; ++t) fp[t] += (fb >> t) & 1u;
      for (unsigned tb = tp_bits[s]; tb != 0; tb &= tb - 1) {
        const int t = __builtin_ctz(tb);
        tp_at[t].push_back(static_cast<uint32_t>(i));
        const double tp = static_cast<double>(tp_at[t].size());
        env[t].push_back(tp / (static_cast<double>(fp[t]) + tp + kSpacing1));
      }
    }
  }

  /// One (t, k, a, m) cell, equal to pycocotools' monotone envelope and searchsorted(side='left') on the full
  /// curve: the envelope at the first point reaching a recall threshold is the suffix maximum over the true
  /// positives from that point on.
  void setting(size_t t, size_t m, double n_pos) {
    const size_t nd = sel.size();
    std::vector<double>& e = env[t];
    const size_t n_tp = e.size();
    r.recall[r.recall_index(t, k, a, m)] = nd ? static_cast<double>(n_tp) / n_pos : 0;
    for (size_t j = n_tp; j-- > 1;) e[j - 1] = std::max(e[j - 1], e[j]);
    // v: the fewest true positives whose recall (v / n_pos, as numpy divides) reaches the threshold.
    size_t v = 0;
    for (size_t ri = 0; ri < r.R(); ++ri) {
      while (v <= n_tp && static_cast<double>(v) / n_pos < r.rec_thresholds[ri]) ++v;
      const size_t at = r.precision_index(t, ri, k, a, m);
      const bool reached = nd > 0 && v <= n_tp;  // else searchsorted ran off the end: pycocotools leaves 0
      const size_t pi = v == 0 || !reached ? 0 : tp_at[t][v - 1];
      r.precision[at] = !reached ? 0 : (v == 0 ? (n_tp ? e[0] : 0) : e[v - 1]);
      r.scores[at] = reached ? c.score[sel[pi]] : 0;
    }
  }
};

/// Index of `value` in `values` by exact equality (as summarize's np.where), or -1.
int exact_index(const std::vector<double>& values, double value) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i] == value) return static_cast<int>(i);
  }
  return -1;
}

/// summarize()'s _summarize: the mean of the defined (> -1) entries of a slice, -1 when there are none.
/// iou < 0 means every threshold; -1 also when the requested threshold or maxDet is not a parameter.
double summarize(const CocoEvalResult& r, bool ap, double iou, size_t area, int max_det) {
  const int m = exact_index({r.max_dets.begin(), r.max_dets.end()}, max_det);
  const int t_only = iou < 0 ? -1 : exact_index(r.iou_thresholds, iou);
  if (m < 0 || (iou >= 0 && t_only < 0)) return -1;
  double sum = 0;
  size_t n = 0;
  for (size_t t = 0; t < r.T(); ++t) {
    if (t_only >= 0 && t != static_cast<size_t>(t_only)) continue;
    for (size_t ri = 0; ri < (ap ? r.R() : 1); ++ri) {
      for (size_t k = 0; k < r.K(); ++k) {
        const double v =
            ap ? r.precision[r.precision_index(t, ri, k, area, m)] : r.recall[r.recall_index(t, k, area, m)];
        if (v > -1) {
          sum += v;
          ++n;
        }
      }
    }
  }
  return n ? sum / static_cast<double>(n) : -1;
}

/// Mean precision of category k over the thresholds in [t0, t1), area all, last maxDet; -1 when undefined.
double class_ap(const CocoEvalResult& r, size_t k, size_t t0, size_t t1) {
  double sum = 0;
  size_t n = 0;
  for (size_t t = t0; t < t1; ++t) {
    for (size_t ri = 0; ri < r.R(); ++ri) {
      const double v = r.precision[r.precision_index(t, ri, k, 0, kMaxDetCount - 1)];
      if (v > -1) {
        sum += v;
        ++n;
      }
    }
  }
  return n ? sum / static_cast<double>(n) : -1;
}

void summarize_all(CocoEvalResult& r) {
  const auto& md = r.max_dets;
  r.stats[kAP] = summarize(r, true, -1, 0, 100);  // pycocotools' default maxDets=100, not maxDets[2]
  r.stats[kAP50] = summarize(r, true, .5, 0, md[2]);
  r.stats[kAP75] = summarize(r, true, .75, 0, md[2]);
  r.stats[kAPSmall] = summarize(r, true, -1, 1, md[2]);
  r.stats[kAPMedium] = summarize(r, true, -1, 2, md[2]);
  r.stats[kAPLarge] = summarize(r, true, -1, 3, md[2]);
  r.stats[kAR1] = summarize(r, false, -1, 0, md[0]);
  r.stats[kAR10] = summarize(r, false, -1, 0, md[1]);
  r.stats[kAR100] = summarize(r, false, -1, 0, md[2]);
  r.stats[kARSmall] = summarize(r, false, -1, 1, md[2]);
  r.stats[kARMedium] = summarize(r, false, -1, 2, md[2]);
  r.stats[kARLarge] = summarize(r, false, -1, 3, md[2]);
  const int t50 = exact_index(r.iou_thresholds, .5);
  for (size_t k = 0; k < r.K(); ++k) {
    r.ap_per_class.push_back(class_ap(r, k, 0, r.T()));
    r.ap50_per_class.push_back(t50 < 0 ? -1 : class_ap(r, k, t50, t50 + 1));
  }
}

}  // namespace

CocoEvalResult coco_evaluate(const DetectionData& data, const CocoEvalOptions& options) {
  options.validate();
  data.validate();
  VIGIL_ASSERT(coco_iou_thresholds().size() <= 16, "IoU thresholds must fit the 16-bit masks");
  const int max_det = options.max_dets.back();
  const Prepared p = prepare(data, max_det);

  CocoEvalResult r;
  r.iou_thresholds = coco_iou_thresholds();
  r.rec_thresholds = coco_recall_thresholds();
  r.max_dets = options.max_dets;
  for (const Category& c : p.categories) {
    r.category_ids.push_back(c.id);
    r.category_names.push_back(c.name);
  }
  const size_t cells = r.T() * r.K() * kAreaCount * kMaxDetCount;
  r.precision.assign(cells * r.R(), -1.0);
  r.scores.assign(cells * r.R(), -1.0);
  r.recall.assign(cells, -1.0);

  // evaluate(): every (category, image) group, in chunks so that small groups share a task.
  std::vector<DetRecord> records(p.n_records);
  std::vector<uint32_t> npig(p.groups.size() * kAreaCount, 0);
  constexpr size_t kChunk = 256;
  const size_t n_chunks = (p.groups.size() + kChunk - 1) / kChunk;
  parallel_for(n_chunks, options.threads, [&](size_t c) {
    Scratch s;
    s.records = records.data();
    s.npig = npig.data();
    const size_t end = std::min(p.groups.size(), (c + 1) * kChunk);
    for (size_t g = c * kChunk; g < end; ++g) evaluate_group(data, p, g, max_det, s);
  });
  // accumulate(): one score order per category, then (category, area range) cells are independent.
  std::vector<CategoryOrder> orders(r.K());
  parallel_for(r.K(), options.threads, [&](size_t k) { orders[k] = order_category(k, p, records, npig); });
  parallel_for(r.K() * kAreaCount, options.threads, [&](size_t ka) {
    AreaAccumulator acc{orders[ka / kAreaCount], r, ka / kAreaCount, ka % kAreaCount, {}, {}, {}, {}, {}};
    acc.run(records);
  });
  summarize_all(r);
  return r;
}

}  // namespace vigil::eval
