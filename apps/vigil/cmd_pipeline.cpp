// `vigil repro`, `vigil status`, `vigil dag`, `vigil params diff`, `vigil metrics show|diff`: dvc.yaml
// pipelines, DVC-compatible (same dvc.lock, same hashes, same wording), without Python.

#include <fmt/core.h>
#include <spdlog/spdlog.h>

#include <cstdio>

#include "cli.h"
#include "vigil/pipeline/params_metrics.h"
#include "vigil/pipeline/repro.h"

namespace vigil::cli {

namespace {

struct PipelineArgs {
  std::string file = "dvc.yaml";
  std::vector<std::string> stages, revs;
  bool force = false, dry = false, single_item = false;
  bool dot = false, mermaid = false;
  bool all = false, json = false, deps_only = false;
};

void print_line(const std::string& line) {
  fmt::print("{}\n", line);
  std::fflush(stdout);  // stage commands write to the same stdout: keep the order
}

int run_repro(const PipelineArgs& a) {
  pipeline::ReproOptions opt;
  opt.file = a.file;
  opt.targets = a.stages;
  opt.force = a.force;
  opt.dry = a.dry;
  opt.single_item = a.single_item;
  auto result = pipeline::reproduce(opt, print_line);
  if (result.ran.empty() && !a.dry) print_line("Data and pipelines are up to date.");
  return 0;
}

int run_status(const PipelineArgs& a) {
  fmt::print("{}", pipeline::format_status(pipeline::pipeline_status(a.file)));
  return 0;
}

int run_dag(const PipelineArgs& a) {
  VIGIL_CHECK(!(a.dot && a.mermaid), "expected at most one of --dot and --mermaid, got both");
  pipeline::Project project(a.file);
  const auto& g = project.graph();
  fmt::print("{}", a.dot ? g.to_dot() : a.mermaid ? g.to_mermaid() : g.to_text());
  return 0;
}

pipeline::DiffOptions diff_options(const PipelineArgs& a) {
  VIGIL_CHECK(a.revs.size() <= 2, "expected at most two revisions (A_REV [B_REV]), got {}", a.revs.size());
  pipeline::DiffOptions opt;
  opt.file = a.file;
  if (!a.revs.empty()) opt.a_rev = a.revs[0];
  if (a.revs.size() > 1) opt.b_rev = a.revs[1];
  opt.all = a.all;
  opt.deps_only = a.deps_only;
  return opt;
}

int print_diff(const pipeline::DiffResult& diff, bool metrics, bool json) {
  for (const auto& note : diff.notes) spdlog::warn("{}", note);
  if (json) {
    fmt::print("{}\n", pipeline::diff_to_json(diff, metrics).dump(2));
  } else {
    fmt::print("{}", pipeline::format_diff(diff, metrics));
  }
  return 0;
}

int run_metrics_show(const PipelineArgs& a) {
  const auto files = pipeline::metrics_show(a.file);
  for (const auto& f : files)
    if (!f.error.empty()) spdlog::warn("{}: {}", f.path, f.error);
  if (a.json) {
    fmt::print("{}\n", pipeline::metrics_to_json(files).dump(2));
  } else {
    fmt::print("{}", pipeline::format_metrics(files));
  }
  return 0;
}

CLI::Option* add_file(CLI::App* sub, PipelineArgs& a) {
  return sub->add_option("--file", a.file, "pipeline file")->capture_default_str();
}

}  // namespace

void register_pipeline(CLI::App& app, Context& ctx) {
  static PipelineArgs a;
  auto set_action = [&ctx](CLI::App* sub, std::function<int()> fn) {
    sub->callback([&ctx, fn] { ctx.action = fn; });
  };

  auto* repro = app.add_subcommand("repro", "run the stages of dvc.yaml that changed, in dependency order");
  repro->add_option("stages", a.stages, "stages to reproduce with their upstream (default: all)");
  repro->add_flag("--force,-f", a.force, "run even the stages that did not change");
  repro->add_flag("--dry", a.dry, "print what would run; run and write nothing");
  repro->add_flag("--single-item,-s", a.single_item, "only the named stages, not their upstream");
  add_file(repro, a);
  set_action(repro, [] { return run_repro(a); });

  auto* status =
      app.add_subcommand("status", "stages whose deps, params, outs or command changed since dvc.lock");
  add_file(status, a);
  set_action(status, [] { return run_status(a); });

  auto* dag = app.add_subcommand("dag", "the stage graph of dvc.yaml");
  dag->add_flag("--dot", a.dot, "Graphviz output");
  dag->add_flag("--mermaid", a.mermaid, "Mermaid flowchart output");
  add_file(dag, a);
  set_action(dag, [] { return run_dag(a); });

  auto* params = app.add_subcommand("params", "pipeline parameters");
  params->require_subcommand(1);
  auto* pdiff =
      params->add_subcommand("diff", "parameters changed between A_REV (default HEAD) and B_REV/workspace");
  pdiff->add_option("revs", a.revs, "A_REV [B_REV]");
  pdiff->add_flag("--all", a.all, "show unchanged parameters too");
  pdiff->add_flag("--deps", a.deps_only, "only parameters that stages depend on");
  pdiff->add_flag("--json", a.json, "JSON output");
  add_file(pdiff, a);
  set_action(pdiff, [] { return print_diff(pipeline::params_diff(diff_options(a)), false, a.json); });

  auto* metrics = app.add_subcommand("metrics", "pipeline metrics");
  metrics->require_subcommand(1);
  auto* mshow = metrics->add_subcommand("show", "the metrics files of the pipeline");
  mshow->add_flag("--json", a.json, "JSON output");
  add_file(mshow, a);
  set_action(mshow, [] { return run_metrics_show(a); });
  auto* mdiff =
      metrics->add_subcommand("diff", "metrics changed between A_REV (default HEAD) and B_REV/workspace");
  mdiff->add_option("revs", a.revs, "A_REV [B_REV]");
  mdiff->add_flag("--all", a.all, "show unchanged metrics too");
  mdiff->add_flag("--json", a.json, "JSON output");
  add_file(mdiff, a);
  set_action(mdiff, [] { return print_diff(pipeline::metrics_diff(diff_options(a)), true, a.json); });
}

}  // namespace vigil::cli
