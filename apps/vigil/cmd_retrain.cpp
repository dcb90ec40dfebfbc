// `vigil retrain`: champion/challenger. Trains a challenger from a config, registers it as a new version,
// scores it and the current champion (the model's alias, "production" by default) on the same validation
// split, and moves the alias to the challenger only when it is better by at least --min-delta. Each step is
// this binary run as a child process (train, models register, evaluate, models alias), so a retrain started
// by the server is isolated from it and its memory goes with it. The decision and both scores go to
// JOB/result.json.

#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>

#include "cli.h"
#include "vigil/core/clock.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"
#include "vigil/pipeline/process.h"

namespace vigil::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct RetrainArgs {
  std::string config, model, alias = "production", metric = "auto", run, out;
  std::vector<std::string> sets;
  double min_delta = 0;
  bool json = false;
};

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct Steps {
  fs::path exe, workspace, job;
  int threads = 0;

  std::string prefix() const {
    std::string p = quoted(exe.string()) + " --workspace " + quoted(workspace.string());
    if (threads > 0) p += fmt::format(" --threads {}", threads);
    return p;
  }
  /// A step whose output the user sees (training, evaluation), all on stderr: stdout is kept for the result.
  void run(const std::string& what, const std::string& args) const {
    fmt::print(stderr, "retrain: {}\n", what);
    const int rc = pipeline::run_shell({prefix() + " " + args + " 1>&2", {}, {}, {}});
    if (rc != 0)
      throw Error(ErrorCode::kIo,
                  fmt::format("retrain: {} failed (exit {}); see the output above", what, rc));
  }
  /// A step whose JSON answer is needed: {exit status, stdout}.
  std::pair<int, std::string> capture(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {exe.string(), "--workspace", workspace.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return pipeline::run_capture(argv, {});
  }
};

/// The comparison metric from an evaluation's metrics.json: accuracy (classifiers), fitness (detectors:
/// 0.1 AP50 + 0.9 AP on COCO's AP, eval::detection_fitness, written by `vigil evaluate`), or a key asked for
/// by name.
double metric_of(const fs::path& metrics_file, const std::string& metric, std::string* used) {
  const json m = json::parse(read_file(metrics_file));
  std::string key = metric;
  if (metric == "auto") key = m.contains("accuracy") ? "accuracy" : "fitness";
  *used = key;
  if (key == "fitness") {
    VIGIL_CHECK(m.contains("fitness") && m["fitness"].is_number(),
                "{}: expected detection metrics for fitness", metrics_file.string());
    return m["fitness"].get<double>();
  }
  for (const std::string& k : {key, "metrics/" + key + "(B)"})
    if (m.contains(k) && m[k].is_number()) return m[k].get<double>();
  throw InvalidArgument(fmt::format("--metric: {} has no '{}'", metrics_file.string(), key));
}

int run_retrain(const Context& ctx, const RetrainArgs& a) {
  VIGIL_CHECK(fs::is_regular_file(a.config), "--config: expected a training config file, got '{}'", a.config);
  const std::string stamp = utc_now().substr(0, 19);
  std::string compact;
  for (char c : stamp)
    if (std::isdigit(static_cast<unsigned char>(c))) compact += c;
  const std::string run = a.run.empty() ? "retrain-" + compact : a.run;
  const Workspace ws = ctx.workspace();
  Steps steps{pipeline::self_exe_dir() / "vigil", ws.root(),
              a.out.empty() ? ws.root() / "jobs" / run : fs::path(a.out), ctx.threads};
  if (!fs::exists(steps.exe)) steps.exe = fs::read_symlink("/proc/self/exe");
  ensure_dir(steps.job);
  json result = {{"run", run},           {"model", a.model},  {"alias", a.alias}, {"min_delta", a.min_delta},
                 {"started", utc_now()}, {"state", "running"}};
  const auto save = [&] { write_file_atomic(steps.job / "result.json", result.dump(2) + "\n"); };
  save();
  try {
    std::string train = fmt::format("train --config {} --name {}", quoted(a.config), quoted(run));
    for (const auto& s : a.sets) train += " --set " + quoted(s);
    steps.run("training the challenger (run " + run + ")", train);

    auto [rc, out] = steps.capture({"models", "register", run, "--name", a.model, "--json"});
    const json registered = json::parse(out, nullptr, false);
    if (rc != 0 || !registered.contains("version"))
      throw Error(ErrorCode::kIo,
                  fmt::format("retrain: registering run {} as {} failed (exit {})", run, a.model, rc));
    const int challenger = registered["version"].get<int>();
    result["challenger"] = {{"version", challenger}};

    const fs::path ch_eval = steps.job / "challenger";
    steps.run(fmt::format("scoring the challenger {}/{}", a.model, challenger),
              fmt::format("evaluate --run {} --split val --no-track --gallery 0 -o {}", quoted(run),
                          quoted(ch_eval.string())));
    std::string used;
    const double ch_score = metric_of(ch_eval / "metrics.json", a.metric, &used);
    result["metric"] = used;
    result["challenger"]["score"] = ch_score;

    auto [drc, dout] = steps.capture({"models", "describe", a.model + "@" + a.alias, "--json"});
    const json champion = json::parse(dout, nullptr, false);
    bool promote = true;
    std::string reason;
    if (drc != 0 || !champion.is_object() || !champion.contains("file")) {
      reason = fmt::format("no {}@{} yet: the first version becomes the champion", a.model, a.alias);
      result["champion"] = nullptr;
    } else {
      const int champion_version = champion.value("version", 0);
      const fs::path cp_eval = steps.job / "champion";
      // The champion is scored on the challenger's dataset and split: the same images for both.
      steps.run(
          fmt::format("scoring the champion {}/{} on the same split", a.model, champion_version),
          fmt::format("evaluate --run {} --model {} --split val --no-track --gallery 0 -o {}", quoted(run),
                      quoted(champion["file"].get<std::string>()), quoted(cp_eval.string())));
      const double cp_score = metric_of(cp_eval / "metrics.json", a.metric, &used);
      result["champion"] = {{"version", champion_version}, {"score", cp_score}};
      promote = ch_score > cp_score + a.min_delta;
      reason = fmt::format("{} {:.4f} vs the champion's {:.4f} (promote above {:.4f})", used, ch_score,
                           cp_score, cp_score + a.min_delta);
    }
    if (promote) {
      auto [arc, aout] = steps.capture({"models", "alias", a.model, std::to_string(challenger), a.alias});
      if (arc != 0)
        throw Error(ErrorCode::kIo,
                    fmt::format("retrain: moving {}@{} failed (exit {})", a.model, a.alias, arc));
    }
    result["state"] = promote ? "promoted" : "kept";
    result["reason"] = reason;
  } catch (const std::exception& e) {
    result["state"] = "failed";
    result["error"] = e.what();
    result["finished"] = utc_now();
    save();
    throw;
  }
  result["finished"] = utc_now();
  save();
  if (a.json) {
    fmt::print("{}\n", result.dump(2));
  } else {
    const bool promoted = result["state"] == "promoted";
    fmt::print("{} {}/{}: {}\n", promoted ? "promoted" : "kept the champion; registered", a.model,
               result["challenger"]["version"].get<int>(), result["reason"].get<std::string>());
    if (promoted)
      fmt::print("{}@{} -> version {}\n", a.model, a.alias, result["challenger"]["version"].get<int>());
    fmt::print("result {}\n", (steps.job / "result.json").string());
  }
  return 0;
}

}  // namespace

