#include "vigil/eval/detection_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <map>
#include <numeric>

#include "vigil/core/fs.h"

namespace vigil::eval {
namespace fs = std::filesystem;

namespace {

std::string fixed(double v, int digits = 4) {
  return v < 0 ? "n/a" : fmt::format("{:.{}f}", v, digits);
}

/// pycocotools' summarize() line for stat `i` (same wording, so logs compare side by side).
std::string coco_line(int i, double value) {
  static const std::array<const char*, kCocoStatCount> kIou = {
      "0.50:0.95", "0.50     ", "0.75     ", "0.50:0.95", "0.50:0.95", "0.50:0.95",
      "0.50:0.95", "0.50:0.95", "0.50:0.95", "0.50:0.95", "0.50:0.95", "0.50:0.95"};
  static const std::array<const char*, kCocoStatCount> kArea = {"   all", "   all", "   all", " small",
                                                                "medium", " large", "   all", "   all",
                                                                "   all", " small", "medium", " large"};
  static const std::array<int, kCocoStatCount> kDets = {100, 100, 100, 100, 100, 100,
                                                        1,   10,  100, 100, 100, 100};
  const bool ap = i < kAR1;
  return fmt::format(" {:<18} {} @[ IoU={} | area={} | maxDets={:>3} ] = {:0.3f}",
                     ap ? "Average Precision" : "Average Recall", ap ? "(AP)" : "(AR)", kIou[i], kArea[i],
                     kDets[i], value);
}

std::vector<std::vector<double>> curves(const UltralyticsMetrics& m,
                                        std::vector<double> UltralyticsClass::*member) {
  std::vector<std::vector<double>> out;
  for (const auto& c : m.classes) out.push_back(c.*member);
  return out;
}

std::vector<std::string> class_names(const UltralyticsMetrics& m) {
  std::vector<std::string> out;
  for (const auto& c : m.classes) out.push_back(c.name);
  return out;
}

std::vector<std::vector<double>> confusion_rows(const ConfusionMatrix& cm, bool normalized) {
  const auto norm = cm.normalized();
  std::vector<std::vector<double>> rows(cm.size(), std::vector<double>(cm.size()));
  for (size_t t = 0; t < cm.size(); ++t) {
    for (size_t p = 0; p < cm.size(); ++p) {
      rows[t][p] = normalized ? norm[t * cm.size() + p] : static_cast<double>(cm.at(t, p));
    }
  }
  return rows;
}

/// One row per category: the COCO AP50-95 and AP50 (the numbers pycocotools prints per class), the
/// Ultralytics instances, P and R at the best-F1 confidence, and darknet's TP, FP, FN at the operating one.
/// A category without ground truth shows n/a where a number would be undefined.
Table per_class_table(const DetectionEvaluation& evaluation) {
  const auto& coco = evaluation.coco;
  const auto& m = evaluation.ultralytics;
  Table table{fmt::format("Per class (AP50-95 and AP50: COCO; P, R: at confidence {:.3f}; TP, FP, FN: at "
                          "confidence {:.3f}, IoU 0.5)",
                          m.best_conf, m.operating_conf),
              {"class", "instances", "P", "R", "AP50", "AP50-95", "TP", "FP", "FN"},
              {}};
  for (size_t k = 0; k < coco.K(); ++k) {
    const int64_t id = coco.category_ids[k];
    const auto line =
        std::find_if(m.lines.begin(), m.lines.end(), [&](const ClassLine& l) { return l.category_id == id; });
    const auto cls = std::find_if(m.classes.begin(), m.classes.end(),
                                  [&](const UltralyticsClass& c) { return c.category_id == id; });
    const bool has_line = line != m.lines.end(), has_cls = cls != m.classes.end();
    table.rows.push_back({coco.category_names[k], has_cls ? std::to_string(cls->labels) : "0",
                          has_cls ? fixed(cls->p) : "n/a", has_cls ? fixed(cls->r) : "n/a",
                          fixed(coco.ap50_per_class[k]), fixed(coco.ap_per_class[k]),
                          has_line ? std::to_string(line->tp) : "", has_line ? std::to_string(line->fp) : "",
                          has_line ? std::to_string(line->fn) : ""});
  }
  return table;
}

/// The counts behind confusion_matrix.png, readable without the picture (and by a test).
Table confusion_table(const DetectionEvaluation& evaluation) {
  const auto& cm = evaluation.confusion;
  Table table{fmt::format("Confusion matrix (rows: true class, columns: predicted class; detections scoring "
                          "above {:.2f} paired with ground truth at IoU above {:.2f}; background row: "
                          "detections that matched nothing, background column: ground truth nothing found)",
                          evaluation.confusion_options.conf, evaluation.confusion_options.iou),
              {"true \\ predicted"},
              {}};
  for (const auto& name : cm.names) table.columns.push_back(name);
  for (size_t t = 0; t < cm.size(); ++t) {
    std::vector<std::string> row = {cm.names[t]};
    // The background/background cell has no meaning (nothing to count), as in Ultralytics' plot.
    for (size_t p = 0; p < cm.size(); ++p)
      row.push_back(t + 1 == cm.size() && p + 1 == cm.size() ? "" : std::to_string(cm.at(t, p)));
    table.rows.push_back(std::move(row));
  }
  return table;
}

}  // namespace

DetectionEvaluation evaluate_detections(const DetectionData& data, const ConfusionMatrixOptions& confusion) {
  DetectionEvaluation out;
  out.coco = coco_evaluate(data);
  out.ultralytics = ultralytics_metrics(data);
  out.confusion = confusion_matrix(data, confusion);
  out.confusion_options = confusion;
  return out;
}

std::vector<PlotFile> write_detection_plots(const DetectionEvaluation& evaluation, const fs::path& dir) {
  ensure_dir(dir);
  const auto& m = evaluation.ultralytics;
  const auto names = class_names(m);
  std::vector<PlotFile> out;
  auto curve = [&](const std::string& title, const std::string& file, const std::string& xlabel,
                   const std::string& ylabel, std::vector<double> UltralyticsClass::*member, bool annotate) {
    CurvePlotOptions o;
    o.plot.title = title;
    o.xlabel = xlabel;
    o.ylabel = ylabel;
    o.annotate_max = annotate;
    out.push_back({title, dir / file});
    plot_curves(m.px, curves(m, member), names, out.back().path, o);
  };
  curve(fmt::format("Precision-recall (mAP50 {:.3f})", m.map50), "PR_curve.png", "recall", "precision",
        &UltralyticsClass::pr_curve, false);
  curve("F1-confidence", "F1_curve.png", "confidence", "F1", &UltralyticsClass::f1_curve, true);
  curve("Precision-confidence", "P_curve.png", "confidence", "precision", &UltralyticsClass::p_curve, false);
  curve("Recall-confidence", "R_curve.png", "confidence", "recall", &UltralyticsClass::r_curve, false);
  const auto& cm = evaluation.confusion;
  out.push_back({"Confusion matrix", dir / "confusion_matrix.png"});
  plot_confusion(confusion_rows(cm, false), cm.names, false, out.back().path);
  out.push_back({"Confusion matrix (normalised)", dir / "confusion_matrix_normalized.png"});
  plot_confusion(confusion_rows(cm, false), cm.names, true, out.back().path);
  return out;
}

std::string detection_summary(const DetectionEvaluation& evaluation) {
  std::string out = "COCO bbox metrics (pycocotools semantics)\n";
  for (int i = 0; i < kCocoStatCount; ++i) out += coco_line(i, evaluation.coco.stats[i]) + "\n";
  const auto& m = evaluation.ultralytics;
  out += fmt::format("\n{:<22} {:>9} {:>9} {:>9} {:>9}\n", "Ultralytics view", "P", "R", "mAP50", "mAP50-95");
  out += fmt::format("{:<22} {:>9.4f} {:>9.4f} {:>9.4f} {:>9.4f}\n", "all", m.mp, m.mr, m.map50, m.map);
  for (const auto& c : m.classes) {
    out +=
        fmt::format("{:<22} {:>9.4f} {:>9.4f} {:>9.4f} {:>9.4f}\n", c.name, c.p, c.r, c.ap50(), c.ap50_95());
  }
  out += fmt::format("\nper class at confidence {:.3f} (IoU 0.5):\n", m.operating_conf);
  for (const auto& line : format_class_lines(m)) out += line + "\n";
  return out;
}

void add_detection_sections(HtmlReport& report, const DetectionEvaluation& evaluation,
                            const std::vector<PlotFile>& plots) {
  const auto& coco = evaluation.coco;
  const auto& m = evaluation.ultralytics;
  report.add_heading("Detection metrics");
  std::vector<std::pair<std::string, std::string>> rows;
  for (int i = 0; i < kCocoStatCount; ++i) {
    rows.emplace_back(std::string(coco_stat_names()[i]), fixed(coco.stats[i]));
  }
  rows.emplace_back("fitness (0.1 AP50 + 0.9 AP: best.ckpt, retraining)", fixed(detection_fitness(coco)));
  report.add_key_values("COCO (pycocotools semantics; n/a where undefined)", rows);
  report.add_key_values("Ultralytics view",
                        {{"metrics/precision(B)", fixed(m.mp)},
                         {"metrics/recall(B)", fixed(m.mr)},
                         {"metrics/mAP50(B)", fixed(m.map50)},
                         {"metrics/mAP50-95(B)", fixed(m.map)},
                         {"Ultralytics fitness (0.1 mAP50 + 0.9 mAP50-95)", fixed(m.fitness())},
                         {"confidence of best F1", fixed(m.best_conf, 3)}});
  report.add_table(per_class_table(evaluation));
  report.add_table(confusion_table(evaluation));
  report.add_heading("Plots");
  for (const auto& p : plots) report.add_image_file(p.title, p.path);
}

ImageMatch match_image(const std::vector<GtBox>& truth, const std::vector<DetBox>& detections,
                       const std::vector<Category>& categories, double min_score, double iou) {
  std::map<int64_t, std::string> name_of;
  for (const auto& c : categories) name_of[c.id] = c.name;
  ImageMatch out;
  std::vector<size_t> order;
  for (size_t i = 0; i < detections.size(); ++i) {
    if (detections[i].score >= min_score) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return detections[a].score > detections[b].score; });
  std::vector<bool> used(truth.size(), false);
  for (size_t i : order) {
    const DetBox& d = detections[i];
    // COCO's order: regular ground truth first; a crowd region only takes what no regular box matched.
    int match = -1;
    for (const bool crowd : {false, true}) {
      double best = iou;
      for (size_t g = 0; g < truth.size(); ++g) {
        if (truth[g].iscrowd != crowd || truth[g].category_id != d.category_id || (used[g] && !crowd))
          continue;
        const double v = coco_box_iou(d, truth[g]);
        if (v >= best) best = v, match = static_cast<int>(g);
      }
      if (match >= 0) break;
    }
    const bool tp = match >= 0 && !truth[match].iscrowd;
    if (match >= 0) used[match] = true;
    if (tp) ++out.true_positives;
    if (match < 0) ++out.false_positives;
    out.predictions.push_back({static_cast<float>(d.x), static_cast<float>(d.y),
                               static_cast<float>(d.x + d.w), static_cast<float>(d.y + d.h),
                               name_of[d.category_id], static_cast<float>(d.score), tp});
  }
  for (size_t g = 0; g < truth.size(); ++g) {
    const GtBox& t = truth[g];
    if (t.iscrowd || t.ignore) continue;
    if (!used[g]) ++out.misses;
    out.truth.push_back({static_cast<float>(t.x), static_cast<float>(t.y), static_cast<float>(t.x + t.w),
                         static_cast<float>(t.y + t.h), name_of[t.category_id], used[g]});
  }
  return out;
}

}  // namespace vigil::eval
