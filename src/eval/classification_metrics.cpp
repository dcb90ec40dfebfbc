#include "vigil/eval/classification_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>

#include "vigil/core/error.h"

namespace vigil::eval {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// sklearn's zero_division=0: a ratio whose denominator is zero counts as 0 rather than NaN.
double safe_ratio(double num, double den) {
  return den > 0 ? num / den : 0.0;
}

// nlohmann::json would write NaN as null anyway; being explicit keeps the intent visible.
nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

// The arg-max with the lowest index winning ties, as numpy.argmax and torch.argmax do.
int argmax(const std::vector<double>& p) {
  return static_cast<int>(std::max_element(p.begin(), p.end()) - p.begin());
}

// True when the true class is among the k highest probabilities. Ties are broken by class id like argmax,
// so top-1 always equals accuracy.
bool in_top_k(const std::vector<double>& p, int truth, int k) {
  int ahead = 0;
  for (int c = 0; c < static_cast<int>(p.size()); ++c) {
    if (p[c] > p[truth] || (p[c] == p[truth] && c < truth)) ++ahead;
  }
  return ahead < k;
}

void check_inputs(const std::vector<ClassificationSample>& samples, const std::vector<std::string>& classes) {
  VIGIL_CHECK(!samples.empty(), "expected at least one classified sample, got none");
  VIGIL_CHECK(classes.size() >= 2, "expected at least 2 class names, got {}", classes.size());
  std::set<std::string> seen;
  for (const auto& c : classes) {
    VIGIL_CHECK(seen.insert(c).second, "expected unique class names, got '{}' twice", c);
  }
  const auto n = classes.size();
  for (size_t i = 0; i < samples.size(); ++i) {
    const auto& s = samples[i];
    VIGIL_CHECK(s.probs.size() == n, "expected {} probabilities (one per class) for sample {}, got {}", n, i,
                s.probs.size());
    VIGIL_CHECK(s.true_class >= 0 && s.true_class < static_cast<int>(n),
                "expected a true class id in [0, {}) for sample {}, got {}", n, i, s.true_class);
    for (double p : s.probs) {
      VIGIL_CHECK(std::isfinite(p) && p >= 0 && p <= 1,
                  "expected probabilities in [0, 1] for sample {}, got {} (logits instead of softmax?)", i,
                  p);
    }
  }
}

PrecisionRecallF1 class_prf(int64_t tp, int64_t fp, int64_t fn) {
  PrecisionRecallF1 r;
  r.precision = safe_ratio(tp, tp + fp);
  r.recall = safe_ratio(tp, tp + fn);
  // sklearn >= 1.3 form: zero only when there is nothing to count, equal to 2PR/(P+R) otherwise.
  r.f1 = safe_ratio(2.0 * tp, 2.0 * tp + fp + fn);
  return r;
}

void fill_per_class(ClassificationMetrics& m) {
  const size_t n = m.classes.size();
  double total = static_cast<double>(m.samples);
  for (size_t c = 0; c < n; ++c) {
    int64_t tp = m.confusion[c][c], fp = 0, fn = 0;
    for (size_t o = 0; o < n; ++o) {
      if (o == c) continue;
      fp += m.confusion[o][c];
      fn += m.confusion[c][o];
    }
    ClassMetrics cm;
    cm.name = m.classes[c];
    cm.prf = class_prf(tp, fp, fn);
    cm.support = tp + fn;
    cm.auc = kNaN;
    m.per_class.push_back(cm);
    double w = cm.support / total;
    m.macro.precision += cm.prf.precision / n;
    m.macro.recall += cm.prf.recall / n;
    m.macro.f1 += cm.prf.f1 / n;
    m.weighted.precision += cm.prf.precision * w;
    m.weighted.recall += cm.prf.recall * w;
    m.weighted.f1 += cm.prf.f1 * w;
  }
}

// One-vs-rest curves. Binary problems keep only the curve of class 1 (sklearn's pos_label=1); class 0 still
// gets its own AUC from its probability, which equals class 1's when the probabilities sum to one.
void fill_roc(const std::vector<ClassificationSample>& samples, ClassificationMetrics& m) {
  const size_t n = m.classes.size();
  std::vector<double> scores(samples.size());
  std::vector<bool> positive(samples.size());
  for (size_t c = 0; c < n; ++c) {
    for (size_t i = 0; i < samples.size(); ++i) {
      scores[i] = samples[i].probs[c];
      positive[i] = samples[i].true_class == static_cast<int>(c);
    }
    RocCurve curve = roc_curve(scores, positive);
    curve.name = m.classes[c];
    m.per_class[c].auc = curve.auc;
    if (n > 2 || c == 1) m.roc.push_back(std::move(curve));
  }
  double sum = 0;
  int defined = 0;
  for (const auto& curve : m.roc) {
    if (std::isfinite(curve.auc)) sum += curve.auc, ++defined;
  }
  m.macro_auc = defined ? sum / defined : kNaN;
}

// Bin b covers (b/B, (b+1)/B]; the index is corrected against those exact edges because c*B can round
// onto an integer (the double just above 11/15, times 15, is exactly 11.0).
int calibration_bin(double c, int bins) {
  int b = std::clamp(static_cast<int>(std::ceil(c * bins)) - 1, 0, bins - 1);
  if (b > 0 && c <= static_cast<double>(b) / bins) --b;
  if (b < bins - 1 && c > static_cast<double>(b + 1) / bins) ++b;
  return b;
}

void fill_calibration(const std::vector<ClassificationSample>& samples, int bins, ClassificationMetrics& m) {
  m.reliability.resize(bins);
  std::vector<double> conf_sum(bins, 0.0), correct(bins, 0.0);
  for (const auto& s : samples) {
    int pred = argmax(s.probs);
    double conf = s.probs[pred];
    int b = calibration_bin(conf, bins);
    ++m.reliability[b].count;
    conf_sum[b] += conf;
    if (pred == s.true_class) correct[b] += 1;
  }
  m.ece = 0;
  for (int b = 0; b < bins; ++b) {
    auto& bin = m.reliability[b];
    bin.lower = static_cast<double>(b) / bins;
    bin.upper = static_cast<double>(b + 1) / bins;
    if (bin.count == 0) continue;
    bin.confidence = conf_sum[b] / bin.count;
    bin.accuracy = correct[b] / bin.count;
    m.ece += std::abs(bin.accuracy - bin.confidence) * bin.count / m.samples;
  }
}

}  // namespace

