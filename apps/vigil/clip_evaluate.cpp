// `vigil evaluate` with a clip classifier: windows of the evaluated split through the clip model, compared
// with the single-frame majority vote over the same windows (a frame classifier's, or the clip model's own
// single-frame output), at window and segment level. See evaluate_clip_model in evaluate_runner.h.

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>

#include "evaluate_runner.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/data/clip_loader.h"
#include "vigil/eval/classification_metrics.h"
#include "vigil/eval/eval_plots.h"
#include "vigil/eval/report.h"
#include "vigil/eval/sample_drawing.h"
#include "vigil/model/clip_predict.h"

namespace vigil::cli {
namespace fs = std::filesystem;

namespace {

constexpr size_t kEvalCacheBytes = size_t{512} << 20;
constexpr size_t kListed = 20;

using Probs = std::vector<float>;

std::string listing(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < kListed; ++i) out += "\n  " + items[i];
  if (items.size() > kListed) out += fmt::format("\n  ... and {} more", items.size() - kListed);
  return out;
}

size_t argmax(const std::vector<double>& v) {
  return static_cast<size_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

/// The majority vote of single-frame predictions as a probability vector: vote shares, with the summed
/// probabilities as a tie-break too small to change a clear majority (so the arg-max is the vote).
std::vector<double> vote(const std::vector<const Probs*>& frames, size_t classes) {
  std::vector<double> count(classes, 0.0), mass(classes, 0.0);
  for (const Probs* p : frames) {
    const auto top = static_cast<size_t>(std::max_element(p->begin(), p->end()) - p->begin());
    count[top] += 1;
    for (size_t c = 0; c < classes; ++c) mass[c] += (*p)[c];
  }
  constexpr double kTieBreak = 1e-6;
  double total = 0;
  for (size_t c = 0; c < classes; ++c) total += count[c] += kTieBreak * mass[c];
  for (double& v : count) v /= total;
  return count;
}

std::vector<double> mean_of(const std::vector<const std::vector<double>*>& rows) {
  std::vector<double> out(rows.front()->size(), 0.0);
  for (const auto* r : rows)
    for (size_t c = 0; c < out.size(); ++c) out[c] += (*r)[c] / static_cast<double>(rows.size());
  return out;
}

/// Each listed sample through an image classifier file (its classes must be the dataset's); any frame that
/// cannot be predicted is a DataError listing them.
std::map<int, Probs> frame_model_probs(const std::string& file, const EvaluationInput& input,
                                       const std::set<int>& samples, const model::PredictOptions& po) {
  model::LoadedModel loaded = model::load_model(file);
  VIGIL_CHECK(!model::is_clip_model(loaded.info),
              "expected an image classifier as frame_model, got clip model '{}' ({})", loaded.info.arch,
              file);
  VIGIL_CHECK(loaded.info.task == data::Task::kClassification,
              "expected an image classifier as frame_model, got a {} model ({})",
              data::task_name(loaded.info.task), file);
  check_classes(loaded.info, *input.dataset);
  model::Predictor predictor(std::move(loaded), po);
  std::vector<model::PredictInput> inputs;
  std::vector<int> sample_of;
  for (int s : samples) {
    inputs.push_back({to_utf8(input.images(input.dataset->samples[s])), inputs.size()});
    sample_of.push_back(s);
  }
  std::map<int, Probs> out;
  std::vector<std::string> failed;
  model::predict_files(
      predictor, inputs,
      [&](const model::Prediction& p, const cv::Mat&) {
        if (!p.ok()) {
          failed.push_back(p.image + ": " + p.error);
          return;
        }
        out[sample_of[p.index]] = p.probs;
      },
      false);
  if (!failed.empty())
    throw DataError(
        fmt::format("{} frame(s) could not be predicted by {}:{}", failed.size(), file, listing(failed)));
  return out;
}

/// A row of the comparison table: accuracy of windows and segments.
std::vector<std::string> comparison_row(const std::string& name, double windows, double segments) {
  return {name, fmt::format("{:.4f}", windows), fmt::format("{:.4f}", segments)};
}

eval::Table confusion_table(const eval::ClassificationMetrics& m, const std::string& title) {
  eval::Table t;
  t.title = title;
  t.columns = {"true \\ predicted"};
  for (const auto& c : m.classes) t.columns.push_back(c);
  for (size_t i = 0; i < m.classes.size(); ++i) {
    std::vector<std::string> row = {m.classes[i]};
    for (int64_t n : m.confusion[i]) row.push_back(std::to_string(n));
    t.rows.push_back(std::move(row));
  }
  return t;
}

std::string per_class_text(const eval::ClassificationMetrics& m) {
  std::string out =
      fmt::format("{:<24} {:>9} {:>9} {:>9} {:>8}\n", "class", "precision", "recall", "F1", "support");
  for (const auto& c : m.per_class)
    out += fmt::format("{:<24} {:>9.4f} {:>9.4f} {:>9.4f} {:>8}\n", c.name, c.prf.precision, c.prf.recall,
                       c.prf.f1, c.support);
  return out;
}

/// What one evaluation found, before it is written out.
struct ClipFindings {
  data::ClipGrouping grouping;
  std::vector<int> windows;                 ///< evaluated, indices into grouping.windows
  std::vector<std::vector<double>> clip_p;  ///< per evaluated window: the clip model's probabilities
  std::vector<std::vector<double>> vote_p;  ///< per evaluated window: the frame vote's shares
  std::map<int, Probs> frame_p;             ///< per evaluated frame (sample index)
  size_t segments = 0, clips = 0;
  double clip_segment_accuracy = 0, vote_segment_accuracy = 0, frame_accuracy = 0;
};

/// Segment-level accuracy of both methods and the single-frame accuracy over the evaluated frames.
void score_segments(const data::Dataset& ds, ClipFindings& f) {
  std::map<int, std::vector<size_t>> by_segment;  // segment -> positions in f.windows
  for (size_t k = 0; k < f.windows.size(); ++k)
    by_segment[f.grouping.windows[f.windows[k]].segment].push_back(k);
  std::set<int> clips;
  size_t clip_right = 0, vote_right = 0;
  const size_t classes = ds.classes.size();
  for (const auto& [segment, positions] : by_segment) {
    const int truth = f.grouping.segments[segment].label;
    clips.insert(f.grouping.segments[segment].clip);
    std::vector<const std::vector<double>*> rows;
    std::set<int> frames;
    for (size_t k : positions) {
      rows.push_back(&f.clip_p[k]);
      for (int s : f.grouping.windows[f.windows[k]].samples) frames.insert(s);
    }
    clip_right += static_cast<int>(argmax(mean_of(rows))) == truth ? 1 : 0;
    std::vector<const Probs*> frame_rows;
    for (int s : frames) frame_rows.push_back(&f.frame_p.at(s));
    vote_right += static_cast<int>(argmax(vote(frame_rows, classes))) == truth ? 1 : 0;
  }
  f.segments = by_segment.size();
  f.clips = clips.size();
  f.clip_segment_accuracy = static_cast<double>(clip_right) / static_cast<double>(f.segments);
  f.vote_segment_accuracy = static_cast<double>(vote_right) / static_cast<double>(f.segments);
  size_t frame_right = 0;
  for (const auto& [s, p] : f.frame_p) {
    const auto top = std::max_element(p.begin(), p.end()) - p.begin();
    frame_right += top == ds.samples[s].label ? 1 : 0;
  }
  f.frame_accuracy =
      static_cast<double>(frame_right) / static_cast<double>(std::max<size_t>(f.frame_p.size(), 1));
}

/// The windows of input's samples through the clip model (and, with no frame model, its single frames).
void predict_windows(model::ClipPredictor& predictor, const EvaluationInput& input, const EvaluateOptions& o,
                     bool own_frames, ClipFindings& f, Progress* progress) {
  const auto& ds = *input.dataset;
  data::LoaderOptions lo;
  lo.batch_size = o.predict.batch_size;
  lo.threads = o.predict.decode_threads;
  lo.prefetch_batches = std::max(1, o.predict.prefetch_batches);
  lo.shuffle = false;
  lo.augment = false;
  const auto& pre = predictor.preprocess_options();
  lo.image_width = pre.width;
  lo.image_height = pre.height;
  lo.mean = pre.mean;
  lo.std = pre.std;
  lo.normalize = true;
  data::ClipLoader loader(ds, input.images, f.grouping, f.windows, lo, {},
                          std::make_shared<data::FrameCache>(kEvalCacheBytes));
  std::map<int, size_t> position;
  for (size_t k = 0; k < f.windows.size(); ++k) position[f.windows[k]] = k;
  f.clip_p.assign(f.windows.size(), {});
  while (auto batch = loader.next()) {
    const auto predictions = predictor.predict(batch->images, own_frames);
    for (size_t i = 0; i < batch->size(); ++i) {
      const int w = batch->indices[i];
      const auto& p = predictions[i];
      f.clip_p[position.at(w)].assign(p.probs.begin(), p.probs.end());
      if (!own_frames) continue;
      const auto& samples = f.grouping.windows[w].samples;
      for (size_t t = 0; t < samples.size(); ++t) f.frame_p[samples[t]] = p.frame_probs[t];
    }
    if (progress) progress->advance(batch->size());
  }
  if (loader.skipped() > 0) {
    throw DataError(fmt::format(
        "{} window(s) could not be evaluated because frames of theirs could not be read (fix or drop them, "
        "then split again):{}",
        loader.skipped(), listing(loader.skipped_frames())));
  }
}

void add_gallery(eval::HtmlReport& report, const EvaluationInput& input, const ClipFindings& f, int count) {
  const auto& ds = *input.dataset;
  std::vector<size_t> wrong, right;
  for (size_t k = 0; k < f.windows.size(); ++k)
    (static_cast<int>(argmax(f.clip_p[k])) != f.grouping.windows[f.windows[k]].label ? wrong : right)
        .push_back(k);
  // Mistakes first (up to two thirds of the pictures), then correct windows spread over the split.
  const size_t n = static_cast<size_t>(count);
  std::vector<size_t> shown(wrong.begin(),
                            wrong.begin() + static_cast<long>(std::min(wrong.size(), n * 2 / 3)));
  const size_t take_right = std::min(right.size(), n - shown.size());
  for (size_t k = 0; k < take_right; ++k) shown.push_back(right[k * right.size() / take_right]);
  std::vector<eval::GalleryItem> items;
  for (size_t k : shown) {
    const auto& w = f.grouping.windows[f.windows[k]];
    const auto& clip = f.grouping.clips[f.grouping.segments[w.segment].clip];
    const int middle = w.samples[w.samples.size() / 2];
    auto drawn = eval::draw_sample_file(input.images(ds.samples[middle]), {}, {});
    if (!drawn.is_ok()) {
      spdlog::warn("report gallery: {}", drawn.status().message());
      continue;
    }
    const size_t top = argmax(f.clip_p[k]);
    const bool ok = static_cast<int>(top) == w.label;
    items.push_back({std::move(drawn.value()),
                     fmt::format("clip {}, {} frames from {}: true {}, predicted {} ({:.2f})", clip.id,
                                 w.samples.size(), ds.samples[w.samples.front()].file, ds.classes[w.label],
                                 ds.classes[top], f.clip_p[k][top]),
                     ok ? "correct" : "wrong"});
  }
  report.add_gallery("Windows (the middle frame of each)", items, eval::classification_legend());
}

}  // namespace

EvaluationReport evaluate_clip_model(model::LoadedModel clip_model, const EvaluationInput& input,
                                     const EvaluateOptions& options, Progress* progress) {
  options.validate();
  VIGIL_ASSERT(input.dataset, "evaluate_clip_model needs a dataset");
  const auto& ds = *input.dataset;
  check_classes(clip_model.info, ds);
  if (input.samples.empty()) {
    throw DataError(
        fmt::format("split '{}' of the dataset has no samples: nothing to evaluate", options.split));
  }
  model::ClipPredictor predictor(std::move(clip_model), options.predict);
  data::ClipOptions co = options.clips;
  co.clip_length = predictor.clip_length();
  ClipFindings f;
  f.grouping = data::group_clips(ds, co);
  std::vector<char> listed(ds.samples.size(), 0);
  for (int s : input.samples) listed[static_cast<size_t>(s)] = 1;
  for (size_t w = 0; w < f.grouping.windows.size(); ++w) {
    const auto& samples = f.grouping.windows[w].samples;
    if (std::all_of(samples.begin(), samples.end(),
                    [&](int s) { return listed[static_cast<size_t>(s)] != 0; }))
      f.windows.push_back(static_cast<int>(w));
  }
  if (f.windows.empty()) {
    throw DataError(fmt::format(
        "no window of {} frames lies within split '{}' ({} frames; clips: {}); evaluate another split or set "
        "clips.short_segments: pad",
        co.clip_length, options.split, input.samples.size(), f.grouping.summary().dump()));
  }
  const bool own_frames = options.frame_model.empty();
  predict_windows(predictor, input, options, own_frames, f, progress);
  if (!own_frames) {
    std::set<int> frames;
    for (int w : f.windows)
      frames.insert(f.grouping.windows[w].samples.begin(), f.grouping.windows[w].samples.end());
    f.frame_p = frame_model_probs(options.frame_model, input, frames, options.predict);
  }
  std::vector<eval::ClassificationSample> clip_samples, vote_samples;
  for (size_t k = 0; k < f.windows.size(); ++k) {
    const auto& w = f.grouping.windows[f.windows[k]];
    std::vector<const Probs*> frames;
    for (int s : w.samples) frames.push_back(&f.frame_p.at(s));
    f.vote_p.push_back(vote(frames, ds.classes.size()));
    clip_samples.push_back({w.label, f.clip_p[k]});
    vote_samples.push_back({w.label, f.vote_p.back()});
  }
  score_segments(ds, f);
  const auto clip_m = eval::compute_classification_metrics(clip_samples, ds.classes);
  const auto vote_m = eval::compute_classification_metrics(vote_samples, ds.classes);
  const std::string baseline =
      own_frames ? "the clip model on single frames" : fmt::format("frame model {}", options.frame_model);

  EvaluationReport r;
  r.images = f.frame_p.size();
  r.metrics = nlohmann::ordered_json::object();
  const nlohmann::json window_metrics = clip_m.to_json();  // items() of a temporary would dangle
  for (const auto& [k, v] : window_metrics.items()) r.metrics[k] = v;
  r.metrics["clip/clip_length"] = co.clip_length;
  r.metrics["clip/windows"] = f.windows.size();
  r.metrics["clip/segments"] = f.segments;
  r.metrics["clip/clips"] = f.clips;
  r.metrics["clip/frames"] = f.frame_p.size();
  r.metrics["clip/window_accuracy"] = clip_m.accuracy;
  r.metrics["clip/segment_accuracy"] = f.clip_segment_accuracy;
  r.metrics["frame_vote/window_accuracy"] = vote_m.accuracy;
  r.metrics["frame_vote/segment_accuracy"] = f.vote_segment_accuracy;
  r.metrics["frame_vote/macro_f1"] = vote_m.macro.f1;
  r.metrics["frame/accuracy"] = f.frame_accuracy;

  r.summary = fmt::format(
      "clip model {}: {} windows of {} frames (stride {}) in {} segments of {} clips, {} frames\n"
      "{:<44} {:>9} {:>9}\n{:<44} {:>9.4f} {:>9.4f}\n{:<44} {:>9.4f} {:>9.4f}\n{:<44} {:>9.4f}\n"
      "clip model, per class (windows):\n{}frame vote, per class (windows):\n{}",
      predictor.info().arch, f.windows.size(), co.clip_length, co.effective_stride(), f.segments, f.clips,
      f.frame_p.size(), "accuracy", "windows", "segments", "clip model", clip_m.accuracy,
      f.clip_segment_accuracy,
      "single-frame majority vote (" + (own_frames ? std::string("own frames") : std::string("frame model")) +
          ")",
      vote_m.accuracy, f.vote_segment_accuracy, "single frames alone", f.frame_accuracy,
      per_class_text(clip_m), per_class_text(vote_m));

  ensure_dir(input.out);
  const auto plots = eval::write_classification_plots(clip_m, input.out / "plots");
  eval::HtmlReport report("Clip classification evaluation");
  report.add_metadata(input.metadata);
  report.add_heading("Clip model and single-frame majority vote");
  report.add_text(fmt::format(
      "Windows of {} consecutive frames of one clip and one label (stride {}); a segment is a clip's run of "
      "one label, scored by its windows' mean probabilities (clip model) or by the majority of its frames' "
      "single-frame predictions. Single-frame predictions: {}.",
      co.clip_length, co.effective_stride(), baseline));
  eval::Table cmp;
  cmp.title = "Accuracy";
  cmp.columns = {"method", fmt::format("windows ({})", f.windows.size()),
                 fmt::format("segments ({})", f.segments)};
  cmp.rows = {
      comparison_row("clip model", clip_m.accuracy, f.clip_segment_accuracy),
      comparison_row("single-frame majority vote", vote_m.accuracy, f.vote_segment_accuracy),
      {"single frames alone", fmt::format("{:.4f} ({} frames)", f.frame_accuracy, f.frame_p.size()), "-"}};
  report.add_table(cmp);
  report.add_heading("Clip model (windows)");
  eval::add_classification_sections(report, clip_m, plots);
  report.add_heading("Single-frame majority vote (windows)");
  report.add_metrics("Majority vote", vote_m.to_json());
  report.add_table(confusion_table(vote_m, "Majority vote: confusion matrix"));
  if (options.gallery > 0) add_gallery(report, input, f, options.gallery);
  r.out = input.out;
  r.metrics_file = input.out / "metrics.json";
  r.report_file = input.out / "report.html";
  write_file_atomic(r.metrics_file, r.metrics.dump(2) + "\n");
  report.write(r.report_file);
  return r;
}

}  // namespace vigil::cli
