#include "vigil/train/tracking.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <cmath>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/hash.h"
#include "vigil/core/interrupt.h"
#include "vigil/core/strings.h"

namespace vigil::train {

namespace fs = std::filesystem;

namespace {

void flatten(const YAML::Node& node, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (node.IsMap()) {
    for (const auto& kv : node)
      flatten(kv.second,
              prefix.empty() ? kv.first.as<std::string>() : prefix + "." + kv.first.as<std::string>(), out);
  } else if (node.IsSequence()) {
    YAML::Emitter e;
    e << YAML::Flow << node;
    out[prefix] = e.c_str();
  } else if (node.IsScalar()) {
    // Resolved configs are written with every digit (0.80000000000000004); a param reads best as the
    // shortest text that means the same double.
    const auto& text = node.Scalar();
    const auto number = parse_double(text);
    const bool integer = text.find_first_not_of("-0123456789") == std::string::npos;
    out[prefix] = number && !integer && std::isfinite(*number) ? fmt::format("{}", *number) : text;
  } else {
    out[prefix] = "";
  }
}

std::string kind_of(const fs::path& file) {
  const std::string ext = lower_extension(file);
  if (ext == ".ckpt" || ext == ".pt" || ext == ".pth") return "checkpoint";
  if (ext == ".png" || ext == ".jpg" || ext == ".svg") return "plot";
  if (ext == ".html") return "report";
  if (ext == ".csv" || ext == ".json") return "metrics";
  if (ext == ".yaml" || ext == ".yml") return "config";
  if (ext == ".log") return "log";
  if (file.filename().string().rfind("events.out.tfevents", 0) == 0) return "tensorboard";
  return "file";
}

template <class Fn>
void warn_on_error(const char* what, Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    spdlog::warn("tracking: could not record {}: {}", what, e.what());
  }
}

}  // namespace

std::map<std::string, std::string> flatten_config(const std::string& yaml_text) {
  std::map<std::string, std::string> out;
  flatten(YAML::Load(yaml_text), "", out);
  return out;
}

store::Artifact make_artifact(const fs::path& file, const fs::path& base, const std::string& kind) {
  store::Artifact a;
  const auto rel = fs::relative(file, base);
  a.path = !rel.empty() && rel.begin()->string() != ".." ? rel.generic_string() : to_utf8(fs::absolute(file));
  a.kind = kind.empty() ? kind_of(file) : kind;
  a.sha256 = hash_file(file);
  a.size = static_cast<int64_t>(fs::file_size(file));
  return a;
}

std::vector<store::Artifact> folder_artifacts(const fs::path& dir, const fs::path& base) {
  std::vector<store::Artifact> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& f : list_files_recursive(dir)) out.push_back(make_artifact(dir / f, base, ""));
  return out;
}

TrackedRun::TrackedRun(std::shared_ptr<store::Store> store, const store::NewRun& run)
    : store_(std::move(store)), id_(store_->create_run(run)) {}

TrackedRun::TrackedRun(std::shared_ptr<store::Store> store, const std::string& run_id)
    : store_(std::move(store)), id_(run_id) {
  store_->reopen_run(id_);
}

TrackedRun::~TrackedRun() {
  if (ended_) return;
  const auto status = interrupt_requested() ? store::RunStatus::kKilled : store::RunStatus::kFailed;
  try {
    store_->end_run(id_, status);
  } catch (const std::exception& e) {
    spdlog::warn("tracking: could not mark run {} {}: {}", id_, store::to_string(status), e.what());
  }
}

void TrackedRun::log_metrics(const std::map<std::string, double>& values, int64_t step) {
  std::vector<store::MetricPoint> points;
  for (const auto& [k, v] : values) points.push_back({k, v, step, 0});
  warn_on_error("metrics", [&] { store_->log_metrics(id_, points); });
}

void TrackedRun::log_artifacts(const std::vector<store::Artifact>& artifacts) {
  warn_on_error("artifacts", [&] {
    for (const auto& a : artifacts) store_->log_artifact(id_, a);
  });
}

void TrackedRun::end(store::RunStatus status) {
  warn_on_error("the end of the run", [&] { store_->end_run(id_, status); });
  ended_ = true;
}

}  // namespace vigil::train
