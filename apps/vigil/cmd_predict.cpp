// `vigil predict`: run a model file (or a torchvision .pth with --arch) over images, folders and list files;
// JSON lines or COCO results out, optionally the images with their predictions drawn.
//
// Exit status: 0 when at least one image was predicted, even if others could not be read (each one is
// reported on stderr with its reason and counted in the summary line); kInvalidData (3) when no image could
// be predicted; the usual codes for usage errors (2), missing paths or model (4) and unusable model files
// (3).

#include <fmt/core.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli.h"
#include "clip_predict_cmd.h"
#include "vigil/core/fs.h"
#include "vigil/image/decode.h"
#include "vigil/model/clip_predict.h"
#include "vigil/model/predict.h"
#include "vigil/model/predict_io.h"
#include "vigil/store/model_ref.h"

namespace vigil::cli {

namespace {

struct PredictArgs {
  std::string model, arch, shard, format = "jsonl", output, save;
  std::vector<std::string> paths, lists;
  ClipPredictSettings clips;  ///< clip models only
};

/// Where results go: a file (written as results come) or stdout.
class ResultWriter {
 public:
  ResultWriter(const std::string& path, bool coco) : coco_(coco) {
    if (!path.empty()) {
      if (std::filesystem::path(path).has_parent_path())
        ensure_dir(std::filesystem::path(path).parent_path());
      file_.open(path, std::ios::binary | std::ios::trunc);
      if (!file_) throw IoError(fmt::format("{}: cannot open for writing", path));
    }
    if (coco_) write("[");
  }
  void record(const std::string& json) {
    if (coco_) {
      write(first_ ? "\n" : ",\n");
      write(json);
    } else {
      write(json + "\n");
    }
    first_ = false;
  }
  void finish(const std::string& path) {
    if (coco_) write(first_ ? "]\n" : "\n]\n");
    if (file_.is_open()) {
      file_.flush();
      if (!file_) throw IoError(fmt::format("{}: write failed", path));
    } else {
      std::fflush(stdout);
    }
  }

