// `vigil models register|alias|unalias|list|describe|delete|export|import`: the workspace's model registry.
// Versions are immutable; aliases (production, staging, ...) move between them, and `vigil serve --model
// NAME@ALIAS` follows the alias on reload.

#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "cli.h"
#include "table.h"
#include "vigil/core/error.h"
#include "vigil/core/strings.h"
#include "vigil/data/task.h"
#include "vigil/store/json.h"
#include "vigil/store/model_archive.h"
#include "vigil/store/store.h"
#include "vigil/train/tracking.h"

namespace vigil::cli {

namespace {

struct ModelsArgs {
  std::string run = "last", spec, alias, file, name;
  int version = 0;
  train::RegisterOptions reg;
  bool json = false, force = false;
};

std::string aliases_text(const std::map<std::string, int>& aliases) {
  std::vector<std::string> parts;
  for (const auto& [a, v] : aliases) parts.push_back(fmt::format("{}→{}", a, v));
  return parts.empty() ? "-" : join(parts, ", ");
}

std::string metrics_text(const std::map<std::string, double>& m, size_t max_items) {
  std::vector<std::string> parts;
  for (const char* key : {"eval/metrics/mAP50(B)", "eval/metrics/mAP50-95(B)", "eval/accuracy",
                          "metrics/accuracy_top1", "metrics/mAP50(B)", "fitness"}) {
    auto it = m.find(key);
    if (it != m.end() && parts.size() < max_items)
      parts.push_back(fmt::format("{} {}", key, format_metric(it->second)));
  }
  return parts.empty() ? "-" : join(parts, ", ");
}

void print_version(const store::ModelVersion& v) {
  fmt::print("{}/{}{}\n", v.name, v.version,
             v.aliases.empty() ? "" : fmt::format("  @{}", join(v.aliases, " @")));
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"created", format_time_ms(v.created_ms) + " UTC"},
      {"architecture", v.arch},
      {"task", v.task},
      {"run", v.run_id.empty() ? "-" : v.run_id},
      {"dataset", v.dataset_id.empty() ? "-" : v.dataset_id},
      {"source", v.source},
      {"file", v.file},
      {"size", fmt::format("{} bytes", v.size)},
      {"sha256", v.sha256},
      {"description", v.description.empty() ? "-" : v.description}};
  for (const auto& [k, val] : rows) fmt::print("  {:<12}  {}\n", k, val);
  try {
    const auto info = nlohmann::json::parse(v.info_json);
    if (info.contains("class_names"))
      fmt::print("  {:<12}  {}\n", "classes",
                 join(info["class_names"].get<std::vector<std::string>>(), ", "));
    fmt::print("  {:<12}  {}x{}, mean {}, std {}\n", "input", info.value("input_width", 0),
               info.value("input_height", 0), info.value("mean", nlohmann::json::array()).dump(),
               info.value("std", nlohmann::json::array()).dump());
    if (v.task == data::task_name(data::Task::kDetection) && info.contains("postprocess"))
      fmt::print("  {:<12}  {}\n", "thresholds", info["postprocess"].dump());
  } catch (const nlohmann::json::exception&) {
  }
  if (!v.metrics.empty()) {
    fmt::print("  metrics:\n");
    for (const auto& [k, m] : v.metrics) fmt::print("    {:<28}  {}\n", k, format_metric(m));
  }
}

int register_model(const Context& ctx, const ModelsArgs& a) {
  store::Store s(ctx.workspace());
  const auto v = train::register_run_model(s, a.run, a.reg);
  if (a.json) {
    fmt::print("{}\n", store::to_json(v).dump(2));
    return 0;
  }
  fmt::print("registered {}/{} from run {} ({}){}\n", v.name, v.version, v.run_id.substr(0, 8), v.source,
             a.reg.alias.empty() ? "" : fmt::format(", alias {} -> {}", a.reg.alias, v.version));
  fmt::print("serve it with: vigil serve --model {}{}\n", v.name,
             a.reg.alias.empty() ? fmt::format("/{}", v.version) : "@" + a.reg.alias);
  return 0;
}

int set_alias(const Context& ctx, const ModelsArgs& a) {
  store::Store s(ctx.workspace());
  const int previous = s.set_alias(a.name, a.alias, a.version);
  if (previous == a.version) {
    fmt::print("{}@{} already points at version {}\n", a.name, a.alias, a.version);
  } else if (previous > 0) {
    fmt::print("{}@{} moved from version {} to {}\n", a.name, a.alias, previous, a.version);
  } else {
    fmt::print("{}@{} -> version {}\n", a.name, a.alias, a.version);
  }
  return 0;
}

int remove_alias(const Context& ctx, const ModelsArgs& a) {
  store::Store s(ctx.workspace());
  s.delete_alias(a.name, a.alias);
  fmt::print("removed alias {}@{}\n", a.name, a.alias);
  return 0;
}