void ClassificationOptions::validate() const {
  VIGIL_CHECK(top_k >= 1, "expected top_k >= 1, got {}", top_k);
  VIGIL_CHECK(calibration_bins >= 1 && calibration_bins <= 1000,
              "expected calibration_bins in [1, 1000], got {}", calibration_bins);
  VIGIL_CHECK(log_loss_eps > 0 && log_loss_eps < 0.5, "expected log_loss_eps in (0, 0.5), got {}",
              log_loss_eps);
}

RocCurve roc_curve(const std::vector<double>& scores, const std::vector<bool>& positive) {
  VIGIL_CHECK(scores.size() == positive.size(), "expected as many scores as labels, got {} and {}",
              scores.size(), positive.size());
  for (double s : scores) VIGIL_CHECK(std::isfinite(s), "expected finite ROC scores, got {}", s);
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  auto pos = static_cast<double>(std::count(positive.begin(), positive.end(), true));
  auto neg = static_cast<double>(positive.size()) - pos;
  RocCurve r;
  r.thresholds.push_back(std::numeric_limits<double>::infinity());
  std::vector<double> tps{0}, fps{0};
  double tp = 0, fp = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    (positive[order[k]] ? tp : fp) += 1;
    // Tied scores are one threshold: the curve moves diagonally across them.
    if (k + 1 < order.size() && scores[order[k + 1]] == scores[order[k]]) continue;
    tps.push_back(tp);
    fps.push_back(fp);
    r.thresholds.push_back(scores[order[k]]);
  }
  for (size_t k = 0; k < tps.size(); ++k) {
    r.fpr.push_back(neg > 0 ? fps[k] / neg : kNaN);
    r.tpr.push_back(pos > 0 ? tps[k] / pos : kNaN);
  }
  r.auc = kNaN;
  if (pos > 0 && neg > 0) {
    r.auc = 0;
    for (size_t k = 1; k < r.fpr.size(); ++k) {
      r.auc += (r.fpr[k] - r.fpr[k - 1]) * (r.tpr[k] + r.tpr[k - 1]) / 2;
    }
  }
  return r;
}

