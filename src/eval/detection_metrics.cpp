// The Ultralytics view (ultralytics/utils/metrics.py: ap_per_class, compute_ap, smooth, ConfusionMatrix;
// engine/validator.py: match_predictions), rebuilt on flat per-image index arrays. numpy's interp and the
// evaluation order of each formula are kept so the curves agree with Ultralytics to rounding.

#include "vigil/eval/detection_metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "vigil/core/error.h"
#include "vigil/core/thread_pool.h"

namespace vigil::eval {

namespace {

/// Ultralytics' eps in ap_per_class (recall denominator, F1) and box_iou's eps.
constexpr double kApEps = 1e-16;
constexpr double kIouEps = 1e-7;

/// Boxes grouped by image: ground truth (crowd and ignored left out) in input order, detections by descending
/// score (input order among ties), which is the order Ultralytics' NMS output has.
struct ImageIndex {
  std::vector<Category> categories;         ///< by id
  std::vector<uint32_t> gt_cat, det_cat;    ///< category position of every box, by input index
  std::vector<uint32_t> gts, dets;          ///< box indices grouped by image position
  std::vector<size_t> gt_start, det_start;  ///< images + 1 offsets into gts / dets
};

template <class Box>
uint32_t category_position(const std::vector<Category>& cats, const Box& b) {
  return static_cast<uint32_t>(std::lower_bound(cats.begin(), cats.end(), b.category_id,
                                                [](const Category& c, int64_t id) { return c.id < id; }) -
                               cats.begin());
}

/// Counting sort of `keep`-ed boxes by image position (stable), returning the offsets.
template <class Box, class Keep>
std::vector<size_t> group_by_image(const std::vector<Box>& boxes, const std::vector<int64_t>& images,
                                   Keep keep, std::vector<uint32_t>& out) {
  std::vector<size_t> pos(boxes.size()), start(images.size() + 1, 0);
  for (size_t i = 0; i < boxes.size(); ++i) {
    pos[i] = std::lower_bound(images.begin(), images.end(), boxes[i].image_id) - images.begin();
    if (keep(boxes[i])) ++start[pos[i] + 1];
  }
  std::partial_sum(start.begin(), start.end(), start.begin());
  out.assign(start.back(), 0);
  std::vector<size_t> fill(start.begin(), start.end() - 1);
  for (size_t i = 0; i < boxes.size(); ++i) {
    if (keep(boxes[i])) out[fill[pos[i]]++] = static_cast<uint32_t>(i);
  }
  return start;
}

ImageIndex build_index(const DetectionData& data) {
  data.validate();
  ImageIndex ix;
  ix.categories = data.categories;
  std::sort(ix.categories.begin(), ix.categories.end(),
            [](const Category& a, const Category& b) { return a.id < b.id; });
  std::vector<int64_t> images = data.image_ids;
  std::sort(images.begin(), images.end());
  for (const auto& g : data.ground_truth) ix.gt_cat.push_back(category_position(ix.categories, g));
  for (const auto& d : data.detections) ix.det_cat.push_back(category_position(ix.categories, d));
  ix.gt_start = group_by_image(
      data.ground_truth, images, [](const GtBox& g) { return !g.iscrowd && !g.ignore; }, ix.gts);
  ix.det_start = group_by_image(
      data.detections, images, [](const DetBox&) { return true; }, ix.dets);
  for (size_t i = 0; i + 1 < ix.det_start.size(); ++i) {
    std::stable_sort(
        ix.dets.begin() + ix.det_start[i], ix.dets.begin() + ix.det_start[i + 1],
        [&](uint32_t a, uint32_t b) { return data.detections[a].score > data.detections[b].score; });
  }
  return ix;
}

/// Ultralytics' box_iou on x1y1x2y2 boxes: (area1 + area2 - inter + eps) in the denominator.
double ultralytics_iou(const GtBox& g, const DetBox& d) {
  const double gx2 = g.x + g.w, gy2 = g.y + g.h, dx2 = d.x + d.w, dy2 = d.y + d.h;
  const double iw = std::max(std::min(gx2, dx2) - std::max(g.x, d.x), 0.0);
  const double ih = std::max(std::min(gy2, dy2) - std::max(g.y, d.y), 0.0);
  const double inter = iw * ih;
  return inter / ((gx2 - g.x) * (gy2 - g.y) + (dx2 - d.x) * (dy2 - d.y) - inter + kIouEps);
}

/// match_predictions for one image: the class-masked IoU matrix, then per threshold each detection keeps its
/// best label (ties: the later label) and each label its first (highest-scoring) detection.
void match_image(const DetectionData& data, const ImageIndex& ix, size_t image,
                 std::vector<uint16_t>& correct) {
  const size_t db = ix.det_start[image], D = ix.det_start[image + 1] - db;
  const size_t gb = ix.gt_start[image], G = ix.gt_start[image + 1] - gb;
  if (D == 0 || G == 0) return;
  std::vector<double> iou(G * D);
  for (size_t g = 0; g < G; ++g) {
    const uint32_t gi = ix.gts[gb + g];
    for (size_t d = 0; d < D; ++d) {
      const uint32_t di = ix.dets[db + d];
      iou[g * D + d] =
          ix.gt_cat[gi] == ix.det_cat[di] ? ultralytics_iou(data.ground_truth[gi], data.detections[di]) : 0.0;
    }
  }
  const auto& thresholds = coco_iou_thresholds();
  std::vector<int> best(D);
  std::vector<uint8_t> claimed(G);
  for (size_t t = 0; t < kUltralyticsIous; ++t) {
    for (size_t d = 0; d < D; ++d) {
      best[d] = -1;
      double best_iou = 0;
      for (size_t g = 0; g < G; ++g) {
        const double v = iou[g * D + d];
        if (v >= thresholds[t] && (best[d] < 0 || v >= best_iou)) {
          best[d] = static_cast<int>(g);
          best_iou = v;
        }
      }
    }
    std::fill(claimed.begin(), claimed.end(), 0);
    for (size_t d = 0; d < D; ++d) {
      if (best[d] < 0 || claimed[best[d]]) continue;
      claimed[best[d]] = 1;
      correct[db + d] |= static_cast<uint16_t>(1u << t);
    }
  }
}

/// compute_ap: sentinels, the precision envelope, 101-point interpolation and the trapezoid rule. When `pr`
/// is given it receives the envelope sampled at `px` read as recall (Ultralytics' PR-curve values).
double compute_ap(const std::vector<double>& recall, const std::vector<double>& precision,
                  const std::vector<double>* px, std::vector<double>* pr) {
  std::vector<double> mrec(recall.size() + 2), mpre(precision.size() + 2);
  mrec.front() = 0.0;
  mrec.back() = 1.0;
  mpre.front() = 1.0;
  mpre.back() = 0.0;
  std::copy(recall.begin(), recall.end(), mrec.begin() + 1);
  std::copy(precision.begin(), precision.end(), mpre.begin() + 1);
  for (size_t i = mpre.size() - 1; i-- > 0;) mpre[i] = std::max(mpre[i], mpre[i + 1]);
  const auto& x = coco_recall_thresholds();  // np.linspace(0, 1, 101)
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = numpy_interp(x[i], mrec, mpre, mpre.front(), mpre.back());
  double ap = 0;
  for (size_t i = 0; i + 1 < x.size(); ++i) ap += (x[i + 1] - x[i]) * (y[i + 1] + y[i]) / 2.0;
  if (pr) {
    pr->resize(px->size());
    for (size_t i = 0; i < px->size(); ++i)
      (*pr)[i] = numpy_interp((*px)[i], mrec, mpre, mpre.front(), mpre.back());
  }
  return ap;
}

/// ap_per_class for one class: `conf` descending, `hits` the correct-bit masks in the same order.
void class_curves(UltralyticsClass& c, const std::vector<double>& conf, const std::vector<uint16_t>& hits,
                  const std::vector<double>& px) {
  const size_t n = conf.size();
  c.p_curve.assign(px.size(), 0.0);
  c.r_curve.assign(px.size(), 0.0);
  c.pr_curve.assign(px.size(), 0.0);
  if (n == 0 || c.labels == 0) return;
  std::array<std::vector<double>, kUltralyticsIous> recall, precision;
  for (size_t t = 0; t < kUltralyticsIous; ++t) {
    recall[t].resize(n);
    precision[t].resize(n);
    double tpc = 0, fpc = 0;
    for (size_t i = 0; i < n; ++i) {
      const bool hit = hits[i] & (1u << t);
      tpc += hit ? 1 : 0;
      fpc += hit ? 0 : 1;
      recall[t][i] = tpc / (static_cast<double>(c.labels) + kApEps);
      precision[t][i] = tpc / (tpc + fpc);
    }
  }
  // np.interp(-x, -conf, ...): negated so the sample points ascend.
  std::vector<double> neg_conf(n);
  for (size_t i = 0; i < n; ++i) neg_conf[i] = -conf[i];
  for (size_t j = 0; j < px.size(); ++j) {
    c.r_curve[j] = numpy_interp(-px[j], neg_conf, recall[0], 0.0, recall[0].back());
    c.p_curve[j] = numpy_interp(-px[j], neg_conf, precision[0], 1.0, precision[0].back());
  }
  for (size_t t = 0; t < kUltralyticsIous; ++t) {
    c.ap[t] = compute_ap(recall[t], precision[t], &px, t == 0 ? &c.pr_curve : nullptr);
  }
}

/// Ultralytics' smooth(): a box filter of nf = round(len * f * 2) // 2 + 1 points over the edge-padded curve.
std::vector<double> smooth(const std::vector<double>& y, double f) {
  const size_t nf = static_cast<size_t>(std::nearbyint(static_cast<double>(y.size()) * f * 2)) / 2 + 1;
  const size_t pad = nf / 2;
  std::vector<double> yp;
  yp.reserve(y.size() + 2 * pad);
  yp.insert(yp.end(), pad, y.front());
  yp.insert(yp.end(), y.begin(), y.end());
  yp.insert(yp.end(), pad, y.back());
  const double w = 1.0 / static_cast<double>(nf);
  std::vector<double> out(yp.size() - nf + 1);
  for (size_t k = 0; k < out.size(); ++k) {
    double s = 0;
    for (size_t m = 0; m < nf; ++m) s += yp[k + m] * w;
    out[k] = s;
  }
  return out;
}

/// One category's detections in descending score order (ties: image order, then rank within the image), with
/// their match_predictions bits.
struct ClassDets {
  std::vector<double> conf;
  std::vector<uint16_t> hits;
};

/// match_predictions on every image, then the per-category score orders.
std::vector<ClassDets> match_all(const DetectionData& data, const ImageIndex& ix, size_t threads) {
  std::vector<uint16_t> correct(ix.dets.size(), 0);
  const size_t n_images = ix.det_start.size() - 1;
  constexpr size_t kChunk = 64;
  parallel_for((n_images + kChunk - 1) / kChunk, threads, [&](size_t c) {
    for (size_t i = c * kChunk; i < std::min(n_images, (c + 1) * kChunk); ++i)
      match_image(data, ix, i, correct);
  });
  struct Item {
    double score;
    uint16_t hits;
  };
  std::vector<std::vector<Item>> items(ix.categories.size());
  for (size_t pos = 0; pos < ix.dets.size(); ++pos) {
    const uint32_t di = ix.dets[pos];
    items[ix.det_cat[di]].push_back({data.detections[di].score, correct[pos]});
  }
  std::vector<ClassDets> out(items.size());
  parallel_for(items.size(), threads, [&](size_t k) {
    std::stable_sort(items[k].begin(), items[k].end(),
                     [](const Item& a, const Item& b) { return a.score > b.score; });
    for (const Item& it : items[k]) {
      out[k].conf.push_back(it.score);
      out[k].hits.push_back(it.hits);
    }
  });
  return out;
}

void fill_best_point(UltralyticsMetrics& um) {
  const size_t nc = um.classes.size();
  if (nc == 0) return;  // Ultralytics: argmax of an all-NaN mean is 0; every mean below is 0
  std::vector<double> mean_f1(um.px.size(), 0.0);
  for (const auto& c : um.classes) {
    for (size_t j = 0; j < mean_f1.size(); ++j) mean_f1[j] += c.f1_curve[j];
  }
  for (double& v : mean_f1) v /= static_cast<double>(nc);
  const std::vector<double> smoothed = smooth(mean_f1, 0.1);
  um.best_index = std::max_element(smoothed.begin(), smoothed.end()) - smoothed.begin();
  um.best_conf = um.px[um.best_index];
  double sp = 0, sr = 0, s50 = 0, s75 = 0, sall = 0;
  for (auto& c : um.classes) {
    c.p = c.p_curve[um.best_index];
    c.r = c.r_curve[um.best_index];
    c.f1 = c.f1_curve[um.best_index];
    c.tp = std::nearbyint(c.r * static_cast<double>(c.labels));
    c.fp = std::nearbyint(c.tp / (c.p + kApEps) - c.tp);
    sp += c.p;
    sr += c.r;
    s50 += c.ap[0];
    s75 += c.ap[5];
    for (double a : c.ap) sall += a;
  }
  const double n = static_cast<double>(nc);
  um.mp = sp / n;
  um.mr = sr / n;
  um.map50 = s50 / n;
  um.map75 = s75 / n;
  um.map = sall / (n * kUltralyticsIous);
}

/// Darknet-style counts at the operating confidence: a prefix of each class's score order.
void fill_lines(UltralyticsMetrics& um, const ImageIndex& ix, const std::vector<ClassDets>& dets,
                const std::vector<size_t>& labels) {
  um.lines.clear();
  for (size_t k = 0; k < ix.categories.size(); ++k) {
    ClassLine line;
    line.category_id = ix.categories[k].id;
    line.name = ix.categories[k].name;
    for (size_t i = 0; i < dets[k].conf.size() && dets[k].conf[i] >= um.operating_conf; ++i) {
      if (dets[k].hits[i] & 1u) {
        ++line.tp;
      } else {
        ++line.fp;
      }
    }
    um.lines.push_back(line);
  }
  // Both are sorted by category id, and classes is the subset with ground truth.
  for (size_t k = 0, c = 0; k < um.lines.size() && c < um.classes.size(); ++k) {
    if (um.lines[k].category_id == um.classes[c].category_id) um.lines[k].ap50 = um.classes[c++].ap[0];
  }
  um.tp = um.fp = um.fn = 0;
  for (size_t k = 0; k < um.lines.size(); ++k) {
    ClassLine& line = um.lines[k];
    line.fn = labels[k] - line.tp;
    um.tp += line.tp;
    um.fp += line.fp;
    um.fn += line.fn;
  }
}

}  // namespace

double numpy_interp(double x, const std::vector<double>& xp, const std::vector<double>& fp, double left,
                    double right) {
  const size_t n = xp.size();
  VIGIL_CHECK(n > 0 && fp.size() == n, "expected interp points with as many values, got {} and {}", n,
              fp.size());
  if (n == 1) return x < xp[0] ? left : (x > xp[0] ? right : fp[0]);
  if (x > xp[n - 1]) return right;
  if (x < xp[0]) return left;
  // numpy's binary search lands on the last point <= x.
  const size_t j = static_cast<size_t>(std::upper_bound(xp.begin(), xp.end(), x) - xp.begin()) - 1;
  if (j == n - 1 || xp[j] == x) return fp[j];
  const double slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
  double v = slope * (x - xp[j]) + fp[j];
  if (std::isnan(v)) {
    v = slope * (x - xp[j + 1]) + fp[j + 1];
    if (std::isnan(v) && fp[j] == fp[j + 1]) v = fp[j];
  }
  return v;
}

void UltralyticsOptions::validate() const {
  VIGIL_CHECK(std::isfinite(operating_conf), "expected a finite operating_conf (< 0: best F1), got {}",
              operating_conf);
}

void ConfusionMatrixOptions::validate() const {
  VIGIL_CHECK(conf >= 0 && conf <= 1, "expected conf in [0, 1], got {}", conf);
  VIGIL_CHECK(iou >= 0 && iou <= 1, "expected iou in [0, 1], got {}", iou);
}

double UltralyticsClass::ap50_95() const {
  double s = 0;
  for (double a : ap) s += a;
  return s / static_cast<double>(ap.size());
}

UltralyticsMetrics ultralytics_metrics(const DetectionData& data, const UltralyticsOptions& options) {
  options.validate();
  const ImageIndex ix = build_index(data);
  const std::vector<ClassDets> dets = match_all(data, ix, options.threads);
  const size_t K = ix.categories.size();
  std::vector<size_t> labels(K, 0);
  for (uint32_t gi : ix.gts) ++labels[ix.gt_cat[gi]];
  UltralyticsMetrics um;
  um.px = numpy_linspace(0, 1, kCurvePoints);
  for (size_t k = 0; k < K; ++k) {
    if (labels[k] == 0) continue;  // Ultralytics only reports classes present in the targets
    UltralyticsClass c;
    c.category_id = ix.categories[k].id;
    c.name = ix.categories[k].name;
    c.labels = labels[k];
    c.predictions = dets[k].conf.size();
    class_curves(c, dets[k].conf, dets[k].hits, um.px);
    c.f1_curve.resize(um.px.size());
    for (size_t j = 0; j < um.px.size(); ++j) {
      c.f1_curve[j] = 2 * c.p_curve[j] * c.r_curve[j] / (c.p_curve[j] + c.r_curve[j] + kApEps);
    }
    um.classes.push_back(std::move(c));
  }
  fill_best_point(um);
  um.operating_conf = options.operating_conf >= 0 ? options.operating_conf : um.best_conf;
  fill_lines(um, ix, dets, labels);
  return um;
}

std::vector<std::string> format_class_lines(const UltralyticsMetrics& um) {
  std::vector<std::string> out;
  for (const ClassLine& l : um.lines) {
    const std::string ap =
        l.ap50 < 0 ? std::string("n/a (no ground truth)") : fmt::format("{:.2f}%", l.ap50 * 100);
    out.push_back(fmt::format("class_id = {}, name = {}, ap = {}   (TP = {}, FP = {}, FN = {})",
                              l.category_id, l.name, ap, l.tp, l.fp, l.fn));
  }
  const double tp = static_cast<double>(um.tp), fp = static_cast<double>(um.fp),
               fn = static_cast<double>(um.fn);
  const double precision = tp + fp > 0 ? tp / (tp + fp) : 0;
  const double recall = tp + fn > 0 ? tp / (tp + fn) : 0;
  const double f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0;
  out.push_back(
      fmt::format(" for conf_thresh = {:.3f}, precision = {:.2f}, recall = {:.2f}, F1-score = {:.2f}",
                  um.operating_conf, precision, recall, f1));
  out.push_back(fmt::format(" for conf_thresh = {:.3f}, TP = {}, FP = {}, FN = {}", um.operating_conf, um.tp,
                            um.fp, um.fn));
  out.push_back(fmt::format(" mean average precision (mAP@0.50) = {:.6f}", um.map50));
  return out;
}

std::vector<double> ConfusionMatrix::normalized() const {
  const size_t n = size();
  std::vector<double> out(counts.size());
  for (size_t i = 0; i < n; ++i) {
    double sum = 0;
    for (size_t j = 0; j < n; ++j) sum += static_cast<double>(at(i, j));
    for (size_t j = 0; j < n; ++j) out[i * n + j] = static_cast<double>(at(i, j)) / (sum + 1e-9);
  }
  return out;
}

namespace {

/// process_batch for one image: pairs with IoU > thr; each detection keeps its best ground truth (ties: the
/// later one), then each ground truth its best detection (ties: the later one).
void confusion_image(const DetectionData& data, const ImageIndex& ix, size_t image,
                     const ConfusionMatrixOptions& opt, ConfusionMatrix& cm) {
  const size_t K = ix.categories.size(), n = K + 1;
  std::vector<uint32_t> dets;
  for (size_t p = ix.det_start[image]; p < ix.det_start[image + 1]; ++p) {
    if (data.detections[ix.dets[p]].score > opt.conf) dets.push_back(ix.dets[p]);
  }
  const size_t gb = ix.gt_start[image], G = ix.gt_start[image + 1] - gb, D = dets.size();
  std::vector<int> det_gt(D, -1);
  std::vector<double> det_iou(D, 0);
  for (size_t d = 0; d < D; ++d) {
    for (size_t g = 0; g < G; ++g) {
      const double v = ultralytics_iou(data.ground_truth[ix.gts[gb + g]], data.detections[dets[d]]);
      if (v > opt.iou && (det_gt[d] < 0 || v >= det_iou[d])) {
        det_gt[d] = static_cast<int>(g);
        det_iou[d] = v;
      }
    }
  }
  std::vector<int> gt_det(G, -1);
  for (size_t d = 0; d < D; ++d) {
    if (det_gt[d] < 0) continue;
    int& best = gt_det[det_gt[d]];
    if (best < 0 || det_iou[d] >= det_iou[best]) best = static_cast<int>(d);
  }
  std::vector<uint8_t> det_used(D, 0);
  for (size_t g = 0; g < G; ++g) {
    const size_t gc = ix.gt_cat[ix.gts[gb + g]];
    if (gt_det[g] >= 0) {
      det_used[gt_det[g]] = 1;
      ++cm.counts[gc * n + ix.det_cat[dets[gt_det[g]]]];
    } else {
      ++cm.counts[gc * n + K];
    }
  }
  for (size_t d = 0; d < D; ++d) {
    if (!det_used[d]) ++cm.counts[K * n + ix.det_cat[dets[d]]];
  }
}

}  // namespace

ConfusionMatrix confusion_matrix(const DetectionData& data, const ConfusionMatrixOptions& options) {
  options.validate();
  const ImageIndex ix = build_index(data);
  ConfusionMatrix cm;
  for (const auto& c : ix.categories) {
    cm.category_ids.push_back(c.id);
    cm.names.push_back(c.name);
  }
  cm.names.push_back("background");
  cm.counts.assign(cm.size() * cm.size(), 0);
  for (size_t i = 0; i + 1 < ix.det_start.size(); ++i) confusion_image(data, ix, i, options, cm);
  return cm;
}

}  // namespace vigil::eval
