// `vigil models register`: a finished training run's weights become an immutable registry version whose
// model file describes itself (architecture, classes, input, normalisation, thresholds, lineage, metrics).

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/model/model_file.h"
#include "vigil/monitor/profile.h"
#include "vigil/train/tracking.h"

namespace vigil::train {

namespace fs = std::filesystem;

void RegisterOptions::validate() const {
  store::check_model_name(name);
  if (!alias.empty()) store::check_alias_name(alias);
}

namespace {

/// The newest finished evaluation of `run_id`, if any.
std::optional<store::RunRecord> latest_evaluation(store::Store& s, const std::string& run_id) {
  store::RunFilter f;
  f.status = store::RunStatus::kFinished;
  f.conditions = {"kind = evaluate", fmt::format("parent = '{}'", run_id)};
  f.limit = 1;
  auto page = s.search_runs(f);
  if (page.runs.empty()) return std::nullopt;
  return page.runs.front();
}

}  // namespace

store::ModelVersion register_run_model(store::Store& s, const std::string& run_ref,
                                       const RegisterOptions& options) {
  options.validate();
  const auto run = s.get_run(run_ref == "last" ? "last:train" : run_ref);
  if (run.info.kind != "train") {
    throw InvalidArgument(fmt::format("expected a training run to register, got {} run '{}' ({})",
                                      run.info.kind, run.info.name, run.info.id));
  }
  if (run.info.status != store::RunStatus::kFinished) {
    throw InvalidArgument(fmt::format(
        "expected a finished run, got run '{}' ({}) which is {}; finish it first (vigil train --resume {})",
        run.info.name, run.info.id.substr(0, 8), store::to_string(run.info.status), run.info.run_dir));
  }
  fs::path weights;
  for (const char* name : {"best.ckpt", "last.ckpt"}) {
    const fs::path p = fs::path(run.info.run_dir) / "weights" / name;
    if (weights.empty() && fs::exists(p)) weights = p;
  }
  if (weights.empty())
    throw NotFound(fmt::format("run '{}' has no weights in {}/weights", run.info.name, run.info.run_dir));

  model::LoadedModel model = model::load_model(weights);
  model::ModelInfo info = model.info;
  info.run_id = run.info.id;
  if (!run.info.dataset_id.empty()) info.dataset_id = run.info.dataset_id;
  if (info.code_version.empty()) info.code_version = run.info.code.vigil;
  info.metrics = run.latest_metrics;
  if (const auto eval = latest_evaluation(s, run.info.id)) {
    for (const auto& [k, v] : eval->latest_metrics) info.metrics["eval/" + k] = v;
  }
  const fs::path tmp = s.registry_dir() / fmt::format(".register-{}.ckpt", run.info.id);
  ensure_dir(tmp.parent_path());
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ec;
      fs::remove(p, ec);
    }
  } cleanup{tmp};
  model::save_model(tmp, info, *model.module);

  store::NewModelVersion nv;
  nv.name = options.name;
  nv.run_id = run.info.id;
  nv.dataset_id = info.dataset_id;
  nv.arch = info.arch;
  nv.task = data::task_name(info.task);
  nv.description = options.description;
  nv.metrics = info.metrics;
  nv.info_json = info.to_json();
  nv.source =
      fmt::format("run {} ({}), {}", run.info.name, run.info.id.substr(0, 8), weights.filename().string());
  auto version = s.register_model_file(nv, tmp);
  // The run's reference profile (train/run_profile.h) goes with the version: monitoring finds it by the
  // registered file, whatever alias or replica serves it. A version registered again keeps the one it has.
  const fs::path run_profile = monitor::profile_path_for(weights);
  const fs::path version_profile = monitor::profile_path_for(version.file);
  if (fs::exists(run_profile) && !fs::exists(version_profile)) {
    try {
      write_file_atomic(version_profile, read_file(run_profile));
    } catch (const std::exception& e) {
      spdlog::warn("registry: {} v{} has no reference profile: {}", version.name, version.version, e.what());
    }
  }
  if (!options.alias.empty()) {
    s.set_alias(options.name, options.alias, version.version);
    version = s.get_model_version(options.name, version.version);
  }
  return version;
}

}  // namespace vigil::train