ClassificationMetrics compute_classification_metrics(const std::vector<ClassificationSample>& samples,
                                                     const std::vector<std::string>& classes,
                                                     const ClassificationOptions& options) {
  options.validate();
  check_inputs(samples, classes);
  const size_t n = classes.size();
  ClassificationMetrics m;
  m.classes = classes;
  m.samples = static_cast<int64_t>(samples.size());
  m.confusion.assign(n, std::vector<int64_t>(n, 0));
  int64_t correct = 0, top_k_hits = 0;
  double loss = 0;
  const int k = std::min<int>(options.top_k, static_cast<int>(n));
  for (const auto& s : samples) {
    int pred = argmax(s.probs);
    ++m.confusion[s.true_class][pred];
    if (pred == s.true_class) ++correct;
    if (in_top_k(s.probs, s.true_class, k)) ++top_k_hits;
    double p = std::clamp(s.probs[s.true_class], options.log_loss_eps, 1 - options.log_loss_eps);
    loss -= std::log(p);
  }
  m.accuracy = static_cast<double>(correct) / m.samples;
  if (n > 2) {
    m.top_k = options.top_k;
    m.top_k_accuracy = static_cast<double>(top_k_hits) / m.samples;
  }
  m.log_loss = loss / m.samples;
  fill_per_class(m);
  fill_roc(samples, m);
  fill_calibration(samples, options.calibration_bins, m);
  return m;
}

std::vector<std::vector<double>> ClassificationMetrics::confusion_matrix(bool normalized) const {
  std::vector<std::vector<double>> out;
  for (const auto& row : confusion) {
    double total = std::accumulate(row.begin(), row.end(), 0.0);
    std::vector<double> r;
    for (int64_t v : row) r.push_back(normalized ? safe_ratio(v, total) : static_cast<double>(v));
    out.push_back(std::move(r));
  }
  return out;
}

nlohmann::json ClassificationMetrics::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  j["samples"] = samples;
  j["accuracy"] = accuracy;
  if (top_k > 0) j[fmt::format("top{}_accuracy", top_k)] = top_k_accuracy;
  for (const auto& c : per_class) {
    j["precision/" + c.name] = c.prf.precision;
    j["recall/" + c.name] = c.prf.recall;
    j["f1/" + c.name] = c.prf.f1;
    j["support/" + c.name] = c.support;
  }
  for (const auto& [prefix, avg] : {std::pair{"macro/", &macro}, std::pair{"weighted/", &weighted}}) {
    j[std::string(prefix) + "precision"] = avg->precision;
    j[std::string(prefix) + "recall"] = avg->recall;
    j[std::string(prefix) + "f1"] = avg->f1;
  }
  for (const auto& curve : roc) j["auc/" + curve.name] = number_or_null(curve.auc);
  if (roc.size() == 1) {
    j["auc"] = number_or_null(roc.front().auc);
  } else {
    j["auc/macro"] = number_or_null(macro_auc);
  }
  j["ece"] = ece;
  j["log_loss"] = log_loss;
  return j;
}

nlohmann::json ClassificationMetrics::to_detailed_json() const {
  nlohmann::json j;
  j["metrics"] = to_json();
  j["classes"] = classes;
  j["confusion_matrix"] = confusion;
  nlohmann::json curves = nlohmann::json::array();
  for (const auto& c : roc) {
    nlohmann::json fpr = nlohmann::json::array(), tpr = nlohmann::json::array(), th = nlohmann::json::array();
    for (size_t k = 0; k < c.fpr.size(); ++k) {
      fpr.push_back(number_or_null(c.fpr[k]));
      tpr.push_back(number_or_null(c.tpr[k]));
      th.push_back(number_or_null(c.thresholds[k]));  // the leading +inf becomes null
    }
    curves.push_back(
        {{"class", c.name}, {"auc", number_or_null(c.auc)}, {"fpr", fpr}, {"tpr", tpr}, {"thresholds", th}});
  }
  j["roc"] = curves;
  nlohmann::json bins = nlohmann::json::array();
  for (const auto& b : reliability) {
    bins.push_back({{"lower", b.lower},
                    {"upper", b.upper},
                    {"count", b.count},
                    {"confidence", b.confidence},
                    {"accuracy", b.accuracy}});
  }
  j["reliability"] = bins;
  return j;
}

}  // namespace vigil::eval
