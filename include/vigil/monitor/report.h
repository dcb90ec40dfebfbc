#pragma once
/// `vigil monitor report`: the served traffic of a model (the prediction log) against its reference profile,
/// column by column with Evidently's tests and defaults (drift_tests.h), plus the feedback accuracy. Written
/// as JSON (for scripts and the server's scheduled check) and as a self-contained HTML page with a chart per
/// column.
///
/// Columns: every image statistic; "label" (a classifier's predicted class, a detector's box labels) against
/// the model's own answers on the reference images when the profile has them (`vigil monitor profile
/// --model`), else against the reference data's labels, so a shift in what the model answers shows even
/// without feedback; "score" (top-1 or box scores) when the profile has the answers; and for detectors
/// "boxes_per_image". And, when the profile and the log rows both hold the model's image embeddings
/// (model/embedding.h), the embeddings' drift by Evidently's embedding methods (embedding_drift.h), reported
/// beside the columns as Evidently reports it beside its dataset drift.

#include <nlohmann/json_fwd.hpp>

#include <optional>
#include <string>
#include <vector>

#include "vigil/monitor/drift_tests.h"
#include "vigil/monitor/embedding_drift.h"
#include "vigil/monitor/profile.h"
#include "vigil/store/prediction_log.h"

namespace vigil::monitor {

struct DriftReportOptions {
  std::optional<StatTest> test;     ///< every column's test (empty: Evidently's automatic choice)
  std::optional<double> threshold;  ///< every column's threshold (empty: the test's default)
  double drift_share = 0.5;         ///< dataset drift when at least this share of columns drifted
  size_t min_current = 30;          ///< fewer logged predictions than this: no verdict ("not enough data")
  EmbeddingDriftOptions embedding;  ///< the embeddings' method (default: Evidently's "model")
  void validate() const;
};

struct FeedbackSummary {
  int64_t total = 0, correct = 0;
  std::optional<double> accuracy;  ///< correct / total when there is feedback
};

struct DriftReport {
  std::string model, version;  ///< "" = every version
  int64_t since_ms = 0, until_ms = 0;
  std::string reference;  ///< the profile's source
  size_t reference_rows = 0, current_rows = 0;
  bool enough_data = false;                 ///< current_rows >= min_current
  DatasetDrift drift;                       ///< empty columns when !enough_data
  std::optional<EmbeddingDrift> embedding;  ///< when both sides have embeddings (and enough_data)
  FeedbackSummary feedback;
  /// Dataset drift, or the embeddings drifted: what the server's gauge and webhook report.
  bool drifted() const { return drift.drifted || (embedding && embedding->drifted); }
};

/// Compares `current` (log rows of one model) with `reference`.
DriftReport drift_report(const Profile& reference, const std::vector<store::PredictionRow>& current,
                         const DriftReportOptions& options = {});

nlohmann::json to_json(const DriftReport& r);
/// A self-contained HTML page: verdict, a table of columns and, per column, the two distributions as bars.
std::string to_html(const DriftReport& r);

}  // namespace vigil::monitor
