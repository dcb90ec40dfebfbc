// `vigil evaluate`: score a model on a dataset split (--model M --data D, or --run NAME for a training run),
// or a COCO results file against COCO ground truth (--gt GT.json --detections RESULTS.json). Writes
// metrics.json, plots and report.html into the output folder and prints the summary table.

#include <fmt/core.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>

#include "cli.h"
#include "evaluate_runner.h"
#include "vigil/core/clock.h"
#include "vigil/core/fs.h"
#include "vigil/data/split.h"
#include "vigil/data/store.h"
#include "vigil/model/clip_predict.h"
#include "vigil/model/model_file.h"
#include "vigil/train/tracking.h"
#include "vigil/train/train_options.h"

namespace vigil::cli {

namespace {
namespace fs = std::filesystem;

struct EvaluateArgs {
  std::string model, arch, data, run, gt, detections, out, experiment, name;
  bool track = true;
};

/// A run folder: by the tracking store (id, prefix, name, `last`), else a folder or <workspace>/runs/<name>
/// (runs trained before tracking), `last` being the most recently written one.
fs::path resolve_run(const Workspace& ws, const std::string& name) {
  if (!fs::is_directory(name)) {
    try {
      store::Store s(ws);
      const auto run = s.get_run(name == "last" ? "last:train" : name);
      if (run.info.kind == "train" && fs::is_directory(run.info.run_dir)) return run.info.run_dir;
    } catch (const NotFound&) {
    }
  }
  const fs::path runs = ws.root() / "runs";
  if (name != "last") {
    const fs::path dir = fs::exists(name) ? fs::path(name) : runs / name;
    if (!fs::is_directory(dir))
      throw NotFound(fmt::format("no training run '{}' in {}", name, to_utf8(runs)));
    return dir;
  }
  fs::path best;
  fs::file_time_type newest{};
  if (fs::is_directory(runs)) {
    for (const auto& e : fs::directory_iterator(runs)) {
      const fs::path marker = e.path() / "results.csv";
      if (!fs::exists(marker)) continue;
      const auto t = fs::last_write_time(marker);
      if (best.empty() || t > newest) best = e.path(), newest = t;
    }
  }
  if (best.empty())
    throw NotFound(fmt::format("no training run in {} (train one with `vigil train`)", to_utf8(runs)));
  return best;
}

/// --run: the run's best (else last) weights and the dataset and split it was trained on.
void fill_from_run(const Context& ctx, EvaluateArgs& a, EvaluateOptions& options, bool split_name_given) {
  const fs::path dir = resolve_run(ctx.workspace(), a.run);
  const auto trained = config::load<train::TrainOptions>({to_utf8(dir / "config.yaml"), {}, {}});
  for (const char* name : {"best.ckpt", "last.ckpt"}) {
    if (a.model.empty() && fs::exists(dir / "weights" / name)) a.model = to_utf8(dir / "weights" / name);
  }
  if (a.model.empty())
    throw NotFound(fmt::format("run {} has no weights/best.ckpt or weights/last.ckpt", to_utf8(dir)));
  if (a.data.empty()) a.data = trained.data.dataset;
  if (!split_name_given) options.split_name = trained.data.split;
  // A clip model's frames are grouped as in training (window stride stays the evaluation's).
  const auto& tc = trained.data.clips;
  options.clips.pattern = tc.pattern;
  options.clips.clip_group = tc.clip_group;
  options.clips.frame_group = tc.frame_group;
  options.clips.separate_split_folders = tc.separate_split_folders;
  options.clips.on_label_change = tc.on_label_change;
  if (a.out.empty()) a.out = to_utf8(dir / "eval" / options.split);
}

std::vector<int> split_samples(const data::DatasetStore& store, const data::DatasetVersion& v,
                               const data::Dataset& ds, const EvaluateOptions& o) {
  std::vector<int> out;
  if (o.split == "all") {
    for (size_t i = 0; i < ds.samples.size(); ++i) out.push_back(static_cast<int>(i));
    return out;
  }
  const auto files = store.load_split(v, o.split_name);
  const auto& list = o.split == "train" ? files.train : (o.split == "val" ? files.val : files.test);
  out = data::split_sample_indices(ds, list,
                                   fmt::format("split '{}' of dataset {}", o.split_name, v.short_id()));
  if (out.empty()) {
    throw DataError(
        fmt::format("the {} part of split '{}' of dataset {} is empty (parts: train {}, val {}, test "
                    "{}); choose another with --split",
                    o.split, o.split_name, v.name, files.train.size(), files.val.size(), files.test.size()));
  }
  return out;
}

/// Starts the evaluation's tracked run; its parent is the training run the model came from, when the store
/// knows it.
std::unique_ptr<train::TrackedRun> start_evaluation_run(const Workspace& ws, EvaluateArgs& a,
                                                        const model::ModelInfo& info,
                                                        const data::DatasetVersion& version,
                                                        const EvaluateOptions& options) {
  auto s = std::make_shared<store::Store>(ws);
  store::NewRun run;
  run.kind = "evaluate";
  run.dataset_id = version.id;
  run.run_dir = to_utf8(fs::absolute(a.out));
  run.code.vigil = VIGIL_VERSION;
  if (!info.run_id.empty()) {
    try {
      const auto parent = s->get_run(info.run_id);
      if (parent.info.id == info.run_id) {
        run.parent_id = parent.info.id;
        run.experiment = parent.info.experiment;
        if (a.name.empty()) a.name = fmt::format("eval-{}-{}", parent.info.name, options.split);
      }
    } catch (const NotFound&) {
    }
  }
  if (!a.experiment.empty()) run.experiment = a.experiment;
  if (a.name.empty()) a.name = fmt::format("eval-{}-{}", fs::path(a.model).stem().string(), options.split);
  run.name = a.name;
  run.params = train::flatten_config(config::to_yaml(options));
  run.params["model"] = a.model;
  run.params["dataset"] = fmt::format("{}@{}", version.name, version.short_id());
  run.tags = {{"arch", info.arch}, {"task", data::task_name(info.task)}, {"dataset", version.name}};
  return std::make_unique<train::TrackedRun>(s, run);
}

void print_report(const EvaluationReport& r) {
  fmt::print("{}\n", r.summary);
  fmt::print("evaluated {} image(s); metrics {}\nreport {}\n", r.images, to_utf8(r.metrics_file),
             to_utf8(r.report_file));
}

int run_files(const Context& ctx, const EvaluateArgs& a, const EvaluateOptions& options) {
  VIGIL_CHECK(!a.gt.empty() && !a.detections.empty(),
              "expected both --gt GT.json and --detections RESULTS.json, got only {}",
              a.gt.empty() ? "--detections" : "--gt");
  const fs::path out =
      a.out.empty() ? ctx.workspace().root() / "evals" / fs::path(a.detections).stem() : fs::path(a.out);
  const auto r =
      evaluate_coco_files(a.gt, a.detections, out, options,
                          {{"ground truth", a.gt}, {"detections", a.detections}, {"date", utc_now()}});
  config::write_resolved(config::to_yaml(options), out);
  print_report(r);
  return 0;
}

int run_evaluate(const Context& ctx, EvaluateArgs a, bool split_name_given) {
  auto options = ctx.options<EvaluateOptions>();
  if (!a.gt.empty() || !a.detections.empty()) {
    VIGIL_CHECK(a.model.empty() && a.run.empty(), "expected either --gt/--detections or a model, got both");
    return run_files(ctx, a, options);
  }
  if (!a.run.empty()) fill_from_run(ctx, a, options, split_name_given);
  VIGIL_CHECK(!a.model.empty(), "expected --model FILE, --run NAME or --gt with --detections, got none");
  VIGIL_CHECK(!a.data.empty(),
              "expected --data DATASET (a name, name@id or id of `vigil data list`), got none");
  options.validate();

  const Workspace ws = ctx.workspace();
  data::DatasetStore store(ws);
  const auto version = store.resolve(a.data);
  const auto ds = store.load(version);
  model::LoadModelOptions lo;
  lo.arch = a.arch;
  model::LoadedModel loaded = model::load_model(a.model, lo);
  const model::ModelInfo info = loaded.info;
  const bool clip_model = model::is_clip_model(info);
  check_classes(info, ds);
  VIGIL_CHECK(clip_model || options.frame_model.empty(),
              "expected --frame-model only with a clip model, got it with image model '{}'", info.arch);

  EvaluationInput input;
  input.dataset = &ds;
  input.images = store.image_source();
  input.samples = split_samples(store, version, ds, options);
  if (a.out.empty()) {
    const fs::path model(a.model);
    const bool in_run = model.parent_path().filename() == "weights";
    a.out = to_utf8(in_run ? model.parent_path().parent_path() / "eval" / options.split
                           : ws.root() / "evals" /
                                 fmt::format("{}-{}-{}", model.stem().string(), version.name, options.split));
  }
  input.out = a.out;
  input.metadata = {{"model", a.model},
                    {"architecture", info.arch},
                    {"dataset", fmt::format("{} ({})", version.name, version.short_id())},
                    {"split", fmt::format("{} of '{}' ({} images)", options.split, options.split_name,
                                          input.samples.size())},
                    {"date", utc_now()}};
  spdlog::info("evaluating {} ({}) on {} images of {} / {}", a.model, info.arch, input.samples.size(),
               version.name, options.split);
  auto tracked = a.track ? start_evaluation_run(ws, a, info, version, options) : nullptr;
  EvaluationReport r;
  if (clip_model) {
    Progress progress("evaluating", 0, "windows");
    r = evaluate_clip_model(std::move(loaded), input, options, &progress);
    progress.finish();
  } else {
    if (options.predict.precision == "int8" && options.predict.calibration.empty()) {
      // int8 calibrates on the dataset's training images by default: representative, and never the images
      // being scored.
      EvaluateOptions train_part = options;
      train_part.split = "train";
      const auto train = split_samples(store, version, ds, train_part);
      fs::create_directories(a.out);
      const fs::path list = fs::path(a.out) / "calibration.txt";
      std::string text;
      for (int s : train) text += to_utf8(input.images(ds.samples[s])) + "\n";
      write_file_atomic(list, text);
      options.predict.calibration = "@" + to_utf8(list);
      spdlog::info("int8: calibrating on {} of the {} training images of split '{}'",
                   std::min<size_t>(train.size(), options.predict.calibration_images), train.size(),
                   options.split_name);
    }
    model::Predictor predictor(std::move(loaded), options.predict);
    Progress progress("evaluating", input.samples.size(), "img");
    r = evaluate_model(predictor, input, options, &progress);
    progress.finish();
  }
  config::write_resolved(config::to_yaml(options), input.out);
  if (tracked) {
    std::map<std::string, double> values;
    for (const auto& [k, v] : r.metrics.items()) {
      if (v.is_number()) values[k] = v.get<double>();
    }
    tracked->log_metrics(values, 0);
    tracked->log_artifacts(train::folder_artifacts(input.out, input.out));
    tracked->end(store::RunStatus::kFinished);
    fmt::print("tracked as run {} ({})\n", tracked->id().substr(0, 8), a.name);
  }
  print_report(r);
  return 0;
}

}  // namespace

void register_evaluate(CLI::App& app, Context& ctx) {
  static EvaluateArgs a;
  auto* sub = app.add_subcommand(
      "evaluate",
      "score a model on a dataset split, or COCO results against COCO ground truth: metrics.json, plots, "
      "report.html");
  sub->add_option("--model,-m", a.model,
                  "vigil model file or checkpoint (or a torchvision .pth with --arch)");
  sub->add_option("--arch", a.arch, "architecture of a torchvision .pth file");
  sub->add_option("--data,-d", a.data, "dataset: name, name@id or id (`vigil data list`)");
  sub->add_option("--run", a.run,
                  "a training run (name, folder or `last`): its best weights and its dataset");
  sub->add_option("--experiment", a.experiment,
                  "experiment to track the run under (default: the training run's)");
  sub->add_option("--name", a.name, "name of the tracked run (default: eval-<run or model>-<split>)");
  sub->add_flag("!--no-track", a.track, "do not record the evaluation in the tracking store");
  sub->add_option("--gt", a.gt, "COCO ground-truth JSON (with --detections; no model needed)");
  sub->add_option("--detections", a.detections, "COCO results JSON to score against --gt");
  sub->add_option("--out,-o", a.out,
                  "output folder (default: the run's eval/<split>, else WORKSPACE/evals/...)");
  add_config_options(sub, ctx);
  add_override(sub, ctx, "--split", "split", "train, val, test or all");
  auto* split_name = add_override(sub, ctx, "--split-name", "split_name",
                                  "the dataset's saved split (default: default, or the run's)");
  add_override(sub, ctx, "--gallery", "gallery", "sample pictures in the report (0: none)");
  add_override(sub, ctx, "--batch", "predict.batch_size", "images per inference batch");
  add_precision_options(sub, ctx, "predict.", "the split's training images");
  add_override(sub, ctx, "--score-threshold", "predict.score_threshold",
               "detection: keep boxes scoring at least this (default: the model's)");
  add_override(sub, ctx, "--frame-model", "frame_model",
               "clip models: image classifier whose single-frame majority vote is compared (default: the "
               "clip model's own single-frame output)");
  add_override(sub, ctx, "--clip-stride", "clips.stride",
               "clip models: frames between window starts (default: the clip length, no overlap)");
  add_override(sub, ctx, "--clip-pattern", "clips.pattern",
               "clip models: regex on frame file stems, group 1 = clip id, group 2 = frame number");
  sub->add_option("--threads", ctx.threads, "LibTorch threads (default: every core)")
      ->check(CLI::NonNegativeNumber);
  sub->callback([&ctx, split_name] {
    ctx.uses_workspace = true;
    const bool split_name_given = split_name->count() > 0;
    ctx.action = [&ctx, split_name_given] { return run_evaluate(ctx, a, split_name_given); };
  });
}

}  // namespace vigil::cli