int list_models(const Context& ctx, const ModelsArgs& a) {
  store::Store s(ctx.workspace());
  const auto models = s.list_models();
  if (a.json) {
    auto j = nlohmann::json::array();
    for (const auto& m : models) j.push_back(store::to_json(m));
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  if (models.empty()) {
    fmt::print("no registered models (register one with `vigil models register RUN --name NAME`)\n");
    return 0;
  }
  Table t({"NAME", "VERSIONS", "LATEST", "ALIASES", "UPDATED", "LATEST METRICS"});
  for (const auto& m : models) {
    std::string metrics = "-";
    if (m.latest_version > 0)
      metrics = metrics_text(s.get_model_version(m.name, m.latest_version).metrics, 2);
    t.add({m.name, std::to_string(m.version_count), std::to_string(m.latest_version), aliases_text(m.aliases),
           format_time_ms(m.updated_ms), metrics});
  }
  fmt::print("{}", t.str());
  return 0;
}

int describe(const Context& ctx, const ModelsArgs& a) {
  store::Store s(ctx.workspace());
  const bool one = a.spec.find_first_of("@/:") != std::string::npos;
  std::vector<store::ModelVersion> versions =
      one ? std::vector<store::ModelVersion>{s.resolve_model(a.spec)} : s.list_versions(a.spec);
  if (a.json) {
    auto j = nlohmann::json::array();
    for (const auto& v : versions) j.push_back(store::to_json(v));
    fmt::print("{}\n", (one ? j.at(0) : j).dump(2));
    return 0;
  }
  if (!one) {
    Table t({"VERSION", "ALIASES", "CREATED", "ARCH", "RUN", "DATASET", "METRICS"});
    for (const auto& v : versions)
      t.add({std::to_string(v.version), v.aliases.empty() ? "-" : join(v.aliases, ", "),
             format_time_ms(v.created_ms), v.arch, v.run_id.substr(0, 8), v.dataset_id.substr(0, 12),
             metrics_text(v.metrics, 2)});
    fmt::print("{}: {} version(s)\n{}", a.spec, versions.size(), t.str());
    return 0;
  }
  print_version(versions.front());
  return 0;
}

int delete_version(const Context& ctx, const ModelsArgs& a) {
  store::Store s(ctx.workspace());
  const auto ref = store::parse_model_ref(a.spec);
  VIGIL_CHECK(ref.version > 0 && ref.alias.empty(), "expected NAME/VERSION to delete (e.g. guns/2), got '{}'",
              a.spec);
  s.delete_model_version(ref.name, ref.version, a.force);
  fmt::print("deleted {}/{}\n", ref.name, ref.version);
  return 0;
}

int export_version(const Context& ctx, const ModelsArgs& a) {
  store::Store s(ctx.workspace());
  const auto v = store::export_model_version(s, a.spec, a.file);
  fmt::print("exported {}/{} to {} (model sha256 {})\n", v.name, v.version, a.file, v.sha256);
  return 0;
}

int import_version(const Context& ctx, const ModelsArgs& a) {
  store::Store s(ctx.workspace());
  const auto r = store::import_model_archive(s, a.file, a.name);
  if (r.already_present) {
    fmt::print("{} is already registered here as {}/{} (same sha256 {}): nothing imported\n", r.original,
               r.version.name, r.version.version, r.version.sha256);
  } else {
    fmt::print("imported {} as {}/{} (sha256 {} verified)\n", r.original, r.version.name, r.version.version,
               r.version.sha256);
  }
  return 0;
}

}  // namespace

void register_models(CLI::App& app, Context& ctx) {
  static ModelsArgs a;
  auto* models =
      app.add_subcommand("models", "model registry: register, alias, list, describe, delete, export, import");
  models->require_subcommand(1);
  auto action = [&ctx](CLI::App* sub, int (*fn)(const Context&, const ModelsArgs&), bool writes) {
    sub->callback([&ctx, fn, writes] {
      ctx.uses_workspace = writes;
      ctx.action = [&ctx, fn] { return fn(ctx, a); };
    });
  };
  auto* reg = models->add_subcommand("register", "register a finished training run's model as a new version");
  reg->add_option("run", a.run, "training run: id, id prefix, name or 'last'")->capture_default_str();
  reg->add_option("--name,-n", a.reg.name, "registered model name")->required();
  reg->add_option("--alias", a.reg.alias, "also point this alias at the new version");
  reg->add_option("--description", a.reg.description, "free text kept with the version");
  reg->add_flag("--json", a.json, "JSON output");
  action(reg, register_model, true);

  auto* alias = models->add_subcommand("alias", "point an alias (production, staging, ...) at a version");
  alias->add_option("name", a.name, "registered model")->required();
  alias->add_option("version", a.version, "version number")->required();
  alias->add_option("alias", a.alias, "alias to set or move")->required();
  action(alias, set_alias, true);

  auto* unalias = models->add_subcommand("unalias", "remove an alias");
  unalias->add_option("name", a.name, "registered model")->required();
  unalias->add_option("alias", a.alias, "alias to remove")->required();
  action(unalias, remove_alias, true);

  auto* list = models->add_subcommand("list", "registered models with their versions and aliases");
  list->add_flag("--json", a.json, "JSON output");
  action(list, list_models, false);

  auto* desc =
      models->add_subcommand("describe", "a model's versions (NAME) or one version (NAME/k, NAME@alias)");
  desc->add_option("model", a.spec, "NAME, NAME/k, NAME@alias or NAME@latest")->required();
  desc->add_flag("--json", a.json, "JSON output");
  action(desc, describe, false);

  auto* del = models->add_subcommand("delete", "delete a version (an aliased one needs --force)");
  del->add_option("version", a.spec, "NAME/k")->required();
  del->add_flag("--force", a.force, "delete even when aliases point at it (they are removed)");
  action(del, delete_version, true);

  auto* exp = models->add_subcommand("export", "write a version to one file (tar: model + record)");
  exp->add_option("model", a.spec, "NAME/k or NAME@alias")->required();
  exp->add_option("file", a.file, "output file (.tar)")->required();
  action(exp, export_version, false);

  auto* imp = models->add_subcommand("import", "register a version from an exported file (hash verified)");
  imp->add_option("file", a.file, "file written by `vigil models export`")->required();
  imp->add_option("--name", a.name, "register under this name (default: the exported one)");
  action(imp, import_version, true);
}

}  // namespace vigil::cli