 private:
  void write(const std::string& text) {
    if (file_.is_open()) {
      file_ << text;
    } else {
      std::fwrite(text.data(), 1, text.size(), stdout);
    }
  }
  std::ofstream file_;
  bool coco_;
  bool first_ = true;
};

model::LoadedModel load_for_predict(const Context& ctx, const PredictArgs& a) {
  model::LoadModelOptions lo;
  lo.arch = a.arch;
  // A registered model (guns@production) as `vigil serve` takes it: sharded batch jobs name the alias.
  const std::string workspace = to_utf8(ctx.workspace().root());
  return model::load_model(store::resolve_model_spec(a.model, workspace).file, lo);
}

/// A clip model: windows of video files and frame folders, one JSON line per window.
int run_clip_predict(const PredictArgs& a, model::LoadedModel loaded, const model::PredictOptions& options) {
  VIGIL_CHECK(a.lists.empty() && a.shard.empty() && a.save.empty() && a.format == "jsonl",
              "expected video files or frame folders with --format jsonl for clip model '{}' (--list, "
              "--shard, --save and --format coco take images)",
              loaded.info.arch);
  spdlog::info("predicting windows of {} frames of {} source(s) with {} ({} classes) on {}",
               loaded.info.clip_length, a.paths.size(), loaded.info.arch, loaded.info.class_names.size(),
               options.device);
  ResultWriter writer(a.output, false);
  const auto start = std::chrono::steady_clock::now();
  const auto summary = predict_clip_paths(std::move(loaded), a.paths, options, a.clips,
                                          [&](const std::string& json) { writer.record(json); });
  writer.finish(a.output);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print(stderr, "predicted {} window(s) over {} frame(s) of {} source(s) in {:.2f} s{}\n",
             summary.windows, summary.frames, summary.sources, seconds,
             a.output.empty() ? "" : "; results in " + a.output);
  return summary.windows > 0 ? 0 : static_cast<int>(ExitCode::kInvalidData);
}

int run_predict(const Context& ctx, const PredictArgs& a) {
  auto options = ctx.options<model::PredictOptions>();
  VIGIL_CHECK(!a.paths.empty() || !a.lists.empty(), "expected image paths, folders or --list FILE, got none");
  VIGIL_CHECK(a.format == "jsonl" || a.format == "coco", "expected --format jsonl or coco, got '{}'",
              a.format);
  model::LoadedModel loaded = load_for_predict(ctx, a);
  if (model::is_clip_model(loaded.info)) return run_clip_predict(a, std::move(loaded), options);
  const auto all = model::collect_inputs(a.paths, a.lists);
  auto [shard_index, shard_count] = a.shard.empty() ? std::pair{0, 1} : model::parse_shard(a.shard);
  const auto inputs = model::shard_inputs(all, shard_index, shard_count);

  model::Predictor predictor(std::move(loaded), options);
  const auto& info = predictor.info();
  VIGIL_CHECK(a.format != "coco" || predictor.is_detector(),
              "expected --format jsonl for a classifier ('{}'), got coco (COCO results hold boxes)",
              info.arch);
  const auto image_ids = a.format == "coco" ? model::coco_image_ids(all) : std::vector<int64_t>{};
  const auto drawn_names = a.save.empty() ? std::vector<std::string>{} : model::drawn_file_names(all);
  if (!a.save.empty()) ensure_dir(a.save);
  spdlog::info(
      "predicting {} image(s){} with {} ({}, {} classes) on {}", inputs.size(),
      shard_count > 1 ? fmt::format(" (shard {}/{} of {})", shard_index, shard_count, all.size()) : "",
      info.arch, data::task_name(info.task), info.class_names.size(), options.device);

  ResultWriter writer(a.output, a.format == "coco");
  size_t unreadable = 0;
  auto sink = [&](const model::Prediction& p, const cv::Mat& image) {
    if (!p.ok()) {
      spdlog::warn("cannot predict {}: {}", p.image, p.error);
      ++unreadable;
      return;
    }
    if (a.format == "coco") {
      for (const auto& r : model::coco_results(p, image_ids[p.index])) writer.record(r.dump());
    } else {
      writer.record(model::prediction_json(p, info).dump());
    }
    if (!a.save.empty()) {
      cv::Mat canvas = image.clone();
      model::draw_prediction(canvas, p);
      const std::string& name = drawn_names[p.index];
      write_file_atomic(std::filesystem::path(a.save) / name,
                        image::encode(canvas, lower_extension(name) == ".png" ? "png" : "jpg"));
    }
  };
  const auto start = std::chrono::steady_clock::now();
  Progress progress("predicting", inputs.size(), "img");
  const auto summary = model::predict_files(predictor, inputs, sink, !a.save.empty(), &progress);
  progress.finish();
  writer.finish(a.output);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print(stderr, "predicted {} image(s), {} unreadable, in {:.2f} s ({:.1f} img/s){}\n",
             summary.predicted, unreadable, seconds, seconds > 0 ? summary.predicted / seconds : 0.0,
             a.output.empty() ? "" : "; results in " + a.output);
  if (summary.predicted == 0) {
    spdlog::error("no image could be predicted ({} unreadable)", unreadable);
    return static_cast<int>(ExitCode::kInvalidData);
  }
  return 0;
}

}  // namespace

void register_predict(CLI::App& app, Context& ctx) {
  static PredictArgs a;
  auto* sub =
      app.add_subcommand("predict", "run a model over images, folders or list files (JSON lines / COCO)");
  sub->add_option("paths", a.paths, "image files, folders (searched recursively) or @LIST files");
  sub->add_option("--model,-m", a.model,
                  "vigil model file, a torchvision .pth / TorchScript file with --arch, or a registered "
                  "model NAME@alias, NAME/k, NAME")
      ->required();
  sub->add_option("--arch", a.arch, "architecture of a torchvision .pth file (checked against a model file)");
  sub->add_option("--list", a.lists, "file listing image paths, one per line (repeatable)")
      ->allow_extra_args(false);
  sub->add_option("--shard", a.shard, "i/n: predict only every n-th image of the sorted list, from the i-th");
  sub->add_option("--format", a.format, "jsonl (one object per image) or coco (COCO results array)")
      ->capture_default_str();
  sub->add_option("--output,-o", a.output, "results file (default: stdout)");
  sub->add_option("--save", a.save, "folder for the images with their predictions drawn");
  sub->add_option("--threads", ctx.threads, "LibTorch threads (default: every core)")
      ->check(CLI::NonNegativeNumber);
  add_config_options(sub, ctx);
  add_override(sub, ctx, "--batch", "batch_size", "images per inference batch");
  add_override(sub, ctx, "--decode-threads", "decode_threads", "image decode workers (0 = every core)");
  add_override(sub, ctx, "--device", "device", "cpu or cuda");
  add_precision_options(sub, ctx, "", "none, required");
  add_override(sub, ctx, "--score-threshold", "score_threshold",
               "detection: keep boxes scoring at least this (0 keeps all; default: the model's)");
  add_override(sub, ctx, "--nms-iou", "nms_iou", "detection: NMS IoU threshold (default: the model's)");
  add_override(sub, ctx, "--max-detections", "max_detections",
               "detection: boxes per image (default: the model's)");
  sub->add_option("--clip-stride", a.clips.stride,
                  "clip models: frames between window starts (default 0: the clip length, no overlap)");
  sub->add_option("--frame-stride", a.clips.frame_stride, "clip models, videos: take every k-th frame")
      ->capture_default_str();
  sub->add_option(
      "--clip-pattern", a.clips.pattern,
      "clip models, frame folders: regex on file stems, group 1 = clip id, group 2 = frame number");
  sub->callback([&ctx] { ctx.action = [&ctx] { return run_predict(ctx, a); }; });
}

}  // namespace vigil::cli
