#pragma once
/// JSON views of store records, one shape for the CLI's --json output and the HTTP API (docs/serve-api.md).

#include <nlohmann/json.hpp>

#include "vigil/store/events.h"
#include "vigil/store/records.h"

namespace vigil::store {

/// {id, name, experiment, kind, status, start_ms, end_ms, duration_s, dataset_id, parent_id, run_dir,
///  code: {commit, dirty, vigil}, host, params, metrics, tags[, artifacts: [{path, kind, sha256, size}]]}
/// NaN metrics become null.
nlohmann::json to_json(const RunRecord& run, bool with_artifacts = false);
/// {version, name, created_ms, file, sha256, size, run_id, dataset_id, arch, task, description, metrics,
///  source, aliases}
nlohmann::json to_json(const ModelVersion& v);
/// {name, created_ms, updated_ms, latest_version, version_count, aliases: {alias: version}}
nlohmann::json to_json(const RegisteredModel& m);
/// [{step, value, timestamp_ms}]
nlohmann::json to_json(const std::vector<MetricPoint>& points);
/// {id, camera, label, track_id, start (ISO 8601 UTC, ms), start_ms, end (ISO or null while open), end_ms
///  (null while open), end_reason (null while open), top_score, zones, model, has_snapshot (its JPEG file is
///  there now), snapshot (the file, or null), data (the watcher's whole record: the parsed data_json)}
nlohmann::json to_json(const EventRow& e);

}  // namespace vigil::store
