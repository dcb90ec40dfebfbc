#pragma once
/// Drift of image embeddings (model/embedding.h: the model's backbone features, projected), with Evidently's
/// four methods, names and defaults (evidently.metrics.data_drift.embedding_drift_methods):
///   model    (default) a classifier told to separate reference from current rows; the score is its ROC AUC
///            on the held-out half; drift above 0.55.
///   ratio    every component tested on its own (Wasserstein distance normed, 0.1); the score is the share
///            of drifted components; drift above 0.2.
///   distance the Euclidean distance between the two mean embeddings; drift above 0.2.
///   mmd      the unbiased squared maximum mean discrepancy with a Gaussian kernel whose width is the median
///            distance between reference and current rows; drift above 0.015.
/// Bootstrap (model, distance, mmd; on by default when the reference has at most 1000 rows, as Evidently
/// does): instead of the fixed threshold, the score is compared with the `quantile_probability` quantile of
/// the same score under no drift (distance, mmd: between resamples of the reference; model: the ROC AUC of
/// random guesses on the same held-out rows), 100 draws. The quantile is 0.95 for every method, as
/// Evidently's documentation gives it; its code defaults mmd to 0.05, which flags two samples of one
/// distribution as drift (measured on held-back mask images: score 0 against a threshold of -0.003).
///
/// Where vigil differs, and why: Evidently's classifier is scikit-learn's SGDClassifier on the raw values;
/// vigil fits the same model (L2-regularised logistic regression, alpha 1e-4) exactly, by Newton's method on
/// standardised values, so the answer does not depend on a learning-rate schedule. Resamples come from
/// mt19937_64 seeded with the draw's index, not numpy's generator, so bootstrap thresholds equal Evidently's
/// in distribution, not digit for digit. The mmd method's kernel runs over at most 2000 current rows
/// (evenly spread), which bounds a check over a day of traffic to well under a second.

#include <nlohmann/json_fwd.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/monitor/drift_tests.h"

namespace vigil::monitor {

enum class EmbeddingMethod { kModel, kRatio, kDistance, kMmd };

/// "model", "ratio", "distance", "mmd" (Evidently's names).
std::string_view to_string(EmbeddingMethod method);
/// The method of that name; an unknown name's error lists the valid ones.
EmbeddingMethod embedding_method_from_string(std::string_view name);
/// Evidently's default threshold: model 0.55, ratio 0.2, distance 0.2, mmd 0.015.
double default_threshold(EmbeddingMethod method);

struct EmbeddingDriftOptions {
  EmbeddingMethod method = EmbeddingMethod::kModel;
  std::optional<double> threshold;  ///< empty: the method's default
  std::optional<bool> bootstrap;    ///< empty: on when the reference has at most 1000 rows (not ratio)
  std::optional<double> quantile;   ///< bootstrap quantile; empty: 0.95
  void validate() const;
};

struct EmbeddingDrift {
  EmbeddingMethod method = EmbeddingMethod::kModel;
  double score = 0;      ///< ROC AUC, drifted share, distance or MMD^2 (see the file comment)
  double threshold = 0;  ///< what the score was compared with (the bootstrap quantile when bootstrapped)
  bool bootstrap = false;
  bool drifted = false;  ///< score > threshold
  size_t dims = 0, reference_size = 0, current_size = 0;
  std::vector<double> reference_mean, current_mean;  ///< per component, for plots
  std::vector<ColumnDrift> components;               ///< ratio: each component's test
};

/// Compares two sets of embeddings (rows of one width). Fewer than 2 rows on a side, rows of different
/// widths or non-finite values are an InvalidArgument saying which.
EmbeddingDrift embedding_drift(const std::vector<std::vector<double>>& reference,
                               const std::vector<std::vector<double>>& current,
                               const EmbeddingDriftOptions& options = {});

/// The area under the ROC curve of `scores` for `labels` (true = positive), ties counted half (as
/// sklearn.metrics.roc_auc_score). Both classes must be present.
double roc_auc(const std::vector<double>& scores, const std::vector<bool>& labels);
/// numpy.percentile(values, 100 * q) (linear interpolation).
double percentile(std::vector<double> values, double q);
/// The unbiased squared MMD of x against y with the kernel exp(-gamma |a - b|^2) (Evidently's MMD2u).
double mmd2_unbiased(const std::vector<std::vector<double>>& x, const std::vector<std::vector<double>>& y,
                     double gamma);

nlohmann::json to_json(const EmbeddingDrift& d);

}  // namespace vigil::monitor
