#include "vigil/store/json.h"

#include "store_impl.h"

#include <chrono>
#include <cmath>
#include <filesystem>

#include "vigil/core/clock.h"

namespace vigil::store {

using json = nlohmann::json;

namespace {

json number(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}

json metrics_json(const std::map<std::string, double>& m) {
  json out = json::object();
  for (const auto& [k, v] : m) out[k] = number(v);
  return out;
}

}  // namespace

json to_json(const RunRecord& run, bool with_artifacts) {
  const auto& i = run.info;
  const int64_t end = i.end_ms > 0 ? i.end_ms : 0;
  // A running run's duration so far, so tables show how long it has been going.
  json duration = nullptr;
  if (end > 0) {
    duration = (end - i.start_ms) / 1000.0;
  } else if (i.status == RunStatus::kRunning) {
    const int64_t now = detail::now_ms();
    duration = (now - i.start_ms) / 1000.0;
  }
  json j = {{"id", i.id},
            {"name", i.name},
            {"experiment", i.experiment},
            {"kind", i.kind},
            {"status", to_string(i.status)},
            {"start_ms", i.start_ms},
            {"end_ms", end},
            {"duration_s", duration},
            {"dataset_id", i.dataset_id},
            {"parent_id", i.parent_id},
            {"run_dir", i.run_dir},
            {"code", {{"commit", i.code.commit}, {"dirty", i.code.dirty}, {"vigil", i.code.vigil}}},
            {"host", i.host},
            {"params", run.params},
            {"metrics", metrics_json(run.latest_metrics)},
            {"tags", run.tags}};
  if (with_artifacts) {
    json a = json::array();
    for (const auto& x : run.artifacts)
      a.push_back({{"path", x.path}, {"kind", x.kind}, {"sha256", x.sha256}, {"size", x.size}});
    j["artifacts"] = a;
  }
  return j;
}

json to_json(const ModelVersion& v) {
  return {{"name", v.name},     {"version", v.version},         {"created_ms", v.created_ms},
          {"file", v.file},     {"sha256", v.sha256},           {"size", v.size},
          {"run_id", v.run_id}, {"dataset_id", v.dataset_id},   {"arch", v.arch},
          {"task", v.task},     {"description", v.description}, {"metrics", metrics_json(v.metrics)},
          {"source", v.source}, {"aliases", v.aliases}};
}

json to_json(const RegisteredModel& m) {
  return {{"name", m.name},
          {"created_ms", m.created_ms},
          {"updated_ms", m.updated_ms},
          {"latest_version", m.latest_version},
          {"version_count", m.version_count},
          {"aliases", m.aliases}};
}

json to_json(const std::vector<MetricPoint>& points) {
  json out = json::array();
  for (const auto& p : points)
    out.push_back({{"step", p.step}, {"value", number(p.value)}, {"timestamp_ms", p.timestamp_ms}});
  return out;
}

json to_json(const EventRow& e) {
  const bool open = e.end_ms <= 0;
  std::error_code ec;
  const bool has_snapshot = !e.snapshot.empty() && std::filesystem::is_regular_file(e.snapshot, ec);
  json data = json::parse(e.data_json.empty() ? "{}" : e.data_json, nullptr, false);
  if (data.is_discarded()) data = nullptr;  // a row written by hand: the columns still say what happened
  return {{"id", e.id},
          {"camera", e.camera},
          {"label", e.label},
          {"track_id", e.track_id},
          {"start", format_utc_ms(e.start_ms)},
          {"start_ms", e.start_ms},
          {"end", open ? json(nullptr) : json(format_utc_ms(e.end_ms))},
          {"end_ms", open ? json(nullptr) : json(e.end_ms)},
          {"end_reason", open || e.end_reason.empty() ? json(nullptr) : json(e.end_reason)},
          {"top_score", number(e.top_score)},
          {"zones", e.zones},
          {"model", e.model},
          {"has_snapshot", has_snapshot},
          {"snapshot", e.snapshot.empty() ? json(nullptr) : json(e.snapshot)},
          {"data", std::move(data)}};
}

}  // namespace vigil::store
