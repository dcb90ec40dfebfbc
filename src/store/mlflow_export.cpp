#include "vigil/store/mlflow_export.h"

#include "store_impl.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <set>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"

namespace vigil::store {

namespace fs = std::filesystem;

namespace {

/// MLflow's RunStatus enum values.
int mlflow_status(RunStatus s) {
  switch (s) {
    case RunStatus::kRunning:
      return 1;
    case RunStatus::kFinished:
      return 3;
    case RunStatus::kFailed:
      return 4;
    case RunStatus::kKilled:
      return 5;
  }
  return 4;
}

std::string file_uri(const fs::path& p) {
  return "file://" + to_utf8(fs::absolute(p).lexically_normal());
}

void write_text(const fs::path& file, const std::string& text) {
  ensure_dir(file.parent_path());
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.flush()) throw IoError(fmt::format("cannot write {}", to_utf8(file)));
}

/// A metric, param or tag key as MLflow stores it: a relative path ('/' makes folders). Keys that would
/// escape the folder are refused rather than written somewhere else.
fs::path key_path(const fs::path& dir, const std::string& key) {
  const fs::path rel = fs::path(key).lexically_normal();
  VIGIL_CHECK(!key.empty() && rel.is_relative() && rel.begin()->string() != "..",
              "expected a key MLflow can store as a file name, got '{}'", key);
  return dir / rel;
}

std::string number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{}", v);
}

void write_experiment(const fs::path& dir, const std::string& id, const std::string& name, int64_t now) {
  YAML::Emitter e;
  e << YAML::BeginMap << YAML::Key << "artifact_location" << YAML::Value << file_uri(dir) << YAML::Key
    << "creation_time" << YAML::Value << now << YAML::Key << "experiment_id" << YAML::Value
    << YAML::SingleQuoted << id << YAML::Key << "last_update_time" << YAML::Value << now << YAML::Key
    << "lifecycle_stage" << YAML::Value << "active" << YAML::Key << "name" << YAML::Value << name
    << YAML::EndMap;
  write_text(dir / "meta.yaml", std::string(e.c_str()) + "\n");
}

void write_run_meta(const fs::path& dir, const std::string& experiment_id, const RunInfo& i) {
  YAML::Emitter e;
  e << YAML::BeginMap;
  auto kv = [&](const char* k, const auto& v) { e << YAML::Key << k << YAML::Value << v; };
  kv("artifact_uri", file_uri(dir / "artifacts"));
  kv("end_time", i.end_ms > 0 ? YAML::Node(i.end_ms) : YAML::Node(YAML::NodeType::Null));
  e << YAML::Key << "entry_point_name" << YAML::Value << YAML::SingleQuoted << "";
  e << YAML::Key << "experiment_id" << YAML::Value << YAML::SingleQuoted << experiment_id;
  kv("lifecycle_stage", "active");
  kv("run_id", i.id);
  kv("run_name", i.name);
  kv("run_uuid", i.id);
  e << YAML::Key << "source_name" << YAML::Value << YAML::SingleQuoted << "";
  kv("source_type", 4);  // LOCAL
  e << YAML::Key << "source_version" << YAML::Value << YAML::SingleQuoted << i.code.commit;
  kv("start_time", i.start_ms);
  kv("status", mlflow_status(i.status));
  e << YAML::Key << "tags" << YAML::Value << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
  kv("user_id", i.host);
  e << YAML::EndMap;
  write_text(dir / "meta.yaml", std::string(e.c_str()) + "\n");
}

/// MLflow's own tags for what vigil records as run attributes, plus the run's tags.
std::map<std::string, std::string> run_tags(const RunRecord& r) {
  std::map<std::string, std::string> tags = r.tags;
  const auto& i = r.info;
  tags["mlflow.runName"] = i.name;
  tags["mlflow.source.type"] = "LOCAL";
  tags["mlflow.source.name"] = "vigil " + i.kind;
  tags["mlflow.user"] = i.host;
  if (!i.code.commit.empty()) tags["mlflow.source.git.commit"] = i.code.commit;
  if (!i.parent_id.empty()) tags["mlflow.parentRunId"] = i.parent_id;
  tags["vigil.kind"] = i.kind;
  if (!i.dataset_id.empty()) tags["vigil.dataset_id"] = i.dataset_id;
  if (i.code.dirty) tags["vigil.code_dirty"] = "true";
  return tags;
}

void link_or_copy(const fs::path& from, const fs::path& to) {
  ensure_dir(to.parent_path());
  std::error_code ec;
  fs::remove(to, ec);
  fs::create_hard_link(from, to, ec);
  if (ec) {
    fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
    if (ec) throw IoError(fmt::format("cannot copy {} to {}: {}", to_utf8(from), to_utf8(to), ec.message()));
  }
}

}  // namespace

MlflowExportReport export_mlflow(Store& store, const fs::path& dir, const MlflowExportOptions& options) {
  MlflowExportReport report;
  ensure_dir(dir);
  std::map<std::string, std::string> experiment_ids;  // name -> id
  int next = 1;
  for (const auto& name : store.experiments())
    experiment_ids[name] = name == "Default" ? "0" : std::to_string(next++);
  RunFilter filter = options.filter;
  filter.limit = 10000;
  std::set<std::string> written_experiments;
  const int64_t now = detail::now_ms();
  for (filter.offset = 0;; filter.offset += filter.limit) {
    const auto page = store.search_runs(filter);
    for (const auto& r : page.runs) {
      const std::string& exp_id = experiment_ids.at(r.info.experiment);
      const fs::path exp_dir = dir / exp_id;
      if (written_experiments.insert(exp_id).second)
        write_experiment(exp_dir, exp_id, r.info.experiment, now);
      const fs::path run_dir = exp_dir / r.info.id;
      std::error_code ec;
      fs::remove_all(run_dir, ec);
      write_run_meta(run_dir, exp_id, r.info);
      ensure_dir(run_dir / "artifacts");
      for (const auto& [k, v] : r.params) write_text(key_path(run_dir / "params", k), v);
      for (const auto& [k, v] : run_tags(r)) write_text(key_path(run_dir / "tags", k), v);
      for (const auto& key : store.metric_keys(r.info.id)) {
        std::string lines;
        for (const auto& p : store.metric_history(r.info.id, key)) {
          lines += fmt::format("{} {} {}\n", p.timestamp_ms, number(p.value), p.step);
          ++report.metric_points;
        }
        write_text(key_path(run_dir / "metrics", key), lines);
      }
      if (options.artifacts) {
        for (const auto& a : r.artifacts) {
          const fs::path src =
              fs::path(a.path).is_absolute() ? fs::path(a.path) : fs::path(r.info.run_dir) / a.path;
          if (!fs::is_regular_file(src, ec)) {
            report.skipped.push_back(
                fmt::format("{}: {} no longer exists", r.info.id.substr(0, 8), to_utf8(src)));
            continue;
          }
          const fs::path rel =
              fs::path(a.path).is_absolute() ? fs::path(a.path).filename() : fs::path(a.path);
          link_or_copy(src, key_path(run_dir / "artifacts", rel.generic_string()));
          ++report.artifacts;
        }
      }
      ++report.runs;
    }
    if (filter.offset + filter.limit >= page.total) break;
  }
  report.experiments = static_cast<int>(written_experiments.size());
  return report;
}

}  // namespace vigil::store