void register_retrain(CLI::App& app, Context& ctx) {
  static RetrainArgs a;
  auto* sub = app.add_subcommand(
      "retrain",
      "train a challenger, score it against the champion on the same split, promote only a better one");
  sub->add_option("--config,-c", a.config, "training config (as `vigil train --config`)")->required();
  sub->add_option("--model,-m", a.model, "registered model name the challenger is added to")->required();
  sub->add_option("--alias", a.alias, "the champion's alias, moved on promotion")->capture_default_str();
  sub->add_option("--set", a.sets,
                  "training option override key=value (repeatable), e.g. data.dataset=masks@3");
  sub->add_option("--metric", a.metric,
                  "comparison metric: auto (accuracy / detector fitness), accuracy, fitness, mAP50, mAP50-95")
      ->capture_default_str();
  sub->add_option("--min-delta", a.min_delta, "promote only when the challenger beats the champion by more")
      ->capture_default_str();
  sub->add_option("--run", a.run, "name of the training run (default retrain-<UTC time>)");
  sub->add_option("-o,--out", a.out,
                  "job folder for result.json and both evaluations (default WORKSPACE/jobs/RUN)");
  sub->add_flag("--json", a.json, "print result.json");
  sub->callback([&ctx] {
    ctx.uses_workspace = true;
    ctx.action = [&ctx] { return run_retrain(ctx, a); };
  });
}

}  // namespace vigil::cli
