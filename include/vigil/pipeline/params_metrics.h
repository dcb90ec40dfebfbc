#pragma once
/// `vigil params diff`, `vigil metrics show` and `vigil metrics diff`, like their DVC counterparts
/// (dvc/repo/params/diff.py, dvc/repo/metrics/show.py + diff.py, dvc/utils/diff.py, dvc/compare.py): values
/// are flattened with '.', lists stay values, numbers print as Python prints them, metrics round to 5 digits.
/// An old revision is read with `git show REV:path`; outside git (or for a params file not committed there)
/// params compare with the values dvc.lock recorded.

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "vigil/pipeline/yaml_io.h"

namespace vigil::pipeline {

struct DiffOptions {
  std::filesystem::path file = "dvc.yaml";
  std::string a_rev;       ///< old side; empty = HEAD
  std::string b_rev;       ///< new side; empty = the workspace
  bool all = false;        ///< include unchanged values
  bool deps_only = false;  ///< params: only the keys some stage depends on

  /// Throws InvalidArgument when b_rev is given without a_rev.
  void validate() const;
};

/// One changed (or, with `all`, unchanged) value.
struct DiffRow {
  std::string path;  ///< file, relative to the folder of dvc.yaml
  std::string key;   ///< flattened key
  std::optional<Json> old_value, new_value;
};

struct DiffResult {
  std::string old_label, new_label;  ///< column titles ("HEAD", "workspace", a revision, or "dvc.lock")
  std::vector<DiffRow> rows;         ///< by file, then by key
  std::vector<std::string> notes;    ///< what the caller should tell the user (fallbacks, unreadable files)
};

/// Flattened values of one metrics file.
struct MetricsFile {
  std::string path;
  Json data;                                         ///< as loaded
  std::vector<std::pair<std::string, Json>> values;  ///< flattened
  std::string error;                                 ///< why it could not be read, if it could not
};

DiffResult params_diff(const DiffOptions& options);
DiffResult metrics_diff(const DiffOptions& options);
/// The pipeline's metrics files (outs under `metrics:` and top-level `metrics:`) as they are in the
/// workspace.
std::vector<MetricsFile> metrics_show(const std::filesystem::path& file);

/// Table "Path Param OLD NEW" (params) or "Path Metric OLD NEW Change" (metrics, rounded); "" when no rows.
std::string format_diff(const DiffResult& diff, bool metrics);
/// Table "Path metric1 metric2 ..." with one row per file.
std::string format_metrics(const std::vector<MetricsFile>& files);
/// {"path": {"key": {"old": .., "new": .., "diff": ..}}} as `dvc ... diff --json`.
Json diff_to_json(const DiffResult& diff, bool metrics);
/// {"path": {nested metrics}}.
Json metrics_to_json(const std::vector<MetricsFile>& files);

/// Python's str(round(value, 5)) for floats (DVC's metrics precision), str(value) otherwise.
std::string format_metric_value(const Json& value);
/// Left-aligned columns separated by two spaces (tabulate's "plain" format, as DVC prints tables).
std::string format_table(const std::vector<std::string>& headers,
                         const std::vector<std::vector<std::string>>& rows);
/// Nested mappings flattened with '.' (flatten_dict's "dot" reducer); lists and scalars are leaves.
std::vector<std::pair<std::string, Json>> flatten(const Json& value);

}  // namespace vigil::pipeline
