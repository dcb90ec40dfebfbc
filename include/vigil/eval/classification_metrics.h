#pragma once
/// Classification metrics with scikit-learn's semantics: accuracy, top-k accuracy, per-class
/// precision/recall/F1 (zero_division=0) with macro and weighted averages, the confusion matrix, one-vs-rest
/// ROC curves with trapezoidal AUC, a reliability diagram with the expected calibration error, and log loss.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace vigil::eval {

/// One classified sample: its true class id and the model's probability for every class.
struct ClassificationSample {
  int true_class = 0;
  std::vector<double> probs;  ///< one entry per class, each in [0, 1] (softmax output)
};

/// Knobs of compute_classification_metrics.
struct ClassificationOptions {
  int top_k = 5;                ///< top-k accuracy is reported when there are more than 2 classes
  int calibration_bins = 15;    ///< equal-width bins of the top-1 probability over [0, 1]
  double log_loss_eps = 1e-15;  ///< probabilities are clipped to [eps, 1 - eps] before the log
  /// Throws InvalidArgument naming the bad field.
  void validate() const;
};

/// Precision, recall and F1 of one class or of an average over classes.
struct PrecisionRecallF1 {
  double precision = 0, recall = 0, f1 = 0;
};

/// Per-class results. `auc` is the class's one-vs-rest AUC from its own probability, NaN when undefined (the
/// class has no positives or no negatives).
struct ClassMetrics {
  std::string name;
  PrecisionRecallF1 prf;
  int64_t support = 0;  ///< samples whose true class is this one
  double auc = 0;
};

/// sklearn.metrics.roc_curve(drop_intermediate=False): one point per distinct score, highest first,
/// preceded by (0, 0) at threshold +inf. fpr is NaN throughout when there are no negatives, tpr when there
/// are no positives; `auc` is then NaN.
struct RocCurve {
  std::string name;  ///< the positive class
  std::vector<double> fpr, tpr, thresholds;
  double auc = 0;
};

/// One bin of the reliability diagram: top-1 probabilities in (lower, upper] (the first bin also takes 0).
struct ReliabilityBin {
  double lower = 0, upper = 0;
  int64_t count = 0;
  double confidence = 0;  ///< mean top-1 probability in the bin; 0 when empty
  double accuracy = 0;    ///< fraction of the bin's samples whose top-1 class is right; 0 when empty
};

/// Everything compute_classification_metrics finds. Class ids index `classes` and `per_class`.
struct ClassificationMetrics {
  std::vector<std::string> classes;
  int64_t samples = 0;
  double accuracy = 0;
  int top_k = 0;              ///< 0 when not reported (2 classes or fewer)
  double top_k_accuracy = 0;  ///< k is clamped to the class count, as sklearn's top_k_accuracy_score
  std::vector<ClassMetrics> per_class;
  PrecisionRecallF1 macro, weighted;  ///< unweighted mean over all classes; mean weighted by support
  std::vector<std::vector<int64_t>> confusion;  ///< [true][predicted] counts
  /// Binary: one curve, class 1 positive from its probability. More classes: one-vs-rest curve per class.
  std::vector<RocCurve> roc;
  /// Mean of the defined AUCs of the `roc` curves (NaN when none is defined); binary: class 1's AUC. Unlike
  /// sklearn, which refuses a multi-class AUC when a class is absent, undefined classes are left out.
  double macro_auc = 0;
  std::vector<ReliabilityBin> reliability;
  double ece = 0;  ///< sum over bins of |accuracy - confidence| * count / samples
  double log_loss = 0;

  /// The confusion matrix as doubles; `normalized` divides each row by its total (rows without samples
  /// stay 0), i.e. each row is the distribution of predictions for one true class.
  std::vector<std::vector<double>> confusion_matrix(bool normalized) const;

  /// Flat scalar metrics, ready for tracking: `samples`, `accuracy`, `top<k>_accuracy`,
  /// `precision/<class>`, `recall/<class>`, `f1/<class>`, `support/<class>`, `macro/precision`, ...,
  /// `weighted/f1`, `auc/<class>`, `auc/macro` (binary: `auc` and `auc/<class 1>`), `ece`, `log_loss`.
  /// Undefined values (NaN AUC) are null. A class named "macro" would share `auc/macro`: avoid it.
  nlohmann::json to_json() const;

  /// to_json() under "metrics" plus the classes, confusion matrix, ROC curves and reliability bins.
  nlohmann::json to_detailed_json() const;
};

/// Computes every metric. The predicted class is the arg-max probability (the lowest id on ties).
/// Throws InvalidArgument for empty input, fewer than 2 or duplicate class names, a probability vector of
/// the wrong size or with values outside [0, 1], and a true class id out of range.
ClassificationMetrics compute_classification_metrics(const std::vector<ClassificationSample>& samples,
                                                     const std::vector<std::string>& classes,
                                                     const ClassificationOptions& options = {});

/// One-vs-rest ROC of `scores` (higher = more positive) against boolean `positive` labels.
/// Throws InvalidArgument when the sizes differ or a score is not finite.
RocCurve roc_curve(const std::vector<double>& scores, const std::vector<bool>& positive);

}  // namespace vigil::eval
