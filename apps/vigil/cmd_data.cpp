// `vigil data ...`: get datasets in, check them, split them, describe them, convert them, make synthetic
// ones.

#include <fmt/core.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "cli.h"
#include "data_args.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"
#include "vigil/data/clips.h"
#include "vigil/data/split.h"
#include "vigil/data/stats.h"
#include "vigil/data/synth.h"
#include "vigil/data/validate.h"

namespace vigil::cli {

namespace {

struct DataArgs {
  std::string source, ref, format = "auto", name, out, classes, split_name = "default", export_split;
  bool strict = false, json = false;
  uint64_t archive_max_files = data::ArchiveLimits{}.max_entries;
  uint64_t archive_max_mb = data::ArchiveLimits{}.max_total_bytes >> 20;
  bool group_clips = false;  ///< split: keep each clip (frames named <clip>_<n>) whole
  std::string clip_pattern = data::kDefaultFramePattern;  ///< split --group-clips: the frame-name pattern
};

int run_ingest(const Context& ctx, const DataArgs& a) {
  data::DatasetStore store(ctx.workspace());
  data::IngestOptions opt;
  opt.name = a.name;
  opt.format = a.format;
  opt.threads = ctx.threads;
  if (!a.classes.empty()) opt.classes = split(a.classes, ',');
  opt.archive_limits.max_entries = a.archive_max_files;
  opt.archive_limits.max_total_bytes = a.archive_max_mb << 20;
  Progress progress("ingesting " + a.name, 0, "files");
  auto r = store.ingest(a.source, opt, &progress);
  progress.finish();
  print_issues(r.issues, "problems met while reading (skipped items are listed with their reason)");
  const auto& v = r.version;
  fmt::print("{} {}: version {} ({}; {} images, {} boxes, {} classes, {} files, {} new objects){}\n",
             r.unchanged ? "unchanged" : "ingested", v.name, v.short_id(), data::task_name(v.task), v.images,
             v.boxes, v.classes, v.files, r.files_stored,
             r.unchanged ? " — identical content is already the newest version" : "");
  fmt::print("id {}\n", v.id);
  return 0;
}

int run_list(const Context& ctx) {
  data::DatasetStore store(ctx.workspace());
  auto all = store.list();
  if (all.empty()) {
    fmt::print("no datasets in {}; add one with `vigil data ingest SRC --format F --name N`\n",
               to_utf8(ctx.workspace().datasets_dir()));
    return 0;
  }
  fmt::print("{:<20} {:<12} {:<14} {:>7} {:>7} {:>7}  {:<20} {}\n", "NAME", "VERSION", "TASK", "IMAGES",
             "BOXES", "CLASSES", "CREATED", "SOURCE");
  for (const auto& v : all) {
    fmt::print("{:<20} {:<12} {:<14} {:>7} {:>7} {:>7}  {:<20} {}\n", v.name, v.short_id(),
               data::task_name(v.task), v.images, v.boxes, v.classes, v.created, v.source);
  }
  return 0;
}

int run_show(const Context& ctx, const DataArgs& a) {
  data::DatasetStore store(ctx.workspace());
  auto v = store.resolve(a.ref);
  auto ds = store.load(v);
  if (a.json) {
    nlohmann::json j = {{"name", v.name},
                        {"id", v.id},
                        {"task", data::task_name(v.task)},
                        {"format", v.format},
                        {"source", v.source},
                        {"created", v.created},
                        {"images", v.images},
                        {"boxes", v.boxes},
                        {"files", v.files},
                        {"classes", ds.classes},
                        {"splits", nlohmann::json::object()}};
    for (const auto& s : store.split_names(v)) {
      const auto f = store.load_split(v, s);
      j["splits"][s] = {{"train", f.train.size()}, {"val", f.val.size()}, {"test", f.test.size()}};
    }
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  fmt::print("dataset   {}\nversion   {}\ntask      {}\nformat    {}\nsource    {}\ncreated   {}\n", v.name,
             v.id, data::task_name(v.task), v.format, v.source, v.created);
  fmt::print("images    {}\nboxes     {}\nfiles     {}\nclasses   {}\n", v.images, v.boxes, v.files,
             join(ds.classes, ", "));
  auto splits = store.split_names(v);
  for (const auto& s : splits) {
    auto f = store.load_split(v, s);
    fmt::print("split     {}: train {}, val {}, test {}\n", s, f.train.size(), f.val.size(), f.test.size());
  }
  if (splits.empty()) fmt::print("split     none yet (`vigil data split {}`)\n", v.name);
  fmt::print("problems  {} met while reading (`vigil data validate {}` for the full check)\n",
             ds.issues.size(), v.name);
  return 0;
}

int run_validate(const Context& ctx, const DataArgs& a) {
  auto opt = ctx.options<data::ValidateOptions>();
  auto arg = load_dataset_arg(ctx, a.ref, a.format);
  auto report = data::validate(arg.ds, opt);
  const auto out =
      a.out.empty() ? arg.default_out(ctx.workspace(), "validate") : std::filesystem::path(a.out);
  write_file_atomic(out / "report.json", report.to_json().dump(2) + "\n");
  write_file_atomic(out / "report.txt", report.to_text());
  config::write_resolved(config::to_yaml(opt), out);
  fmt::print("{}", report.to_text());
  fmt::print("\nvalidated {}: report in {}\n", arg.display, to_utf8(out));
  if (report.has_errors()) return static_cast<int>(ExitCode::kInvalidData);
  if (a.strict && report.warnings() > 0) return static_cast<int>(ExitCode::kInvalidData);
  return 0;
}

int run_split(const Context& ctx, const DataArgs& a) {
  auto opt = ctx.options<data::SplitOptions>();
  data::DatasetStore store(ctx.workspace());
  auto v = store.resolve(a.ref);
  auto ds = store.load(v);
  std::vector<int> clip_of;
  if (a.group_clips) {
    // Frames of one clip are near-copies of each other: a frame-level split would validate on the clips
    // it trains on.
    data::ClipOptions co;
    co.pattern = a.clip_pattern;
    co.clip_length = 1;  // windows do not matter here, only which frames form a clip
    const auto grouping = data::group_clips(ds, co);
    clip_of = grouping.clip_of;
    fmt::print("grouped {} frames into {} clips (pattern {}); each clip goes to one side whole\n",
               ds.samples.size(), grouping.clips.size(), co.pattern);
  }
  auto result = a.group_clips ? data::split_dataset(ds, opt, clip_of) : data::split_dataset(ds, opt);
  data::SplitFiles files;
  for (int i : result.train) files.train.push_back(ds.samples[i].file);
  for (int i : result.val) files.val.push_back(ds.samples[i].file);
  for (int i : result.test) files.test.push_back(ds.samples[i].file);
  const auto summary = result.summary();
  if (result.mode != "random" && result.straddling_groups > 0)
    spdlog::warn(
        "{} duplicate group(s) have samples on both sides of this {} split: validation sees near "
        "copies of training images (see `vigil data validate {}`)",
        result.straddling_groups, result.mode, a.ref);
  store.save_split(v, a.split_name, files, summary.dump(2) + "\n", config::to_yaml(opt));
  fmt::print(
      "split {}@{} '{}': train {}, val {}, test {} ({} duplicate groups holding {} samples kept whole)\n",
      v.name, v.short_id(), a.split_name, files.train.size(), files.val.size(), files.test.size(),
      result.groups, result.grouped_samples);
  fmt::print("{}\n", summary.dump(2));
  const auto dir = store.version_dir(v.id) / "splits" / a.split_name;
  fmt::print("files in {}\n", to_utf8(dir));
  if (!a.out.empty()) {
    // A copy outside the workspace: what a dvc.yaml stage declares as its output.
    ensure_dir(a.out);
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      if (e.is_regular_file())
        write_file_atomic(std::filesystem::path(a.out) / e.path().filename(), read_file(e.path()));
    }
    fmt::print("copied to {}\n", a.out);
  }
  return 0;
}

int run_stats(const Context& ctx, const DataArgs& a) {
  auto arg = load_dataset_arg(ctx, a.ref, a.format);
  auto stats = data::compute_stats(arg.ds);
  const auto out = a.out.empty() ? arg.default_out(ctx.workspace(), "stats") : std::filesystem::path(a.out);
  write_file_atomic(out / "stats.json", stats.to_json().dump(2) + "\n");
  auto plots = data::write_stats_plots(stats, out);
  fmt::print("{}", stats.to_text());
  fmt::print("\nstats of {} in {}:\n  stats.json\n", arg.display, to_utf8(out));
  for (const auto& p : plots) fmt::print("  {}\n", p.filename().string());
  return 0;
}

int run_export(const Context& ctx, const DataArgs& a) {
  VIGIL_CHECK(!a.out.empty(), "expected --out DIR for the exported dataset, got none");
  auto arg = load_dataset_arg(ctx, a.ref, "auto");
  if (!a.export_split.empty()) {
    VIGIL_CHECK(arg.version.has_value(), "expected a stored dataset for --split, got a folder: {}", a.ref);
    data::DatasetStore store(ctx.workspace());
    auto files = store.load_split(*arg.version, a.export_split);
    std::map<std::string, std::string> split_of;
    for (const auto& f : files.train) split_of[f] = "train";
    for (const auto& f : files.val) split_of[f] = "val";
    for (const auto& f : files.test) split_of[f] = "test";
    for (auto& s : arg.ds.samples) s.split = split_of.count(s.file) ? split_of[s.file] : "";
  }
  data::write_dataset(arg.ds, arg.images, a.out, a.format == "auto" ? "coco" : a.format);
  fmt::print("exported {} ({} images, {} boxes) as {} to {}\n", arg.display, arg.ds.samples.size(),
             arg.ds.box_count(), a.format == "auto" ? "coco" : a.format, a.out);
  return 0;
}

int run_synth(const Context& ctx, const DataArgs& a) {
  auto opt = ctx.options<data::SynthOptions>();
  Progress progress("synthesising", static_cast<size_t>(opt.images), "img");
  auto format = data::synthesize(opt, a.out, &progress);
  progress.finish();
  config::write_resolved(config::to_yaml(opt), a.out, "synth.yaml");
  fmt::print(
      "synthesised {} {} images into {} (format {}); ingest with:\n  vigil data ingest {} --format {} "
      "--name NAME\n",
      opt.images, opt.task, a.out, format, a.out, format);
  return 0;
}

}  // namespace

void register_data(CLI::App& app, Context& ctx) {
  static DataArgs a;
  auto* data =
      app.add_subcommand("data", "datasets: ingest, list, show, validate, split, stats, export, synth");
  data->require_subcommand(1);
  auto set_action = [&ctx](CLI::App* sub, std::function<int()> fn) {
    sub->callback([&ctx, fn] {
      ctx.uses_workspace = true;
      ctx.action = fn;
    });
  };

  auto* ingest = data->add_subcommand("ingest", "copy a dataset into the workspace store and version it");
  ingest
      ->add_option("source", a.source,
                   "dataset folder, COCO .json file, or an archive of either (.zip, .tar, .tar.gz, .tar.bz2, "
                   ".tar.xz)")
      ->required();
  ingest->add_option("--archive-max-files", a.archive_max_files, "an archive with more entries is refused")
      ->capture_default_str();
  ingest->add_option("--archive-max-mb", a.archive_max_mb, "an archive unpacking to more MiB is refused")
      ->capture_default_str();
  ingest->add_option("--format,-f", a.format, "guns, voc, yolo, coco, imagefolder, or auto")
      ->capture_default_str();
  ingest->add_option("--name,-n", a.name, "dataset name")->required();
  ingest->add_option("--classes", a.classes, "comma-separated class names (fixes order; YOLO without names)");
  set_action(ingest, [&ctx] { return run_ingest(ctx, a); });

  auto* list = data->add_subcommand("list", "list dataset versions in the workspace");
  set_action(list, [&ctx] { return run_list(ctx); });

  auto* show = data->add_subcommand("show", "describe one dataset version");
  show->add_option("dataset", a.ref, "name, name@id or id")->required();
  show->add_flag("--json", a.json, "JSON output");
  set_action(show, [&ctx] { return run_show(ctx, a); });

  auto* validate = data->add_subcommand("validate", "report every problem: files, labels, boxes, duplicates");
  validate->add_option("dataset", a.ref, "stored dataset (name, name@id, id) or a folder")->required();
  validate->add_option("--format,-f", a.format, "format when validating a folder in place")
      ->capture_default_str();
  validate->add_option("--out,-o", a.out, "report folder (default: beside the dataset version)");
  validate->add_flag("--strict", a.strict, "exit non-zero on warnings too");
  add_config_options(validate, ctx);
  add_override(validate, ctx, "--out-of-image", "out_of_image", "boxes beyond the image: clip or reject");
  add_override(validate, ctx, "--near-duplicate-distance", "near_duplicate_distance",
               "max perceptual-hash distance for near duplicates (-1 disables)");
  set_action(validate, [&ctx] { return run_validate(ctx, a); });

  auto* split = data->add_subcommand("split", "deterministic, stratified, group-aware train/val/test split");
  split->add_option("dataset", a.ref, "name, name@id or id")->required();
  split->add_option("--name", a.split_name, "name of this split")->capture_default_str();
  split->add_option("--out,-o", a.out,
                    "also copy the split's files (train.txt, val.txt, ...) into this folder");
  add_config_options(split, ctx);
  add_override(split, ctx, "--val", "val", "validation fraction");
  add_override(split, ctx, "--test", "test", "test fraction");
  add_override(split, ctx, "--seed", "seed", "random seed");
  add_override(split, ctx, "--mode", "mode",
               "random, folders to respect train/val/test folders, or lists (--val-list/--test-list)");
  add_override(split, ctx, "--val-list", "val_list",
               "file naming the validation samples, one per line (e.g. another tool's); the rest trains");
  add_override(split, ctx, "--test-list", "test_list", "file naming the test samples, one per line");
  split->add_flag("--group-clips", a.group_clips,
                  "keep the frames of each clip on one side (clip id and frame number from the file name)");
  split
      ->add_option("--clip-pattern", a.clip_pattern,
                   "with --group-clips: regex on file stems, group 1 = clip id, group 2 = frame number")
      ->capture_default_str();
  add_override(split, ctx, "--near-duplicate-distance", "near_duplicate_distance",
               "max perceptual-hash distance that groups near duplicates (-1: exact only)");
  set_action(split, [&ctx] { return run_split(ctx, a); });

  auto* stats =
      data->add_subcommand("stats", "class counts, objects per image, box and image sizes: JSON + PNG");
  stats->add_option("dataset", a.ref, "stored dataset or a folder")->required();
  stats->add_option("--format,-f", a.format, "format when reading a folder in place")->capture_default_str();
  stats->add_option("--out,-o", a.out, "output folder (default: beside the dataset version)");
  set_action(stats, [&ctx] { return run_stats(ctx, a); });

  auto* exp = data->add_subcommand("export", "write a dataset as COCO JSON or YOLO");
  exp->add_option("dataset", a.ref, "stored dataset or a folder")->required();
  exp->add_option("--format,-f", a.format, "coco or yolo")->required();
  exp->add_option("--out,-o", a.out, "output folder")->required();
  exp->add_option("--split", a.export_split, "write train/val/test from this stored split");
  set_action(exp, [&ctx] { return run_export(ctx, a); });

  auto* synth = data->add_subcommand("synth", "generate a synthetic detection or classification dataset");
  synth->add_option("out", a.out, "output folder")->required();
  add_config_options(synth, ctx);
  add_override(synth, ctx, "--task", "task", "detection or classification");
  add_override(synth, ctx, "--images", "images", "number of images");
  add_override(synth, ctx, "--classes", "classes", "number of classes");
  add_override(synth, ctx, "--seed", "seed", "random seed");
  add_override(synth, ctx, "--width", "width", "image width");
  add_override(synth, ctx, "--height", "height", "image height");
  set_action(synth, [&ctx] { return run_synth(ctx, a); });
}

}  // namespace vigil::cli
