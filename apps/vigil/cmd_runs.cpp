// `vigil runs list|show|compare|export|delete`: the runs `vigil train` and `vigil evaluate` recorded in the
// workspace's tracking store.

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "cli.h"
#include "table.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/store/json.h"
#include "vigil/store/mlflow_export.h"
#include "vigil/store/store.h"

namespace vigil::cli {

namespace {

namespace fs = std::filesystem;

struct RunsArgs {
  std::string experiment, status, order_by = "start_time DESC", mlflow_dir;
  bool no_artifacts = false;
  std::vector<std::string> filters, refs, metric_columns;
  int limit = 20, page = 1;
  bool json = false, all = false, files = false;
};

/// Metrics worth a column when the user names none: the ones training and evaluation judge by.
const std::vector<std::string> kPreferredMetrics = {"metrics/accuracy_top1",
                                                    "fitness",
                                                    "metrics/mAP50(B)",
                                                    "metrics/mAP50-95(B)",
                                                    "mAP50",
                                                    "mAP50-95",
                                                    "accuracy",
                                                    "val/loss"};

std::vector<std::string> metric_columns(const RunsArgs& a, const std::vector<store::RunRecord>& runs) {
  if (!a.metric_columns.empty()) return a.metric_columns;
  std::vector<std::string> out;
  for (const auto& key : kPreferredMetrics) {
    const bool present =
        std::any_of(runs.begin(), runs.end(), [&](const auto& r) { return r.latest_metrics.count(key); });
    if (present && out.size() < 3) out.push_back(key);
  }
  return out;
}

double duration_s(const store::RunInfo& i) {
  return i.end_ms > 0 ? (i.end_ms - i.start_ms) / 1000.0 : -1;
}

int list_runs(const Context& ctx, const RunsArgs& a) {
  store::Store s(ctx.workspace());
  store::RunFilter f;
  f.experiment = a.experiment;
  if (!a.status.empty()) f.status = store::parse_run_status(a.status);
  f.conditions = a.filters;
  f.order_by = a.order_by;
  f.limit = a.limit;
  VIGIL_CHECK(a.page >= 1, "expected --page >= 1, got {}", a.page);
  f.offset = (a.page - 1) * a.limit;
  const auto page = s.search_runs(f);
  if (a.json) {
    nlohmann::json runs = nlohmann::json::array();
    for (const auto& r : page.runs) runs.push_back(store::to_json(r));
    fmt::print("{}\n", nlohmann::json{{"runs", runs}, {"total", page.total}, {"offset", f.offset}}.dump(2));
    return 0;
  }
  if (page.total == 0) {
    fmt::print("no runs{} (runs are recorded by `vigil train` and `vigil evaluate`)\n",
               f.conditions.empty() && !f.status && f.experiment.empty() ? "" : " match");
    return 0;
  }
  const auto metrics = metric_columns(a, page.runs);
  std::vector<std::string> headers = {"ID", "NAME", "EXPERIMENT", "KIND", "STATUS", "STARTED", "DURATION"};
  headers.insert(headers.end(), metrics.begin(), metrics.end());
  Table t(headers);
  for (const auto& r : page.runs) {
    std::vector<std::string> row = {r.info.id.substr(0, 8),
                                    r.info.name,
                                    r.info.experiment,
                                    r.info.kind,
                                    store::to_string(r.info.status),
                                    format_time_ms(r.info.start_ms),
                                    format_duration_s(duration_s(r.info))};
    for (const auto& m : metrics) {
      auto it = r.latest_metrics.find(m);
      row.push_back(it == r.latest_metrics.end() ? "-" : format_metric(it->second));
    }
    t.add(row);
  }
  fmt::print("{}", t.str());
  const int64_t last = f.offset + static_cast<int64_t>(page.runs.size());
  fmt::print("runs {}-{} of {}{}\n", f.offset + 1, last, page.total,
             last < page.total ? fmt::format("; next: --page {}", a.page + 1) : "");
  return 0;
}

void print_section(const std::string& title, const std::map<std::string, std::string>& kv) {
  if (kv.empty()) return;
  fmt::print("\n{}:\n", title);
  size_t w = 0;
  for (const auto& [k, v] : kv) w = std::max(w, k.size());
  for (const auto& [k, v] : kv) fmt::print("  {:<{}}  {}\n", k, w, v);
}

int show_run(const Context& ctx, const RunsArgs& a) {
  store::Store s(ctx.workspace());
  const auto r = s.get_run(a.refs.at(0));
  if (a.json) {
    auto j = store::to_json(r, true);
    nlohmann::json history = nlohmann::json::object();
    for (const auto& key : s.metric_keys(r.info.id))
      history[key] = store::to_json(s.metric_history(r.info.id, key));
    j["metric_history"] = history;
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  const auto& i = r.info;
  std::map<std::string, std::string> info = {
      {"id", i.id},
      {"name", i.name},
      {"experiment", i.experiment},
      {"kind", i.kind},
      {"status", store::to_string(i.status)},
      {"started", format_time_ms(i.start_ms) + " UTC"},
      {"ended", i.end_ms > 0 ? format_time_ms(i.end_ms) + " UTC" : "-"},
      {"duration", format_duration_s(duration_s(i))},
      {"dataset", i.dataset_id.empty() ? "-" : i.dataset_id},
      {"parent run", i.parent_id.empty() ? "-" : i.parent_id},
      {"folder", i.run_dir.empty() ? "-" : i.run_dir},
      {"code",
       i.code.commit.empty() ? "(not in a git checkout)" : i.code.commit + (i.code.dirty ? " (dirty)" : "")},
      {"vigil", i.code.vigil.empty() ? "-" : i.code.vigil},
      {"host", fmt::format("{} (pid {})", i.host, i.pid)}};
  fmt::print("run {}\n", i.id);
  print_section("info", info);
  print_section("params", r.params);
  std::map<std::string, std::string> metrics;
  for (const auto& [k, v] : r.latest_metrics) {
    const auto hist = s.metric_history(i.id, k);
    metrics[k] = hist.size() > 1 ? fmt::format("{}  (step {}, {} points)", format_metric(v), hist.back().step,
                                               hist.size())
                                 : format_metric(v);
  }
  print_section("metrics", metrics);
  print_section("tags", r.tags);
  if (!r.artifacts.empty()) {
    fmt::print("\nartifacts:\n");
    Table t({"PATH", "KIND", "SIZE", "SHA256"});
    for (const auto& x : r.artifacts) t.add({x.path, x.kind, std::to_string(x.size), x.sha256.substr(0, 16)});
    fmt::print("{}", t.str());
  }
  return 0;
}

/// Marks the best value of a row of metrics: '*' on the highest (lowest for losses).
std::vector<std::string> mark_best(const std::string& key, const std::vector<double>& values) {
  const bool lower = key.find("loss") != std::string::npos;
  int best = -1;
  for (size_t i = 0; i < values.size(); ++i) {
    if (std::isnan(values[i])) continue;
    if (best < 0 || (lower ? values[i] < values[best] : values[i] > values[best])) best = static_cast<int>(i);
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < values.size(); ++i)
    out.push_back(format_metric(values[i]) + (static_cast<int>(i) == best && values.size() > 1 ? " *" : ""));
  return out;
}

int compare_runs(const Context& ctx, const RunsArgs& a) {
  VIGIL_CHECK(a.refs.size() >= 2, "expected at least two runs to compare, got {}", a.refs.size());
  store::Store s(ctx.workspace());
  std::vector<store::RunRecord> runs;
  for (const auto& ref : a.refs) runs.push_back(s.get_run(ref));
  std::set<std::string> param_keys, metric_keys;
  for (const auto& r : runs) {
    for (const auto& [k, v] : r.params) param_keys.insert(k);
    for (const auto& [k, v] : r.latest_metrics) metric_keys.insert(k);
  }
  nlohmann::json j = {{"runs", nlohmann::json::array()},
                      {"params", nlohmann::json::object()},
                      {"metrics", nlohmann::json::object()}};
  std::vector<std::string> headers = {""};
  for (const auto& r : runs) {
    headers.push_back(fmt::format("{} ({})", r.info.name, r.info.id.substr(0, 8)));
    j["runs"].push_back(r.info.id);
  }
  Table params(headers);
  int same = 0;
  for (const auto& k : param_keys) {
    std::vector<std::string> row = {k};
    std::set<std::string> distinct;
    for (const auto& r : runs) {
      auto it = r.params.find(k);
      row.push_back(it == r.params.end() ? "-" : it->second);
      distinct.insert(row.back());
    }
    if (distinct.size() == 1 && !a.all) {
      ++same;
      continue;
    }
    j["params"][k] = std::vector<std::string>(row.begin() + 1, row.end());
    params.add(row);
  }
  Table metrics(headers);
  for (const auto& k : metric_keys) {
    std::vector<double> values;
    for (const auto& r : runs) {
      auto it = r.latest_metrics.find(k);
      values.push_back(it == r.latest_metrics.end() ? std::nan("") : it->second);
    }
    auto row = mark_best(k, values);
    row.insert(row.begin(), k);
    metrics.add(row);
    nlohmann::json col = nlohmann::json::array();
    for (double v : values) col.push_back(std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v));
    j["metrics"][k] = col;
  }
  if (a.json) {
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  fmt::print("params{}:\n{}", a.all ? "" : fmt::format(" that differ ({} equal, --all shows them)", same),
             params.empty() ? "  (none differ)\n" : params.str());
  fmt::print("\nmetrics (latest; * = best):\n{}", metrics.empty() ? "  (none)\n" : metrics.str());
  return 0;
}

int delete_runs(const Context& ctx, const RunsArgs& a) {
  store::Store s(ctx.workspace());
  for (const auto& ref : a.refs) {
    const auto r = s.get_run(ref);
    s.delete_run(r.info.id);
    std::string files;
    if (a.files && !r.info.run_dir.empty() && fs::is_directory(r.info.run_dir)) {
      std::error_code ec;
      fs::remove_all(r.info.run_dir, ec);
      if (ec)
        throw IoError(fmt::format("run {} deleted, but its folder {} could not be removed: {}", r.info.id,
                                  r.info.run_dir, ec.message()));
      files = fmt::format(" and its folder {}", r.info.run_dir);
    }
    fmt::print("deleted run {} ({}){}\n", r.info.id, r.info.name, files);
  }
  return 0;
}

int export_runs(const Context& ctx, const RunsArgs& a) {
  store::Store s(ctx.workspace());
  store::MlflowExportOptions o;
  o.filter.experiment = a.experiment;
  if (!a.status.empty()) o.filter.status = store::parse_run_status(a.status);
  o.filter.conditions = a.filters;
  o.artifacts = !a.no_artifacts;
  const auto r = store::export_mlflow(s, a.mlflow_dir, o);
  for (const auto& why : r.skipped) fmt::print(stderr, "skipped artifact {}\n", why);
  fmt::print(
      "wrote {} run(s) of {} experiment(s) to {} in MLflow's file-store layout: {} metric points, {} "
      "artifacts{}\nbrowse with: mlflow ui --backend-store-uri {}\n",
      r.runs, r.experiments, a.mlflow_dir, r.metric_points, r.artifacts,
      r.skipped.empty() ? "" : fmt::format(", {} skipped", r.skipped.size()),
      to_utf8(fs::absolute(a.mlflow_dir)));
  return 0;
}

}  // namespace

void register_runs(CLI::App& app, Context& ctx) {
  static RunsArgs a;
  auto* runs =
      app.add_subcommand("runs", "tracked runs of train and evaluate: list, show, compare, export, delete");
  runs->require_subcommand(1);
  auto* list = runs->add_subcommand("list", "runs, newest first, with filters, ordering and paging");
  list->add_option("--experiment,-e", a.experiment, "only this experiment");
  list->add_option("--status", a.status, "running, finished, failed or killed");
  list->add_option(
      "--filter,-f", a.filters,
      "condition, repeatable: 'metrics.`metrics/accuracy_top1` > 0.9', 'params.optimizer.lr = 0.001', "
      "'kind = train', \"name LIKE 'mask%'\"");
  list->add_option("--order-by", a.order_by, "start_time, name, metrics.KEY, params.KEY, with ASC or DESC")
      ->capture_default_str();
  list->add_option("--metric,-m", a.metric_columns, "metric columns to show (repeatable)");
  list->add_option("--limit", a.limit, "runs per page")->capture_default_str();
  list->add_option("--page", a.page, "page number, from 1")->capture_default_str();
  list->add_flag("--json", a.json, "JSON output");
  list->callback([&ctx] { ctx.action = [&ctx] { return list_runs(ctx, a); }; });

  auto* show = runs->add_subcommand("show", "one run: info, params, metrics, tags, artifacts");
  show->add_option("run", a.refs, "run id, id prefix, name or 'last'")->required()->expected(1);
  show->add_flag("--json", a.json, "JSON output, with every metric's history");
  show->callback([&ctx] { ctx.action = [&ctx] { return show_run(ctx, a); }; });

  auto* compare = runs->add_subcommand("compare", "params that differ and metrics side by side");
  compare->add_option("runs", a.refs, "two or more runs")->required();
  compare->add_flag("--all", a.all, "also params that are equal");
  compare->add_flag("--json", a.json, "JSON output");
  compare->callback([&ctx] { ctx.action = [&ctx] { return compare_runs(ctx, a); }; });

  auto* exp = runs->add_subcommand("export", "write runs in MLflow's file-store layout (mlruns/)");
  exp->add_option("--mlflow", a.mlflow_dir, "output folder (an MLflow backend store URI)")->required();
  exp->add_option("--experiment,-e", a.experiment, "only this experiment");
  exp->add_option("--status", a.status, "only runs with this status");
  exp->add_option("--filter,-f", a.filters, "condition, repeatable (as for `runs list`)");
  exp->add_flag("--no-artifacts", a.no_artifacts, "params, metrics and tags only; no files");
  exp->callback([&ctx] { ctx.action = [&ctx] { return export_runs(ctx, a); }; });

  auto* del = runs->add_subcommand("delete", "delete runs from the store (and their folders with --files)");
  del->add_option("runs", a.refs, "runs to delete")->required();
  del->add_flag("--files", a.files, "also remove each run's folder");
  del->callback([&ctx] {
    ctx.uses_workspace = true;
    ctx.action = [&ctx] { return delete_runs(ctx, a); };
  });
}

}  // namespace vigil::cli
